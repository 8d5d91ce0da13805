"""Run the probes of every endpoint together in one event loop and collect their Stats.

All endpoints share one start time, so a side-by-side report compares the same minutes.
This is the library entry point: ``kagg.monitor.run(targets, options)``; the CLI only adds
parsing and printing around it.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, Optional

from kagg.errors import BadInput, OperationFailed
from kagg.model import Endpoint
from kagg.monitor import probe as _probe
from kagg.monitor.schedule import Schedule
from kagg.monitor.stats import Stats
from kagg.monitor.target import Signer, Target, needs_schema, prepare, read_schema, resolve
from kagg.urls import redact_url

START_LEAD = 0.05  # seconds between setting up and the first due time, so all start together
#: the /schema preflight: at most this many attempts, no new one once SCHEMA_RETRY_WINDOW
#: seconds have passed, with backoff between them; each attempt has the run's --timeout
SCHEMA_ATTEMPTS = 4
SCHEMA_RETRY_WINDOW = 5.0
SCHEMA_BACKOFF = (0.25, 1.0)  # first wait and longest wait, seconds (exponential, with jitter)

Warn = Callable[[str], None]


def _stderr_warning(message: str) -> None:
    sys.stderr.write(f"warning: {message}\n")


@dataclass
class MonitorOptions:
    """How to probe; the same for every endpoint of a run."""

    rate: float = 5.0  # requests per second, per endpoint
    duration: Optional[float] = 60.0  # seconds (ignored when count is set)
    count: Optional[int] = None
    concurrency: int = 64
    timeout: float = 10.0
    method: Optional[str] = None
    payload: Optional[dict] = None
    health: bool = False
    jobs: bool = False  # probe GET /jobs?limit=1 (docs/jobs.md) instead of the function
    keep_results: bool = False  # per-request rows, for --csv
    follow_redirects: bool = False  # else a 3xx answer is an error (http_302 ...)

    @property
    def fixed_probe(self) -> Optional[str]:
        """The path probed instead of the function (``--health``, ``--jobs``), or None."""
        return "jobs?limit=1" if self.jobs else "health" if self.health else None

    def schedule(self) -> Schedule:
        if self.count is not None:
            return Schedule(self.rate, count=self.count)
        return Schedule(self.rate, duration=self.duration or 60.0)


@dataclass
class RunResult:
    """What a run measured, per endpoint, in target order."""

    started_at: float  # Unix time of the first due time
    wall_offset: float  # add to a loop time to get a Unix time
    span: float  # planned seconds of sending
    stats: list[Stats] = field(default_factory=list)
    interrupted: bool = False

    def reports(self) -> list[dict]:
        return [s.report() for s in self.stats]


def signer_factory(registry) -> Callable[[Endpoint], Optional[Signer]]:
    """Each named endpoint's provider signs its requests; public ones may go unsigned.

    A provider that cannot be loaded here (say, an optional cloud extra not installed) only
    matters if the endpoint needs authentication.
    """
    from kagg.providers import get_provider

    def signer_for(endpoint: Endpoint) -> Optional[Signer]:
        try:
            provider = get_provider(endpoint.provider, registry.state_dir)
        except (ImportError, BadInput) as exc:
            if (endpoint.auth or "none") == "none":
                return None
            raise OperationFailed(f"cannot sign requests to {endpoint.name}: provider "
                                  f"{endpoint.provider} is not available here ({exc})")

        def sign(method: str, url: str, headers: dict, body: bytes) -> dict:
            return provider.sign(endpoint, method, url, headers, body)

        return sign

    return signer_for


def resolve_targets(specs: list[str], registry) -> list[Target]:
    """NAMEs through the registry, URLs as they are; each endpoint once."""
    if not specs:
        raise BadInput("give at least one endpoint NAME or URL to monitor")
    duplicates = sorted({redact_url(s) for s in specs if specs.count(s) > 1})
    if duplicates:
        raise BadInput(f"endpoint given twice: {', '.join(duplicates)}")
    signer_for = signer_factory(registry)
    return [resolve(spec, registry, signer_for) for spec in specs]


def _worth_retrying(result: _probe.Result) -> bool:
    """A /schema failure that may pass: the endpoint's trouble, not an answer about the contract."""
    if result.error is None or result.error in ("invalid_http", "bad_redirect"):
        return False
    return result.status is None or result.status >= 500 or result.status in (408, 429)


async def fetch_schema_with_retries(session, target: Target, options: MonitorOptions
                                    ) -> tuple[Optional[dict], list[_probe.Result], Optional[str]]:
    """``(schema, attempts, problem)``: ``/schema`` tried with backoff (tenacity) while it fails
    in a way that may pass (timeouts, resets, 5xx), at most :data:`SCHEMA_ATTEMPTS` times within
    :data:`SCHEMA_RETRY_WINDOW` seconds; ``problem`` says why there is no schema."""
    from tenacity import (AsyncRetrying, retry_if_result, stop_after_attempt, stop_after_delay,
                          wait_exponential, wait_random)

    attempts: list[tuple[_probe.Result, bytes]] = []

    async def once() -> _probe.Result:
        result, body = await _probe.fetch_schema(session, target, options.timeout, options.follow_redirects)
        attempts.append((result, body))
        return result

    retrying = AsyncRetrying(
        stop=stop_after_attempt(SCHEMA_ATTEMPTS) | stop_after_delay(SCHEMA_RETRY_WINDOW),
        wait=wait_exponential(multiplier=SCHEMA_BACKOFF[0], max=SCHEMA_BACKOFF[1]) + wait_random(0, 0.1),
        retry=retry_if_result(_worth_retrying), retry_error_callback=lambda state: state.outcome.result())
    last = await retrying(once)
    results = [r for r, _ in attempts]
    if last.error:
        tries = f" after {len(results)} attempts" if len(results) > 1 else ""
        return None, results, _probe.error_label(last.error) + tries
    body = attempts[-1][1]
    if len(body) > _probe.SCHEMA_LIMIT:
        return None, results, f"its answer is larger than {_probe.SCHEMA_LIMIT >> 20} MiB"
    schema = read_schema(body)
    if schema is None:
        return None, results, "its answer is not a JSON object"
    return schema, results, None


async def _preflight(session, target: Target, options: MonitorOptions, stats_holder: list,
                     warn: Warn) -> dict:
    """Fix the request; fetch ``/schema`` first when the payload must come from it.

    A ``/schema`` that cannot be read does not stop the run: the endpoint's failures are
    the run's data. The contract's bare call is sent instead (``POST /`` with ``{}``, or a
    plain ``GET /`` with ``--method GET``), with a warning. Returns what the preflight did.
    """
    payload, info = options.payload, {"schema": None}
    probe = options.fixed_probe
    if needs_schema(options.payload, probe is not None):
        schema, results, problem = await fetch_schema_with_retries(session, target, options)
        stats_holder.extend(results)
        info = {"schema": "read" if problem is None else "unreadable", "attempts": len(results),
                "errors": dict(Counter(r.error for r in results if r.error)), "problem": problem}
        if problem is None:
            prepare(target, options.method, None, probe is not None, schema, probe or "health")
            return info
        payload = {}
        method = (options.method or "POST").upper()
        bare = f"{method} /" if method in ("GET", "HEAD", "DELETE") else f"{method} / with {{}}"
        warn(f"{target.name}: cannot read its /schema ({problem}); sending the bare call {bare} instead "
             "(pass --payload '{...}' to choose the request)")
        info["sent_instead"] = bare
    prepare(target, options.method, payload, probe is not None, probe=probe or "health")
    return info


async def run_async(targets: list[Target], options: MonitorOptions,
                    on_tick: Optional[Callable[[list[Stats], float], None]] = None,
                    tick: float = 1.0, result: Optional[RunResult] = None,
                    warn: Optional[Warn] = None) -> RunResult:
    """Probe every target on its schedule; ``on_tick(stats, elapsed)`` every ``tick`` seconds;
    ``warn(message)`` for what the user should know but does not stop the run (stderr by default)."""
    loop = asyncio.get_running_loop()
    schedule = options.schedule()
    sessions = [_probe.new_session(options.concurrency, options.timeout) for _ in targets]
    try:
        preflights: list[list] = [[] for _ in targets]
        infos = await asyncio.gather(*(_preflight(sess, t, options, pf, warn or _stderr_warning)
                                       for sess, t, pf in zip(sessions, targets, preflights)))
        stats = [Stats(t.name, t.display_url, t.method, options.rate, schedule.total, options.keep_results)
                 for t in targets]
        for s, pf, info in zip(stats, preflights, infos):
            s.preflight = info
            for r in pf:
                s.add_preflight(r)
        t0 = loop.time() + START_LEAD
        for s in stats:
            s.t0 = t0
        run = result or RunResult(0.0, 0.0, 0.0)
        run.wall_offset = _probe.wall_clock_offset()
        run.started_at, run.span, run.stats = t0 + run.wall_offset, schedule.span, stats
        probes = [asyncio.create_task(_probe.probe(sess, t, schedule, t0, options.concurrency, s.add,
                                                   options.timeout, options.follow_redirects))
                  for sess, t, s in zip(sessions, targets, stats)]
        ticker = asyncio.create_task(_tick(stats, t0, tick, on_tick)) if on_tick else None
        try:
            await asyncio.gather(*probes)
        finally:
            for task in probes:
                task.cancel()
            if ticker:
                ticker.cancel()
        if on_tick:
            on_tick(stats, loop.time() - t0)
        return run
    finally:
        await asyncio.gather(*(sess.close() for sess in sessions), return_exceptions=True)


async def _tick(stats: list[Stats], t0: float, every: float,
                on_tick: Callable[[list[Stats], float], None]) -> None:
    loop = asyncio.get_running_loop()
    n = 1
    while True:
        await asyncio.sleep(max(0.0, t0 + n * every - loop.time()))
        on_tick(stats, loop.time() - t0)
        n += 1


def run(targets: list[Target], options: MonitorOptions,
        on_tick: Optional[Callable[[list[Stats], float], None]] = None, tick: float = 1.0,
        warn: Optional[Warn] = None) -> RunResult:
    """Blocking run. Ctrl-C stops early and still returns what was measured (``interrupted``)."""
    result = RunResult(time.time(), 0.0, 0.0)
    try:
        return asyncio.run(run_async(targets, options, on_tick, tick, result, warn))
    except KeyboardInterrupt:
        if not result.stats:
            raise
        result.interrupted = True
        return result
