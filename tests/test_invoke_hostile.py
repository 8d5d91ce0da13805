"""``kagg invoke`` against hostile input (issue "Hostile input and shared state"):

* 15 -- credentials in the URL (``http://alice:s3cret@host/?token=abc``) authenticate (Basic)
  and are never shown: not in errors, not in ``-i`` output, not in the result's URL; a
  registry endpoint is still signed by its provider; ``--path`` goes onto the URL's path,
  before its query string;
* 16 -- ``--timeout`` bounds the whole call, also against a server that trickles its answer;
* 18 -- an answer larger than ``--max-size`` (64 MiB) is refused without holding it in memory,
  and ``-o FILE`` streams any size to a file, atomically.

Every server is started here, on 127.0.0.1, by the test that uses it. Times are only ever
checked as generous upper bounds that the old code broke by far.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable, Iterator

import pytest

from conftest import ROOT, free_port, run_kagg

USER, PASSWORD, TOKEN = "alice", "s3cret", "tok123abc"
GOOD_AUTH = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
MiB = 1 << 20


class Request:
    def __init__(self, method: str, target: str, headers: dict[str, str], body: bytes):
        self.method, self.target, self.headers, self.body = method, target, headers, body


def read_request(conn: socket.socket) -> Request | None:
    """One request (head and Content-Length body); None when the client closed first."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, target, _ = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        key, _, value = line.partition(":")
        headers[key.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        body += chunk
    return Request(method, target, headers, body)


def answer(conn: socket.socket, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
    head = [f"HTTP/1.1 {status} X", f"Content-Length: {len(body)}", "Content-Type: application/json",
            "Connection: close", *(f"{k}: {v}" for k, v in (headers or {}).items())]
    conn.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + body)


class Server:
    """A socket server on 127.0.0.1: ``behaviour(conn, request)`` for each connection;
    ``requests`` keeps what arrived, ``stop`` tells a long behaviour to end."""

    def __init__(self, behaviour: Callable[[socket.socket, Request], None]):
        self.behaviour = behaviour
        self.requests: list[Request] = []
        self.stop = threading.Event()
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:  # closed by close()
                return
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn: socket.socket) -> None:
        with conn:
            try:
                request = read_request(conn)
                if request is not None:
                    self.requests.append(request)
                    self.behaviour(conn, request)
            except OSError:  # the client went away
                pass

    def close(self) -> None:
        self.stop.set()
        self.sock.close()


@pytest.fixture
def serve(monkeypatch) -> Iterator[Callable[[Callable[[socket.socket, Request], None]], Server]]:
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    servers: list[Server] = []

    def start(behaviour):
        servers.append(Server(behaviour))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def with_credentials(server: Server, path: str = "/") -> str:
    return f"http://{USER}:{PASSWORD}@127.0.0.1:{server.port}{path}?token={TOKEN}"


def shown(server: Server, path: str = "/") -> str:
    return f"http://{USER}:***@127.0.0.1:{server.port}{path}?token=***"


def no_secrets(*texts: str) -> None:
    for text in texts:
        assert PASSWORD not in text and TOKEN not in text, text


def one_error_line(res: subprocess.CompletedProcess | str) -> str:
    """The one line of stderr (``res`` a finished kagg, or its stderr), checked to be an error."""
    stderr = res if isinstance(res, str) else res.stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), stderr
    assert "Traceback" not in stderr and "unexpected" not in stderr
    return lines[0]


# -- 15: credentials in the URL --------------------------------------------------------------------

def _auth_echo(conn: socket.socket, req: Request) -> None:
    """401 without alice's Basic credentials; else the request as the server saw it."""
    if req.headers.get("authorization") != GOOD_AUTH:
        answer(conn, 401, json.dumps({"error": {"type": "Unauthorized", "message": "who are you?"}}).encode())
        return
    location = f"http://{USER}:{PASSWORD}@127.0.0.1:1/elsewhere?token={TOKEN}"
    answer(conn, 200, json.dumps({"target": req.target, "method": req.method, "body": req.body.decode()}).encode(),
           {"Content-Location": location})


def test_credentials_in_the_url_authenticate_and_are_not_printed(serve):
    server = serve(_auth_echo)
    res = run_kagg("invoke", with_credentials(server), "{}")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout) == {"target": f"/?token={TOKEN}", "method": "POST", "body": "{}"}
    (req,) = server.requests
    assert req.headers["authorization"] == GOOD_AUTH and req.headers["host"] == f"127.0.0.1:{server.port}"

    with_headers = run_kagg("invoke", with_credentials(server), "{}", "-i")
    assert with_headers.returncode == 0, with_headers.stderr
    assert "HTTP 200" in with_headers.stderr
    assert "content-location: http://alice:***@127.0.0.1:1/elsewhere?token=***" in with_headers.stderr
    no_secrets(res.stderr, with_headers.stderr)


def test_path_goes_before_the_query_string(serve):
    server = serve(_auth_echo)
    res = run_kagg("invoke", with_credentials(server), "--path", "/health", "-q", "x=1")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["target"] == f"/health?token={TOKEN}&x=1"


def test_errors_show_the_url_without_credentials(serve):
    def fail(conn, req):
        answer(conn, 500, b'{"error": {"type": "ValueError", "message": "bad"}}')

    server = serve(fail)
    res = run_kagg("invoke", with_credentials(server), "{}")
    assert res.returncode == 1
    assert one_error_line(res) == f"Error: {shown(server)} answered 500: ValueError: bad"
    assert server.requests[0].headers["authorization"] == GOOD_AUTH

    port = free_port()
    refused = run_kagg("invoke", f"http://{USER}:{PASSWORD}@127.0.0.1:{port}/?token={TOKEN}", "-i")
    assert refused.returncode == 1
    assert one_error_line(refused).startswith(f"Error: cannot reach http://{USER}:***@127.0.0.1:{port}/?token=***")
    no_secrets(res.stdout, res.stderr, refused.stdout, refused.stderr)


def test_the_result_carries_the_redacted_url(serve):
    from kagg.invoke import call

    server = serve(_auth_echo)
    result = call(with_credentials(server, "/fn/"), payload={}, path="/schema", timeout=30)
    assert result.ok and result.data["target"] == f"/fn/schema?token={TOKEN}"
    assert result.url == shown(server, "/fn/schema")


def test_a_registry_endpoint_is_signed_by_its_provider(serve, registry_path):
    """A private AWS function URL in the registry: SigV4 from the provider (the fake test
    credentials of conftest), for the host the request really goes to."""
    from kagg.model import Endpoint
    from kagg.registry import Registry

    def echo(conn, req):
        answer(conn, 200, json.dumps({"authorization": req.headers.get("authorization", ""),
                                      "target": req.target}).encode())

    server = serve(echo)
    Registry(registry_path).put(Endpoint(name="private", provider="aws", url=server.url + "?token=" + TOKEN,
                                         auth="AWS_IAM", region="us-east-1"))
    res = run_kagg("invoke", "private", "--path", "/health")
    assert res.returncode == 0, res.stderr
    seen = json.loads(res.stdout)
    assert seen["authorization"].startswith("AWS4-HMAC-SHA256 Credential=testing/")
    assert "SignedHeaders=" in seen["authorization"] and seen["target"] == f"/health?token={TOKEN}"


# -- 16: --timeout bounds the whole call -------------------------------------------------------------

def _trickle(head: bytes, stop: threading.Event, count: int = 60, every: float = 0.5) -> Callable:
    """Send ``head``, then one byte every ``every`` s (``count`` of them, 30 s in all by default)."""
    def behaviour(conn: socket.socket, req: Request) -> None:
        conn.sendall(head)
        for _ in range(count):
            if stop.wait(every):
                return
            conn.sendall(b"a")
    return behaviour


TRICKLES = {
    # the old client waited 0.5 s per byte, never --timeout in all: 30 s, then an answer
    "body": b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 60\r\n\r\n",
    "headers": b"HTTP/1.1 200 OK\r\nX-Slow: ",
}


@pytest.mark.parametrize("where", list(TRICKLES))
def test_a_trickling_answer_is_cut_at_the_timeout(serve, where):
    stop = threading.Event()
    server = serve(_trickle(TRICKLES[where], stop))
    try:
        started = time.monotonic()
        res = run_kagg("invoke", with_credentials(server), "--timeout", "3", timeout=90)
        elapsed = time.monotonic() - started
    finally:
        stop.set()
    assert res.returncode == 1, (res.stdout, res.stderr)
    line = one_error_line(res)
    assert line.startswith(f"Error: {shown(server)} did not answer within 3 s"), line
    assert ("bytes of the body" in line) == (where == "body"), line
    assert elapsed < 20, elapsed  # 3 s and the start of two Pythons; the old code took 30 s
    no_secrets(res.stdout, res.stderr)


def test_the_library_call_has_the_same_deadline(serve):
    from kagg.errors import OperationFailed
    from kagg.invoke import call

    stop = threading.Event()
    server = serve(_trickle(TRICKLES["body"], stop))
    try:
        started = time.monotonic()
        with pytest.raises(OperationFailed) as exc:
            call(server.url, timeout=1.5)
        elapsed = time.monotonic() - started
    finally:
        stop.set()
    assert "did not answer within 1.5 s" in str(exc.value) and elapsed < 15, (exc.value, elapsed)


# -- 18: big answers -------------------------------------------------------------------------------

#: what the big answers are made of: 1 MiB, the same every time
PATTERN = bytes(range(256)) * 4096


def _big(size: int, framing: str, cut_at: int | None = None) -> Callable:
    """200 with ``size`` bytes of PATTERN, sent with a Content-Length, chunked, or until the close;
    ``cut_at``: close the connection after that many bytes."""
    def behaviour(conn: socket.socket, req: Request) -> None:
        head = ["HTTP/1.1 200 OK", "Content-Type: application/octet-stream", "Connection: close"]
        if framing == "length":
            head.append(f"Content-Length: {size}")
        elif framing == "chunked":
            head.append("Transfer-Encoding: chunked")
        conn.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
        sent = 0
        while sent < size:
            piece = PATTERN[: min(len(PATTERN), size - sent)]
            if cut_at is not None and sent + len(piece) > cut_at:
                return
            conn.sendall(b"%x\r\n%s\r\n" % (len(piece), piece) if framing == "chunked" else piece)
            sent += len(piece)
        if framing == "chunked":
            conn.sendall(b"0\r\n\r\n")
    return behaviour


#: runs kagg as its child and reports its exit, output and peak resident memory (bytes)
MEASURE = """
import json, resource, subprocess, sys
res = subprocess.run([sys.executable, "-m", "kagg", *sys.argv[1:]], capture_output=True, text=True)
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * (1 if sys.platform == "darwin" else 1024)
print(json.dumps({"rc": res.returncode, "stdout": res.stdout, "stderr": res.stderr, "peak": peak}))
"""


def measured_kagg(*args: str, cwd: Path) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-c", MEASURE, *args], capture_output=True, text=True, env=env,
                          cwd=cwd, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


BIG = 200 * MiB
PEAK = 150 * 1000 * 1000


@pytest.mark.parametrize("framing", ["length", "chunked", "close"])
def test_a_huge_answer_is_refused_without_holding_it(serve, tmp_path, framing):
    server = serve(_big(BIG, framing))
    res = measured_kagg("invoke", server.url, cwd=tmp_path)
    assert res["rc"] == 1 and res["stdout"] == "", res
    assert one_error_line(res["stderr"]) == (f"Error: the answer from {server.url} is larger than 64 MiB; "
                        "write it to a file with -o FILE (or raise --max-size)")
    assert res["peak"] < PEAK, res["peak"] / MiB


@pytest.mark.parametrize("framing", ["length", "close"])
def test_o_streams_a_huge_answer_to_the_file(serve, tmp_path, framing):
    server = serve(_big(BIG, framing))
    out = tmp_path / "answer.bin"
    res = measured_kagg("invoke", server.url, "-o", str(out), cwd=tmp_path)
    assert res["rc"] == 0, res
    assert res["stdout"] == "" and res["stderr"].strip() == f"wrote 200 MiB ({BIG} bytes) to {out}", res["stderr"]
    assert out.stat().st_size == BIG
    with out.open("rb") as fh:
        for _ in range(BIG // MiB):
            assert fh.read(MiB) == PATTERN
    assert res["peak"] < PEAK, res["peak"] / MiB
    assert sorted(p.name for p in tmp_path.iterdir()) == ["answer.bin"]


def test_o_leaves_the_old_file_when_the_answer_breaks_off(serve, tmp_path):
    server = serve(_big(10 * MiB, "length", cut_at=3 * MiB))
    out = tmp_path / "answer.bin"
    out.write_bytes(b"the previous answer")
    res = run_kagg("invoke", server.url, "-o", str(out))
    assert res.returncode == 1
    assert "closed the connection in the middle of its answer" in one_error_line(res)
    assert out.read_bytes() == b"the previous answer"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["answer.bin"]  # no temporary file left


def test_o_writes_an_ordinary_json_answer_and_refuses_a_bad_place(serve, tmp_path):
    server = serve(lambda conn, req: answer(conn, 200, b'{"y": 2}'))
    out = tmp_path / "y.json"
    res = run_kagg("invoke", server.url, '{"x": 1}', "-o", str(out))
    assert res.returncode == 0 and out.read_bytes() == b'{"y": 2}', res.stderr
    assert res.stderr.strip() == f"wrote 8 bytes to {out}"
    before = len(server.requests)
    for bad in (tmp_path, tmp_path / "missing" / "y.json"):
        res = run_kagg("invoke", server.url, '{"x": 1}', "-o", str(bad))
        assert res.returncode == 2 and str(bad) in one_error_line(res), res.stderr
    assert len(server.requests) == before  # refused before anything was sent


def test_o_does_not_write_an_error_answer(serve, tmp_path):
    server = serve(lambda conn, req: answer(conn, 500, b'{"error": {"type": "ValueError", "message": "no"}}'))
    out = tmp_path / "y.json"
    res = run_kagg("invoke", server.url, "-o", str(out))
    assert res.returncode == 1 and one_error_line(res) == f"Error: {server.url} answered 500: ValueError: no"
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_max_size_changes_the_limit(serve):
    body = json.dumps({"blob": "x" * 3000}).encode()
    server = serve(lambda conn, req: answer(conn, 200, body))
    small = run_kagg("invoke", server.url, "--max-size", "2k")
    assert small.returncode == 1
    assert "is larger than 2 KiB; write it to a file with -o FILE" in one_error_line(small)
    enough = run_kagg("invoke", server.url, "--max-size", "1MiB")
    assert enough.returncode == 0 and json.loads(enough.stdout) == {"blob": "x" * 3000}, enough.stderr
    for bad in ("lots", "0", "-5M", "1.5.2G"):
        res = run_kagg("invoke", server.url, "--max-size", bad)
        assert res.returncode == 2 and "--max-size" in one_error_line(res), (bad, res.stderr)


@pytest.mark.parametrize("text, size", [("100", 100), ("2k", 2048), ("2KiB", 2048), ("64M", 64 * MiB),
                                        ("64 MB", 64 * MiB), ("1.5g", 3 * 512 * MiB), ("10b", 10)])
def test_parse_size(text, size):
    from kagg.invoke import parse_size

    assert parse_size(text) == size
