"""Send one endpoint's scheduled requests with aiohttp and time each one.

One ``ClientSession`` per endpoint, its connector limited to ``concurrency`` and kept
alive, so connection setup is paid once, not per probe. A semaphore of the same size
caps requests in flight; a request waiting for it is still timed from its due time, so a
saturated endpoint shows up as latency rather than as a lower request rate.

Every request has a total deadline (``--timeout``) from the moment it is sent to the last
byte of its answer, however slowly the bytes come. Bodies are read as they stream and
thrown away (only their size is kept), so a huge answer costs no memory. Whatever the
server does (close, reset, garbage, a short body) becomes an error kind of that request
(:data:`ERROR_KINDS`), never an exception.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import sys
import time
from dataclasses import dataclass
from typing import Any, AsyncIterator, Callable, Optional

import aiohttp

from kagg.monitor.schedule import Schedule
from kagg.monitor.target import Target, schema_url

#: the error kinds that are not an HTTP status (``http_503``), as --json and --alert name
#: them, and as the report shows them
ERROR_KINDS = {
    "timeout": "timeout",
    "connection": "cannot connect",  # refused, unreachable, DNS
    "closed": "closed without answering",
    "reset": "connection reset",
    "invalid_http": "invalid HTTP response",
    "short_body": "short body",
    "bad_redirect": "bad redirect",
}
#: the most of a /schema answer that is kept (a bigger one is not a schema)
SCHEMA_LIMIT = 1 << 20

_REDIRECT_ERRORS = tuple(getattr(aiohttp, name) for name in (
    "TooManyRedirects", "NonHttpUrlRedirectClientError", "InvalidUrlRedirectClientError")
    if hasattr(aiohttp, name))
_RESET = (errno.ECONNRESET, errno.ECONNABORTED)

if sys.version_info >= (3, 11):
    _deadline = asyncio.timeout
else:  # pragma: no cover - Python 3.10: aiohttp's ClientTimeout(total=...) is the deadline alone
    @contextlib.asynccontextmanager
    async def _deadline(delay: Optional[float]) -> AsyncIterator[None]:
        yield


def error_label(kind: str) -> str:
    """How the report names an error kind: ``closed without answering``, ``http_503``."""
    return ERROR_KINDS.get(kind, kind)


def classify(exc: BaseException, answered: bool) -> str:
    """The error kind of a request that raised ``exc``; ``answered``: the status line had arrived."""
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):  # aiohttp's ServerTimeoutError too
        return "timeout"
    if _REDIRECT_ERRORS and isinstance(exc, _REDIRECT_ERRORS):
        return "bad_redirect"
    if isinstance(exc, aiohttp.ClientPayloadError):  # Content-Length not reached, a cut chunk
        return "short_body"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "short_body" if answered else "closed"
    if isinstance(exc, aiohttp.ClientResponseError):  # the parser's: not a status line, bad headers
        return "invalid_http"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return "connection"
    code = getattr(exc, "errno", None)
    if isinstance(exc, (ConnectionResetError, ConnectionAbortedError)) or code in _RESET:
        return "short_body" if answered else "reset"
    if isinstance(exc, BrokenPipeError) or code == errno.EPIPE:
        return "closed"
    return "connection"


@dataclass(slots=True)
class Result:
    """One request. Times are on the event loop's monotonic clock, in seconds."""

    seq: int
    due: float  # when the schedule wanted it sent
    sent: float  # when it was handed to aiohttp (after any wait for the concurrency cap)
    done: float  # when the full response was read, or the request failed
    status: Optional[int]
    error: Optional[str]  # None, a kind of ERROR_KINDS, or "http_<status>" for any non-2xx
    handler_ms: Optional[float] = None  # Server-Timing handler;dur
    init_ms: Optional[float] = None  # Server-Timing init;dur (cold starts)
    cold: Optional[bool] = None  # X-Kagg-Cold
    instance: Optional[str] = None  # X-Kagg-Instance
    size: int = 0  # body bytes received (the body itself is not kept)

    @property
    def latency_ms(self) -> float:
        """From the due time: what a client sending on schedule experiences."""
        return (self.done - self.due) * 1000.0

    @property
    def service_ms(self) -> float:
        """From the actual send: the uncorrected figure closed-loop tools report."""
        return (self.done - self.sent) * 1000.0

    @property
    def lag_ms(self) -> float:
        """How late the request left: scheduler lateness plus any wait for the cap."""
        return (self.sent - self.due) * 1000.0

    @property
    def network_ms(self) -> Optional[float]:
        """Service time not spent in the handler: network, runtime and platform."""
        return None if self.handler_ms is None else max(0.0, self.service_ms - self.handler_ms)

    @property
    def counts_as_down(self) -> bool:
        """Failures that are the endpoint's fault: all but a 4xx answer (the request's fault).

        A 3xx counts: the function did not answer at this URL (``--follow-redirects`` to go on).
        """
        if self.error is None:
            return False
        if self.error.startswith("http_") and self.status is not None:
            return not 400 <= self.status < 500
        return True


def parse_server_timing(value: str) -> dict[str, float]:
    """``handler;dur=12.3, init;dur=450`` -> ``{"handler": 12.3, "init": 450.0}`` (ms)."""
    out: dict[str, float] = {}
    for metric in value.split(","):
        name, *params = metric.strip().split(";")
        for param in params:
            key, _, raw = param.strip().partition("=")
            if key.strip().lower() == "dur":
                try:
                    out[name.strip()] = float(raw.strip().strip('"'))
                except ValueError:
                    pass
    return out


def read_headers(result: Result, headers: Any) -> None:
    """Fill in what the kagg runtime reports about itself (docs/architecture.md, "Endpoint contract")."""
    timing = headers.get("Server-Timing")
    if timing:
        durations = parse_server_timing(timing)
        result.handler_ms = durations.get("handler")
        result.init_ms = durations.get("init")
    cold = headers.get("X-Kagg-Cold")
    if cold is not None:
        result.cold = cold.strip() == "1"
    result.instance = headers.get("X-Kagg-Instance")


def new_session(concurrency: int, timeout: float) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(limit=concurrency, limit_per_host=concurrency,
                                     keepalive_timeout=75, ttl_dns_cache=300)
    return aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=timeout),
                                 cookie_jar=aiohttp.DummyCookieJar(), auto_decompress=False)


async def send(session: aiohttp.ClientSession, target: Target, seq: int, due: float,
               url: Optional[str] = None, method: Optional[str] = None, body: Optional[bytes] = None,
               headers: Optional[dict] = None, *, timeout: Optional[float] = None,
               follow_redirects: bool = False, keep_body: int = 0) -> tuple[Result, bytes]:
    """One request, never raising: failures become ``Result.error``.

    ``timeout``: the total deadline, from the send to the last byte. The body is read as it
    streams and discarded; its first ``keep_body`` bytes are returned (for ``/schema``).
    Any answer outside 2xx is an error ``http_<status>``, a redirect too unless
    ``follow_redirects``.
    """
    loop = asyncio.get_running_loop()
    if headers is None:
        headers = target.request_headers()  # signing is the client's work: not timed
    if body is None:
        body = target.body
    status: Optional[int] = None
    error: Optional[str] = None
    kept = bytearray()
    size = 0
    resp_headers: Any = {}
    sent = loop.time()
    try:
        async with _deadline(timeout):
            async with session.request(method or target.method, url or target.url, data=body or None,
                                       headers=headers, allow_redirects=follow_redirects) as resp:
                status, resp_headers = resp.status, resp.headers
                content = resp.content
                while True:  # as it streams: keep the size, drop the bytes
                    chunk = await content.readany()
                    if not chunk:
                        break
                    size += len(chunk)
                    if keep_body and len(kept) < keep_body:
                        kept += chunk[:keep_body - len(kept)]
        if not 200 <= status < 300:
            error = f"http_{status}"
    except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as exc:
        error = classify(exc, status is not None)
    result = Result(seq, due, sent, loop.time(), status, error, size=size)
    read_headers(result, resp_headers)
    return result, bytes(kept)


async def fetch_schema(session: aiohttp.ClientSession, target: Target, timeout: Optional[float] = None,
                       follow_redirects: bool = False) -> tuple[Result, bytes]:
    """``GET /schema`` (signed), before the run: the source of the default payload.

    Returns at most :data:`SCHEMA_LIMIT` + 1 bytes of the body (more: it is not a schema).
    """
    now = asyncio.get_running_loop().time()
    return await send(session, target, -1, now, url=schema_url(target), method="GET", body=b"",
                      headers=target.schema_headers(), timeout=timeout,
                      follow_redirects=follow_redirects, keep_body=SCHEMA_LIMIT + 1)


async def probe(session: aiohttp.ClientSession, target: Target, schedule: Schedule, t0: float,
                concurrency: int, on_result: Callable[[Result], None], timeout: Optional[float] = None,
                follow_redirects: bool = False) -> None:
    """Run ``schedule`` against ``target`` from loop time ``t0``; report every result."""
    gate = asyncio.Semaphore(concurrency)
    in_flight: set[asyncio.Task] = set()

    async def one(seq: int, due: float) -> None:
        async with gate:
            result, _ = await send(session, target, seq, due, timeout=timeout,
                                   follow_redirects=follow_redirects)
        on_result(result)

    def fire(seq: int, due: float) -> None:
        task = asyncio.create_task(one(seq, due))
        in_flight.add(task)
        task.add_done_callback(in_flight.discard)

    await schedule.run(t0, fire)
    while in_flight:
        await asyncio.gather(*list(in_flight))


def wall_clock_offset() -> float:
    """Add to a loop time to get a Unix time (for CSV rows and history)."""
    return time.time() - time.monotonic()
