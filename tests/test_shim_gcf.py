"""main.py under the real functions-framework server, over a real socket.

The artifact is built, unzipped and served as GCF would serve it
(``functions-framework --target kagg_http --source main.py``).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Optional

import pytest

from conftest import free_port, reap
from functions import failing_function, handler_function, make_function, script_function, unzip
from kagg.model import Parameter
from kagg.packaging.builder import build_artifact


class Server:
    """One functions-framework process serving an unzipped artifact."""

    def __init__(self, source: Path, log: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        self._log_file = open(log, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "functions_framework", "--target", "kagg_http",
             "--source", str(source / "main.py"), "--host", "127.0.0.1", "--port", str(self.port)],
            stdout=self._log_file, stderr=subprocess.STDOUT, cwd=source)
        self.first_health: Optional[tuple[int, dict, bytes]] = None

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.log.read_text()}")
            try:
                self.first_health = call("GET", self.url + "/health")
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"server not ready: {self.log.read_text()}")

    def stop(self) -> None:
        self.proc.terminate()
        reap(self.proc)
        self._log_file.close()


def call(method: str, url: str, body: Optional[bytes] = None,
         headers: Optional[dict] = None) -> tuple[int, dict, bytes]:
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, dict(exc.headers), exc.read()


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    """The handler-mode and the script-mode function, started together."""
    root = tmp_path_factory.mktemp("gcf")
    started = {}
    for key, fn in (("handler", handler_function()), ("script", script_function())):
        art = build_artifact(fn, provider="gcp", shims=("gcf",), out_dir=root / "artifacts")
        started[key] = Server(unzip(art.path, root / key), root / f"{key}.log")
    try:
        for server in started.values():
            server.wait_ready()
        # the instance's first call of the function, before any test runs
        started["handler"].first_call = post(started["handler"], {"a": 1})
        started["script"].first_call = call("GET", started["script"].url + "/")
        yield started
    finally:
        for server in started.values():
            server.stop()


@pytest.fixture(scope="module")
def srv(servers):
    return servers["handler"]


def post(server: Server, body, path: str = "/"):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return call("POST", server.url + path, data, {"Content-Type": "application/json"})


def test_post_json(srv):
    status, headers, body = post(srv, {"a": 2, "name": "gcf"})
    assert status == 200
    assert json.loads(body)["name"] == "gcf" and json.loads(body)["a"] == 2
    assert headers["Content-Type"] == "application/json"


def test_get_query_with_repeated_keys(srv):
    status, _, body = call("GET", srv.url + "/?a=3&xs=1&xs=two&flag=true&name=a%20b")
    assert status == 200
    data = json.loads(body)
    assert (data["a"], data["xs"], data["flag"], data["name"]) == (3, [1, "two"], True, "a b")


def test_health_and_schema(srv):
    fn = handler_function()
    status, _, body = call("GET", srv.url + "/health")
    assert status == 200 and json.loads(body)["source_sha256"] == fn.source.sha256
    status, _, body = call("GET", srv.url + "/schema/")
    assert status == 200 and json.loads(body) == fn.schema()


def test_errors(srv):
    status, _, body = post(srv, b"{oops")
    assert status == 400 and json.loads(body)["error"]["type"] == "InvalidJSON"
    status, _, body = call("GET", srv.url + "/?a=notanint")
    assert status == 400 and json.loads(body)["error"]["type"] == "InvalidParameter"
    status, _, body = call("GET", srv.url + "/elsewhere")
    assert status == 404 and json.loads(body)["error"]["type"] == "NotFound"
    status, headers, body = call("PUT", srv.url + "/", b"{}")
    assert status == 405 and headers["Allow"] == "GET, POST"


def test_exception_is_500_and_logged(srv):
    status, headers, body = post(srv, {"a": -5})
    assert status == 500
    assert json.loads(body) == {"error": {"type": "ValueError", "message": "a must be >= 0"}}
    assert headers["Content-Type"] == "application/json"
    deadline = time.monotonic() + 5
    while "a must be >= 0" not in srv.log.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    log = srv.log.read_text()
    assert "Traceback" in log and "kagg_notebook.py" in log


def test_numpy_and_pandas(srv):
    status, _, body = post(srv, {"a": 2, "kind": "numpy"})
    assert status == 200 and json.loads(body)["array"] == [0, 1] and json.loads(body)["nan"] is None
    status, _, body = post(srv, {"a": 2, "kind": "pandas"})
    assert status == 200 and json.loads(body)["frame"] == [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}]


def test_timing_headers_and_cold_flag(servers):
    srv = servers["handler"]
    status, health_headers, _ = srv.first_health  # the readiness probe is not the cold call
    assert status == 200 and health_headers["X-Kagg-Cold"] == "0"
    status, first_headers, _ = srv.first_call
    assert status == 200 and first_headers["X-Kagg-Cold"] == "1"
    assert first_headers["Server-Timing"].startswith("init;dur=")
    instance = first_headers["X-Kagg-Instance"]
    assert health_headers["X-Kagg-Instance"] == instance
    for _ in range(3):
        _, headers, _ = post(srv, {"a": 1})
        assert headers["X-Kagg-Cold"] == "0" and headers["X-Kagg-Instance"] == instance
        assert headers["Server-Timing"].startswith("handler;dur=")
    _, headers, _ = call("GET", srv.url + "/missing")
    assert headers["X-Kagg-Instance"] == instance and "handler;dur=" in headers["Server-Timing"]
    script_first = servers["script"].first_call[1]
    assert script_first["X-Kagg-Cold"] == "1" and script_first["X-Kagg-Instance"] != instance


def test_script_mode(servers):
    script = servers["script"]
    status, _, body = call("GET", script.url + "/?x=3&label=q")
    assert status == 200 and json.loads(body)["y"] == 30 and json.loads(body)["words"] == ["w", "q"]
    status, _, body = post(script, {"label": "none"})
    assert status == 500 and json.loads(body)["error"]["type"] == "MissingResult"


def test_import_failure_stops_the_server(tmp_path):
    art = build_artifact(failing_function(), provider="gcp", shims=("gcf",), out_dir=tmp_path / "a")
    source = unzip(art.path, tmp_path / "src")
    proc = subprocess.run(
        [sys.executable, "-m", "functions_framework", "--target", "kagg_http",
         "--source", str(source / "main.py"), "--host", "127.0.0.1", "--port", str(free_port())],
        capture_output=True, text=True, timeout=60, cwd=source)
    assert proc.returncode != 0
    assert "Traceback" in proc.stderr and "kagg_notebook.py" in proc.stderr
    assert "boom while loading the notebook" in proc.stderr


def test_headers_from_environ(tmp_path):
    import importlib.util

    art = build_artifact(handler_function(), provider="gcp", shims=("gcf",), out_dir=tmp_path / "a")
    source = unzip(art.path, tmp_path / "src")
    spec = importlib.util.spec_from_file_location("kagg_gcf_main", source / "main.py")
    main = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(main)
    environ = {"HTTP_X_FORWARDED_FOR": "1.2.3.4", "HTTP_USER_AGENT": "t/1", "CONTENT_TYPE": "application/json",
               "CONTENT_LENGTH": "2", "QUERY_STRING": "", "wsgi.input": None}
    assert main._headers(environ) == {"x-forwarded-for": "1.2.3.4", "user-agent": "t/1",
                                      "content-type": "application/json", "content-length": "2"}


EXITING_MODULE = """\
import sys


def handler(code: int = 0, interrupt: bool = False):
    if interrupt:
        raise KeyboardInterrupt
    if code:
        sys.exit(code)
    return {"ok": True}
"""


def test_exit_in_the_notebook_does_not_stop_the_worker(tmp_path):
    fn = make_function("exits", EXITING_MODULE, [Parameter("code", "int", 0), Parameter("interrupt", "bool", False)])
    art = build_artifact(fn, provider="gcp", shims=("gcf",), out_dir=tmp_path / "a")
    server = Server(unzip(art.path, tmp_path / "src"), tmp_path / "exits.log")
    try:
        server.wait_ready()
        status, headers, body = post(server, {"code": 3})
        assert status == 500 and headers["Content-Type"] == "application/json"
        error = json.loads(body)["error"]
        assert error["type"] == "SystemExit" and "sys.exit(3)" in error["message"]
        status, _, body = post(server, {"interrupt": True})
        assert status == 500 and json.loads(body)["error"]["type"] == "KeyboardInterrupt"
        instance = headers["X-Kagg-Instance"]
        status, headers, body = post(server, {})
        assert status == 200 and json.loads(body) == {"ok": True}
        assert headers["X-Kagg-Instance"] == instance  # the same worker, still serving
        assert server.proc.poll() is None
    finally:
        server.stop()
