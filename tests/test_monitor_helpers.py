"""Local HTTP servers for the monitor tests (no tests here; imported by test_monitor_*.py).

A threaded ``http.server`` with keep-alive: ``time.sleep`` in a thread is precise to a
fraction of a millisecond, so "20 ms" really is 20 ms and the monitor's figures can be
held to ±2 ms. Everything binds 127.0.0.1 on a port the OS picks.
"""

from __future__ import annotations

import base64
import contextlib
import json
import socket
import socketserver
import struct
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator, Optional


class FakeEndpoint:
    """An endpoint that speaks kagg's HTTP contract, with latency, errors and a stall to order.

    Every request but ``/schema`` counts as a probe (``/health`` too, so ``--health`` runs
    can be checked like any other).

    ``error_every=n`` answers 500 to every n-th probe; ``stall=(after, length)`` holds every
    request arriving between ``after`` and ``after + length`` seconds from the first probe
    until the stall ends (a frozen process, as a client sees it).

    ``schema_failures=n`` answers ``schema_status`` (500) to the first n ``/schema`` requests
    (-1: to all of them); ``redirect="/final"`` answers ``POST /`` and ``GET /`` with a 302
    there (``/final`` then answers as ``/`` would); ``auth=(user, password)`` answers 401 to
    any request without that Basic ``Authorization``.
    """

    def __init__(self, delay: float = 0.020, error_every: int = 0,
                 stall: Optional[tuple[float, float]] = None, instance: str = "inst-1",
                 schema: Optional[dict] = None, schema_failures: int = 0, schema_status: int = 500,
                 redirect: Optional[str] = None, auth: Optional[tuple[str, str]] = None):
        self.delay, self.error_every, self.stall, self.instance = delay, error_every, stall, instance
        self.schema = schema if schema is not None else {
            "type": "object", "properties": {"x": {"type": "integer", "default": 3}}}
        self.schema_failures, self.schema_status, self.redirect = schema_failures, schema_status, redirect
        self.auth = ("Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()) if auth else None
        self.schema_requests = 0
        self.redirects = 0
        self.unauthorized = 0
        self.lock = threading.Lock()
        self.probes = 0
        self.first: Optional[float] = None
        self.bodies: list[bytes] = []
        self.methods: list[str] = []
        self.paths: list[str] = []
        self.headers: list[dict[str, str]] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self.server.daemon_threads = True
        self.server.handle_error = lambda request, address: None  # clients that gave up
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)

    def __enter__(self) -> "FakeEndpoint":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _respond(self, path: str, method: str, body: bytes,
                 headers: dict[str, str]) -> tuple[int, dict, float, bool]:
        """(status, JSON, handler seconds, cold) for one request."""
        if path.startswith("/schema"):
            with self.lock:
                self.schema_requests += 1
                failing = self.schema_failures < 0 or self.schema_requests <= self.schema_failures
            if failing:
                return self.schema_status, {"error": {"type": "Flaky", "message": "planned"}}, 0.0, False
            return 200, self.schema, 0.0, False
        with self.lock:
            self.probes += 1
            n = self.probes
            now = time.monotonic()
            if self.first is None:
                self.first = now
            self.bodies.append(body)
            self.methods.append(method)
            self.paths.append(path)
            self.headers.append(headers)
        if self.stall:
            start = self.first + self.stall[0]
            end = start + self.stall[1]
            if start <= now < end:
                time.sleep(end - now)
        time.sleep(self.delay)
        if self.error_every and n % self.error_every == 0:
            return 500, {"error": {"type": "ValueError", "message": "planned"}}, self.delay, n == 1
        return 200, {"ok": True, "n": n}, self.delay, n == 1

    def _handler_class(self):
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms ACK wait

            def log_message(self, *args) -> None:
                pass

            def _plain(self, status: int, extra: dict[str, str]) -> None:
                self.send_response(status)
                for name, value in {**extra, "Content-Length": "0"}.items():
                    self.send_header(name, value)
                self.end_headers()

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                if endpoint.auth and self.headers.get("Authorization") != endpoint.auth:
                    with endpoint.lock:
                        endpoint.unauthorized += 1
                    return self._plain(401, {"WWW-Authenticate": 'Basic realm="test"'})
                if endpoint.redirect and self.path.split("?")[0] == "/":
                    with endpoint.lock:
                        endpoint.redirects += 1
                    return self._plain(302, {"Location": endpoint.redirect})
                status, data, handler_s, cold = endpoint._respond(self.path, self.command, body,
                                                                    dict(self.headers.items()))
                payload = json.dumps(data).encode()
                timing = f"handler;dur={handler_s * 1000:.3f}"
                if cold:
                    timing += ", init;dur=123.0"
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.send_header("Server-Timing", timing)
                self.send_header("X-Kagg-Instance", endpoint.instance)
                self.send_header("X-Kagg-Cold", "1" if cold else "0")
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = _serve

        return Handler


@contextlib.contextmanager
def server_process(*args: str) -> Iterator[str]:
    """A FakeEndpoint in its own process (see ``__main__`` below); yields its URL.

    Timing tests use this: a server sharing the test process's GIL would add its own
    scheduling delays to the figures under test.
    """
    proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), *args],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:"), f"test server did not start: {url!r}"
        yield url
    finally:
        proc.stdin.close()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class HostileServer:
    """A server on 127.0.0.1 that reads each request whole, then misbehaves, every time:

    ``close``: closes without answering; ``garbage``: answers with something that is not
    HTTP; ``short``: a body shorter than its Content-Length, then closes; ``reset``: resets
    the connection (RST) without answering; ``trickle``: a status line, then its headers one
    byte every ``every`` seconds for as long as the server runs; ``stream``: 200 OK and a
    body of ``size`` bytes, written in 1 MiB chunks as fast as the client reads.
    """

    MODES = ("close", "garbage", "short", "reset", "trickle", "stream")

    def __init__(self, mode: str, size: int = 0, every: float = 0.5):
        assert mode in self.MODES, mode
        self.mode, self.size, self.every = mode, size, every
        self.stop = threading.Event()
        self.requests = 0
        server = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                sock: socket.socket = self.request
                try:
                    while server._read_request(sock):
                        server.requests += 1
                        if not server._misbehave(sock):
                            return
                except OSError:  # the client gave up
                    pass

        class Server(socketserver.ThreadingTCPServer):
            allow_reuse_address = True
            daemon_threads = True

            def handle_error(self, request, client_address) -> None:  # a client that gave up
                pass

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)

    @staticmethod
    def _read_request(sock: socket.socket) -> bool:
        """Read one request (headers and Content-Length body); False when the client closed."""
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                return False
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        while len(body) < length:
            chunk = sock.recv(65536)
            if not chunk:
                return False
            body += chunk
        return True

    def _misbehave(self, sock: socket.socket) -> bool:
        """Answer one request badly; True to keep the connection for another request."""
        if self.mode == "close":
            sock.shutdown(socket.SHUT_RDWR)
        elif self.mode == "garbage":
            sock.sendall(b"SSH-2.0-OpenSSH_9.6\r\nProtocol mismatch.\r\n\r\n")
            sock.shutdown(socket.SHUT_RDWR)
        elif self.mode == "short":
            sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n"
                         b'{"ok": tr')
            sock.shutdown(socket.SHUT_RDWR)
        elif self.mode == "reset":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()  # now, before socketserver's own shutdown(SHUT_WR) could send a FIN first
        elif self.mode == "trickle":
            sock.sendall(b"HTTP/1.1 200 OK\r\n")
            for byte in b"X-Slow: " + b"a" * 10_000:
                if self.stop.wait(self.every):
                    break
                sock.sendall(bytes([byte]))
        elif self.mode == "stream":
            sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                         b"Content-Length: %d\r\n\r\n" % self.size)
            chunk = b"x" * (1 << 20)
            left = self.size
            while left > 0 and not self.stop.is_set():
                sock.sendall(chunk[:left])
                left -= len(chunk)
            return True
        return False

    def __enter__(self) -> "HostileServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.server.shutdown()
        self.server.server_close()


class WebhookReceiver:
    """Collects the JSON bodies POSTed to it (the alert webhook's far end), and their headers."""

    def __init__(self) -> None:
        self.received: list[dict] = []
        self.headers: list[dict[str, str]] = []
        self.event = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.headers.append(dict(self.headers.items()))
                receiver.received.append(json.loads(body))
                receiver.event.set()
                self.send_response(204)
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)

    def __enter__(self) -> "WebhookReceiver":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


if __name__ == "__main__":  # a server in its own process: no GIL shared with the client under test
    import argparse
    import sys

    parser = argparse.ArgumentParser()
    parser.add_argument("--delay", type=float, default=0.020)
    parser.add_argument("--error-every", type=int, default=0)
    parser.add_argument("--stall", type=float, nargs=2)
    args = parser.parse_args()
    with FakeEndpoint(args.delay, args.error_every, tuple(args.stall) if args.stall else None) as ep:
        print(ep.url, flush=True)
        sys.stdin.read()  # runs until the test closes our stdin
