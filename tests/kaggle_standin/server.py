"""The stand-in's HTTP side: Kaggle's wire protocol over a real socket.

- ``POST /v1/{service}/{Method}`` with camelCase JSON (kagglesdk's KaggleHttpClient), HTTP Basic
  ``user:key`` or ``Bearer <token>``; errors as HTTP status + ``{"code", "message"}``.
- ``GET /v1/kernels/logs/stream/{owner}/{slug}?versionLabel=vN``: server-sent events while the
  session runs (ending with ``END_OF_LOG``), the stored JSON log once it is over.
- ``GET /outputs/{owner}/{slug}/vN/{path}``: an output file, no auth (Kaggle hands out signed
  URLs), with ETag / Last-Modified / Range / If-Range, sent with sendfile so 20 MB files are cheap.
- Every request is recorded, can be slowed (``latency_s``) and can be answered by an injected
  fault (JSON or HTML error page, a dropped connection, or the real work then an error).
"""

from __future__ import annotations

import base64
import email.utils
import json
import os
import re
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import TYPE_CHECKING, Optional
from urllib.parse import parse_qs, quote, unquote, urlsplit

from .api import NOT_FOUND, ApiError
from .model import Call, Fault, LogEntry

if TYPE_CHECKING:
    from . import KaggleStandIn

_RPC = re.compile(r"^/(?:api/)?v1/([\w.]+)/(\w+)$")
_LOGS = re.compile(r"^/(?:api/)?v1/kernels/logs/stream/([^/]+)/([^/]+)$")
_OUTPUT = re.compile(r"^/outputs/([^/]+)/([^/]+)/(v\d+)/(.+)$")
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
_REASONS = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
            429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway",
            503: "Service Unavailable"}
NO_AUTH = {"IntrospectToken"}


def html_page(status: int) -> bytes:
    """The kind of page Kaggle's front end sends for 429/5xx (what a JSON parser chokes on)."""
    reason = _REASONS.get(status, "Error")
    return (f"<!DOCTYPE html>\n<html lang=en><meta charset=utf-8><title>Error {status} ({reason})!!1</title>"
            f"<p><b>{status}.</b> <ins>That's an error.</ins><p>The server encountered an error. "
            f"Please try again later. <ins>That's all we know.</ins></html>\n").encode()


def make_handler(standin: "KaggleStandIn") -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "KaggleStandIn/1"

        def log_message(self, *args) -> None:
            return None

        # -- plumbing --------------------------------------------------------------------------
        def _send(self, status: int, body: bytes, content_type: str, extra: Optional[dict] = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for key, value in (extra or {}).items():
                self.send_header(key, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _json(self, status: int, data: dict) -> None:
            self._send(status, json.dumps(data).encode(), "application/json")

        def _error(self, status: int, message: str) -> None:
            self._json(status, {"code": status, "message": message})

        def _fault(self, fault: Fault) -> None:
            if fault.delay_s:
                standin.closed.wait(fault.delay_s)
            if fault.drop:
                self.close_connection = True
                return
            extra = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
            if fault.html:
                self._send(fault.status, html_page(fault.status), "text/html; charset=UTF-8", extra)
            else:
                body = {"code": fault.status, "message": _REASONS.get(fault.status, "Error")}
                self._send(fault.status, json.dumps(body).encode(), "application/json", extra)

        def _user(self) -> Optional[str]:
            auth = self.headers.get("Authorization", "")
            scheme, _, value = auth.partition(" ")
            if scheme == "Bearer" and value == standin.key:
                return standin.user
            if scheme == "Basic":
                try:
                    name, _, key = base64.b64decode(value).decode().partition(":")
                except ValueError:
                    return None
                if name == standin.user and key == standin.key:
                    return name
            return None

        def _record(self, name: str, body: dict) -> None:
            with standin.lock:
                standin.calls.append(Call(self.command, self.path, name, body, dict(self.headers.items())))
            if standin.latency_s:
                time.sleep(standin.latency_s)

        # -- verbs -----------------------------------------------------------------------------
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            path = urlsplit(self.path).path
            match = _RPC.match(path)
            name = match.group(2) if match else path
            try:
                body = json.loads(raw or b"{}")
                if not isinstance(body, dict):
                    raise ValueError("not an object")
            except ValueError:
                body = {}
                self._record(name, body)
                return self._error(400, "The request body is not JSON")
            self._record(name, body)
            method = standin.api.dispatch(name) if match else None
            special = {"DownloadKernelOutput": self._redirect_output,  # replies that are not JSON
                       "GetKernelSessionLogsStream": self._logs_post}.get(name) if match else None
            if method is None and special is None:
                return self._error(404, f"No such method: {path}")
            fault = standin.take_fault(name)
            if fault is not None and not fault.accept_first:
                return self._fault(fault)
            user = self._user()
            if user is None and name not in NO_AUTH:
                return self._error(401, "Unauthenticated")
            if special is not None:
                return special(user or "", body)
            try:
                with standin.lock:
                    reply = method(user or "", body)
            except ApiError as e:
                return self._error(e.status, e.message)
            except Exception as e:  # a bug in the stand-in: say so, rather than drop the connection
                return self._error(500, f"stand-in failure in {name}: {type(e).__name__}: {e}")
            if fault is not None:
                return self._fault(fault)
            self._json(200, reply)

        def do_GET(self) -> None:
            split = urlsplit(self.path)
            path = unquote(split.path)
            if _OUTPUT.match(path):
                self._record("output-file", {})
                fault = standin.take_fault("output-file")
                if fault is not None:
                    return self._fault(fault)
                return self._file(*_OUTPUT.match(path).groups())
            match = _LOGS.match(path)
            if match:
                self._record("logs-stream", {})
                fault = standin.take_fault("logs-stream")
                if fault is not None:
                    return self._fault(fault)
                if self._user() is None:
                    return self._error(401, "Unauthenticated")
                label = parse_qs(split.query).get("versionLabel", [None])[0]
                return self._logs(match.group(1), match.group(2), label)
            self._record(path, {})
            self._error(404, "Not found")

        do_HEAD = do_GET

        # -- replies that are not JSON objects ------------------------------------------------
        def _redirect_output(self, user: str, body: dict) -> None:
            """DownloadKernelOutput: a redirect to the file's URL (kagglesdk's HttpRedirect)."""
            number = body.get("versionNumber")
            query = {"userName": body.get("ownerSlug", ""), "kernelSlug": body.get("kernelSlug", ""),
                     "versionLabel": f"v{number}" if number else None}
            try:
                with standin.lock:
                    kernel, version = standin.api.find_version(user, query)
            except ApiError as e:
                return self._error(e.status, e.message)
            name = body.get("filePath") or ""
            if not version.finished or name not in standin.output_names(version):
                return self._error(404, "No such output file")
            location = f"{standin.url}/outputs/{kernel.owner}/{kernel.slug}/{version.label}/{quote(name)}"
            self._send(302, b"", "text/plain", {"Location": location})

        def _logs_post(self, user: str, body: dict) -> None:
            self._logs(body.get("userName", ""), body.get("kernelSlug", ""), body.get("versionLabel"))

        # -- the log stream --------------------------------------------------------------------
        def _logs(self, owner: str, slug: str, label: Optional[str]) -> None:
            user = self._user() or ""
            try:
                with standin.lock:
                    _, version = standin.api.find_version(user, {"userName": owner, "kernelSlug": slug,
                                                                 "versionLabel": label})
            except ApiError as e:
                return self._error(e.status, e.message)
            if version.finished:
                entries = [_entry(e) for e in version.log]
                return self._send(200, json.dumps(entries).encode(), "application/json")
            # chunked, as Kaggle's front end streams it: requests' iter_lines then gets each event
            # as it comes (a raw stream would sit in its 512-byte read)
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()

            def chunk(data: bytes) -> None:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))

            sent, idle = 0, 0
            try:
                while True:
                    with version.changed:
                        if sent >= len(version.log) and not version.finished and not standin.closing:
                            version.changed.wait(timeout=0.5)
                        fresh, over = version.log[sent:], version.finished or standin.closing
                    for entry in fresh:
                        chunk(f"data: {json.dumps(_entry(entry))}\n\n".encode())
                    sent += len(fresh)
                    idle = 0 if fresh else idle + 1
                    if idle and idle % 20 == 0:
                        chunk(b": keep-alive\n\n")  # finds a client that went away
                    if over and sent >= len(version.log):
                        chunk(b"data: END_OF_LOG\n\n")
                        self.wfile.write(b"0\r\n\r\n")
                        return
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True
                return

        # -- output files ----------------------------------------------------------------------
        def _file(self, owner: str, slug: str, label: str, name: str) -> None:
            with standin.lock:
                kernel = standin.kernels.get((owner, slug))
                version = kernel.version(label) if kernel is not None else None
            if version is None or not version.finished:
                return self._error(404, NOT_FOUND)
            working = version.working.resolve()
            target = (working / name).resolve()
            if working not in target.parents or not target.is_file():
                return self._error(404, "No such output file")
            st = target.stat()
            size = st.st_size
            etag = f'"{st.st_mtime_ns:x}-{size:x}"'
            modified = email.utils.formatdate(st.st_mtime, usegmt=True)
            start, end, status = 0, size - 1, 200
            wanted = self.headers.get("Range")
            if_range = self.headers.get("If-Range")
            if wanted and (if_range is None or if_range in (etag, modified)):
                m = _RANGE.match(wanted.strip())
                first, last = (m.group(1), m.group(2)) if m else ("", "")
                if not m or (not first and not last):
                    return self._send(416, b"", "text/plain", {"Content-Range": f"bytes */{size}"})
                if first:
                    start, end = int(first), min(int(last), size - 1) if last else size - 1
                else:
                    start, end = max(0, size - int(last)), size - 1
                if start >= size or start > end:
                    return self._send(416, b"", "text/plain", {"Content-Range": f"bytes */{size}"})
                status = 206
            length = end - start + 1 if size else 0
            self.send_response(status)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(length))
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("ETag", etag)
            self.send_header("Last-Modified", modified)
            if status == 206:
                self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
            self.end_headers()
            if self.command == "HEAD" or not length:
                return
            self.wfile.flush()
            with open(target, "rb") as f:
                try:
                    self.connection.sendfile(f, start, length)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True

    return Handler


def _entry(e: LogEntry) -> dict:
    return {"stream_name": e.stream_name, "time": round(e.time, 6), "data": e.data}


def output_names(working: Path) -> list[str]:
    """Files a run left under working/, as Kaggle lists them (relative paths, sorted)."""
    if not working.is_dir():
        return []
    return sorted(p.relative_to(working).as_posix() for p in working.rglob("*")
                  if p.is_file() and not p.is_symlink() and os.access(p, os.R_OK))
