"""``kagg invoke`` against an endpoint that breaks the connection: one line saying what it did, exit 1.

A tiny socket server in the test reads the request, then closes without answering, sends
something that is not HTTP, sends half a body, or resets the connection (SO_LINGER 0).
"""

from __future__ import annotations

import socket
import struct
import threading
from typing import Callable, Iterator

import pytest

from conftest import run_kagg
from kagg.errors import OperationFailed, TransientError
from kagg.invoke import call


def _read_request(conn: socket.socket) -> None:
    """The request's head and body: a socket closed with unread data resets instead of closing."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        key, _, value = line.partition(b":")
        if key.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            return
        body += chunk


def _close(conn: socket.socket) -> None:
    conn.close()


def _garbage(conn: socket.socket) -> None:
    conn.sendall(b"SSH-2.0-OpenSSH_9.6\r\n")
    conn.close()


def _short_body(conn: socket.socket) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"answer\": ")
    conn.close()


def _reset(conn: socket.socket) -> None:
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()


@pytest.fixture
def misbehaving(monkeypatch) -> Iterator[Callable[[Callable[[socket.socket], None]], str]]:
    """``start(behaviour)`` -> the URL of a server that treats every connection with ``behaviour``."""
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    servers: list[socket.socket] = []

    def start(behaviour: Callable[[socket.socket], None]) -> str:
        server = socket.socket()
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        servers.append(server)

        def serve() -> None:
            while True:
                try:
                    conn, _ = server.accept()
                except OSError:  # closed by the fixture
                    return
                try:
                    _read_request(conn)
                    behaviour(conn)
                except OSError:
                    conn.close()

        threading.Thread(target=serve, daemon=True).start()
        return f"http://127.0.0.1:{server.getsockname()[1]}/"

    yield start
    for server in servers:
        server.close()


CASES = [
    (_close, "the endpoint closed the connection without answering"),
    (_garbage, "the endpoint did not answer with HTTP"),
    (_short_body, "the endpoint closed the connection in the middle of its answer"),
    (_reset, "the endpoint reset the connection without answering"),
]


@pytest.mark.parametrize("behaviour, message", CASES, ids=["close", "garbage", "short-body", "reset"])
@pytest.mark.parametrize("payload", [None, '{"x": 1}'], ids=["get", "post"])
def test_invoke_says_what_the_endpoint_did(misbehaving, behaviour, message, payload):
    url = misbehaving(behaviour)
    res = run_kagg("invoke", url, *([payload] if payload else []))
    assert res.returncode == 1, (res.stdout, res.stderr)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith(f"Error: {message} ({url})"), lines[0]
    assert "unexpected" not in lines[0] and "Traceback" not in res.stderr and res.stdout == ""


def test_garbage_and_short_body_are_shown(misbehaving):
    res = run_kagg("invoke", misbehaving(_garbage))
    assert "it sent 'SSH-2.0-OpenSSH_9.6'" in res.stderr
    res = run_kagg("invoke", misbehaving(_short_body))
    assert "11 of 100 bytes of the body arrived" in res.stderr


@pytest.mark.parametrize("behaviour, transient", [(_close, True), (_reset, True), (_short_body, True),
                                                  (_garbage, False)], ids=["close", "reset", "short-body", "garbage"])
def test_call_raises_operation_failed_and_marks_what_may_pass(misbehaving, behaviour, transient):
    """``kagg batch --operation invoke`` retries an item whose error is transient (a dropped connection)."""
    with pytest.raises(OperationFailed) as exc:
        call(misbehaving(behaviour), payload={"x": 1}, timeout=30)
    assert isinstance(exc.value, TransientError) == transient
    assert "\n" not in str(exc.value)


def test_a_refused_connection_is_still_cannot_reach():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    res = run_kagg("invoke", f"http://127.0.0.1:{port}/")
    assert res.returncode == 1 and res.stderr.startswith(f"Error: cannot reach http://127.0.0.1:{port}/")
