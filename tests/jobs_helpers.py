"""Test helpers for ``/jobs``: a small train notebook, its artifact, and the provider instances that
serve it (the Lambda handler and the Azure function in a long-lived subprocess fed requests on
stdin, functions-framework over a socket). Each instance is driven with the same ``Req`` list."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from conftest import free_port, reap
from notebooks import write

SETUP = "import json, os\nfrom pathlib import Path\nROOT = Path(os.environ.get('KAGG_KAGGLE_ROOT', '/kaggle'))"
PARAMS = "lr = 0.1\nepochs: int = 2\nlabel = 'base'"
TRAIN = ("out = ROOT / 'working' / 'outputs'\nout.mkdir(parents=True, exist_ok=True)\n"
         "(out / 'model.json').write_text(json.dumps({'w': lr * epochs, 'label': label}))\n"
         "print('trained', lr, epochs, label, flush=True)")
HANDLER = "def handler(x: float = 1.0):\n    return {'y': x * 2}"


def jobs_notebook(folder: Path, name: str = "trainer.ipynb") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return write(folder / name, SETUP, (PARAMS, ["parameters"]), (TRAIN, ["train"]), HANDLER)


def artifact_tree(notebook: Path, shims: tuple[str, ...], dest: Path, public: bool = False,
                  public_jobs: bool = False) -> Path:
    """The unzipped artifact of ``notebook`` (what a deploy ships), /jobs attached as deploy does."""
    from kagg.deploy import convert_checked
    from kagg.jobs_template import attach_jobs
    from kagg.packaging.builder import write_tree

    function = convert_checked(str(notebook))
    assert attach_jobs(function, str(notebook), public, public_jobs).enabled
    write_tree(function, shims, dest)
    return dest


@dataclass
class Req:
    method: str
    path: str
    body: Optional[dict] = None
    headers: dict = field(default_factory=dict)


@dataclass
class Resp:
    status: int
    headers: dict
    text: str

    def json(self):
        return json.loads(self.text)


DRIVER = r"""
import json, sys, threading
from concurrent.futures import ThreadPoolExecutor
kind, folder = sys.argv[1], sys.argv[2]
sys.path.insert(0, folder)
if kind == "lambda":
    import lambda_function as shim
else:
    import azure.functions as func
    import function_app as shim
    user = shim.app.get_functions()[0].get_user_function()

def event(r):
    path, _, query = r["path"].partition("?")
    headers = {"host": "abc.lambda-url.us-east-1.on.aws", **{k.lower(): v for k, v in r["headers"].items()}}
    ev = {"version": "2.0", "routeKey": "$default", "rawPath": path, "rawQueryString": query, "headers": headers,
          "isBase64Encoded": False, "requestContext": {"http": {"method": r["method"], "path": path,
          "protocol": "HTTP/1.1", "sourceIp": "1.2.3.4", "userAgent": "t"}, "requestId": "r", "stage": "$default"}}
    if r["body"] is not None:
        ev["body"] = json.dumps(r["body"])
    return ev

def one(r):
    if kind == "lambda":
        out = shim.handler(event(r), None)
        return {"status": out["statusCode"], "headers": out["headers"], "text": out["body"]}
    path, _, query = r["path"].partition("?")
    from urllib.parse import parse_qsl
    req = func.HttpRequest(method=r["method"], url="https://app.azurewebsites.net" + r["path"],
                           headers=r["headers"], params=dict(parse_qsl(query)),
                           route_params={"path": path.lstrip("/")},
                           body=b"" if r["body"] is None else json.dumps(r["body"]).encode())
    resp = user(req)
    return {"status": resp.status_code, "headers": dict(resp.headers), "text": resp.get_body().decode()}

for line in sys.stdin:
    msg = json.loads(line)
    if msg.get("modules"):
        out = sorted(m for m in sys.modules if m.split(".")[0] in ("kagg_jobs", "kagg_jobs_kaggle", "kagglesdk",
                                                                   "requests", "kagg"))
    else:
        with ThreadPoolExecutor(max(1, min(64, len(msg["reqs"])))) as pool:
            out = list(pool.map(one, msg["reqs"]))
    sys.stdout.write(json.dumps(out) + "\n")
    sys.stdout.flush()
"""


class DriverInstance:
    """One warm instance of the Lambda or Azure entry point, in a subprocess of its own."""

    def __init__(self, kind: str, folder: Path, env: dict[str, str], log: Path):
        self.kind = kind
        self._log = open(log, "wb")
        self.log_path = log
        full = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        full.update(env)
        self.proc = subprocess.Popen([sys.executable, "-c", DRIVER, kind, str(folder)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self._log, cwd=folder, env=full, text=True)
        self._lock = threading.Lock()

    def _ask(self, msg: dict):
        with self._lock:
            self.proc.stdin.write(json.dumps(msg) + "\n")
            self.proc.stdin.flush()
            line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"{self.kind} driver died: {self.log_path.read_text()[-3000:]}")
        return json.loads(line)

    def send(self, reqs: list[Req]) -> list[Resp]:
        """Every request at once (a thread each), as concurrent invocations of one instance."""
        raw = self._ask({"reqs": [r.__dict__ for r in reqs]})
        return [Resp(r["status"], {k.lower(): v for k, v in r["headers"].items()}, r["text"]) for r in raw]

    def modules(self) -> list[str]:
        return self._ask({"modules": True})

    def log(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        self.proc.stdin.close()
        reap(self.proc)
        self._log.close()


class HttpInstance:
    """An endpoint reached over a real socket (functions-framework, a local deploy)."""

    def __init__(self, url: str, proc: Optional[subprocess.Popen] = None, log: Optional[Path] = None):
        self.url = url.rstrip("/")
        self.proc = proc
        self.log_path = log

    @classmethod
    def functions_framework(cls, folder: Path, env: dict[str, str], log: Path) -> "HttpInstance":
        port = free_port()
        full = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        full.update(env)
        proc = subprocess.Popen([sys.executable, "-m", "functions_framework", "--target", "kagg_http",
                                 "--source", str(folder / "main.py"), "--host", "127.0.0.1", "--port", str(port)],
                                stdout=open(log, "wb"), stderr=subprocess.STDOUT, cwd=folder, env=full)
        inst = cls(f"http://127.0.0.1:{port}", proc, log)
        deadline = time.monotonic() + 60
        while True:
            try:
                if inst.send([Req("GET", "/health")])[0].status == 200:
                    return inst
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"functions-framework did not start: {log.read_text()}")
            time.sleep(0.1)

    def _one(self, r: Req) -> Resp:
        data = None if r.body is None else json.dumps(r.body).encode()
        headers = {"Content-Type": "application/json", **r.headers} if data is not None else dict(r.headers)
        req = urllib.request.Request(self.url + r.path, data=data, method=r.method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                return Resp(resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read().decode())
        except urllib.error.HTTPError as exc:
            with exc:
                return Resp(exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read().decode())

    def send(self, reqs: list[Req]) -> list[Resp]:
        if len(reqs) == 1:
            return [self._one(reqs[0])]
        with ThreadPoolExecutor(len(reqs)) as pool:
            return list(pool.map(self._one, reqs))

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            reap(self.proc)


def wait_done(inst, job_id: str, timeout: float = 180) -> dict:
    """Poll GET /jobs/ID every 0.2 s until the job has ended (a limit for a broken run, not a measurement)."""
    deadline = time.monotonic() + timeout
    while True:
        body = inst.send([Req("GET", f"/jobs/{job_id}")])[0].json()
        if body.get("status") in ("complete", "error", "stopped"):
            return body
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job_id} did not end in {timeout} s: {body}")
        time.sleep(0.2)


def fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=30) as resp:
        return resp.read()
