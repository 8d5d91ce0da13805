"""Send one endpoint's scheduled requests with aiohttp and time each one.

One ``ClientSession`` per endpoint, its connector limited to ``concurrency`` and kept
alive, so connection setup is paid once, not per probe. A semaphore of the same size
caps requests in flight; a request waiting for it is still timed from its due time, so a
saturated endpoint shows up as latency rather than as a lower request rate.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any, Callable, Optional

import aiohttp

from kagg.monitor.schedule import Schedule
from kagg.monitor.target import Target, schema_url


@dataclass(slots=True)
class Result:
    """One request. Times are on the event loop's monotonic clock, in seconds."""

    seq: int
    due: float  # when the schedule wanted it sent
    sent: float  # when it was handed to aiohttp (after any wait for the concurrency cap)
    done: float  # when the full response was read, or the request failed
    status: Optional[int]
    error: Optional[str]  # None, "timeout", "connection" or "http_<status>"
    handler_ms: Optional[float] = None  # Server-Timing handler;dur
    init_ms: Optional[float] = None  # Server-Timing init;dur (cold starts)
    cold: Optional[bool] = None  # X-Kagg-Cold
    instance: Optional[str] = None  # X-Kagg-Instance

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
        """Failures that are the endpoint's fault (a 4xx is the request's fault)."""
        return self.error is not None and (self.status is None or self.status >= 500)


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
               headers: Optional[dict] = None) -> tuple[Result, bytes]:
    """One request, never raising: failures become ``Result.error``."""
    loop = asyncio.get_running_loop()
    if headers is None:
        headers = target.request_headers()  # signing is the client's work: not timed
    if body is None:
        body = target.body
    status: Optional[int] = None
    error: Optional[str] = None
    data = b""
    resp_headers: Any = {}
    sent = loop.time()
    try:
        async with session.request(method or target.method, url or target.url, data=body or None,
                                   headers=headers, allow_redirects=False) as resp:
            data = await resp.read()
            status, resp_headers = resp.status, resp.headers
            if status >= 400:
                error = f"http_{status}"
    except (asyncio.TimeoutError, aiohttp.ServerTimeoutError):
        error = "timeout"
    except (aiohttp.ClientError, OSError):
        error = "connection"
    result = Result(seq, due, sent, loop.time(), status, error)
    read_headers(result, resp_headers)
    return result, data


async def fetch_schema(session: aiohttp.ClientSession, target: Target) -> tuple[Result, bytes]:
    """``GET /schema`` (signed), before the run: the source of the default payload."""
    url = schema_url(target)
    headers = target.signer("GET", url, {}, b"") if target.signer else {}
    now = asyncio.get_running_loop().time()
    return await send(session, target, -1, now, url=url, method="GET", body=b"", headers=headers)


async def probe(session: aiohttp.ClientSession, target: Target, schedule: Schedule, t0: float,
                concurrency: int, on_result: Callable[[Result], None]) -> None:
    """Run ``schedule`` against ``target`` from loop time ``t0``; report every result."""
    gate = asyncio.Semaphore(concurrency)
    in_flight: set[asyncio.Task] = set()

    async def one(seq: int, due: float) -> None:
        async with gate:
            result, _ = await send(session, target, seq, due)
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
