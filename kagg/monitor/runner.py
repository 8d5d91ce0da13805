"""Run the probes of every endpoint together in one event loop and collect their Stats.

All endpoints share one start time, so a side-by-side report compares the same minutes.
This is the library entry point: ``kagg.monitor.run(targets, options)``; the CLI only adds
parsing and printing around it.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Callable, Optional

from kagg.errors import BadInput, OperationFailed
from kagg.model import Endpoint
from kagg.monitor import probe as _probe
from kagg.monitor.schedule import Schedule
from kagg.monitor.stats import Stats
from kagg.monitor.target import Signer, Target, check_schema, needs_schema, prepare, resolve

START_LEAD = 0.05  # seconds between setting up and the first due time, so all start together


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
    keep_results: bool = False  # per-request rows, for --csv

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
    duplicates = sorted({s for s in specs if specs.count(s) > 1})
    if duplicates:
        raise BadInput(f"endpoint given twice: {', '.join(duplicates)}")
    signer_for = signer_factory(registry)
    return [resolve(spec, registry, signer_for) for spec in specs]


async def _preflight(session, target: Target, options: MonitorOptions, stats_holder: list) -> None:
    """Fix the request; fetch ``/schema`` first when the payload must come from it."""
    schema = None
    if needs_schema(options.payload, options.health):
        result, data = await _probe.fetch_schema(session, target)
        if result.error:
            raise OperationFailed(f"{target.name}: cannot read its /schema ({result.error}); "
                                  "pass --payload '{...}' or use --health")
        try:
            schema = check_schema(json.loads(data), target)
        except ValueError:
            raise OperationFailed(f"{target.name}: /schema is not JSON; pass --payload or use --health")
        stats_holder.append(result)
    prepare(target, options.method, options.payload, options.health, schema)


async def run_async(targets: list[Target], options: MonitorOptions,
                    on_tick: Optional[Callable[[list[Stats], float], None]] = None,
                    tick: float = 1.0, result: Optional[RunResult] = None) -> RunResult:
    """Probe every target on its schedule; ``on_tick(stats, elapsed)`` every ``tick`` seconds."""
    loop = asyncio.get_running_loop()
    schedule = options.schedule()
    sessions = [_probe.new_session(options.concurrency, options.timeout) for _ in targets]
    try:
        preflights: list[list] = [[] for _ in targets]
        await asyncio.gather(*(_preflight(sess, t, options, pf)
                               for sess, t, pf in zip(sessions, targets, preflights)))
        stats = [Stats(t.name, t.url, t.method, options.rate, schedule.total, options.keep_results)
                 for t in targets]
        for s, pf in zip(stats, preflights):
            for r in pf:
                s.add_preflight(r)
        t0 = loop.time() + START_LEAD
        for s in stats:
            s.t0 = t0
        run = result or RunResult(0.0, 0.0, 0.0)
        run.wall_offset = _probe.wall_clock_offset()
        run.started_at, run.span, run.stats = t0 + run.wall_offset, schedule.span, stats
        probes = [asyncio.create_task(_probe.probe(sess, t, schedule, t0, options.concurrency, s.add))
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
        on_tick: Optional[Callable[[list[Stats], float], None]] = None, tick: float = 1.0) -> RunResult:
    """Blocking run. Ctrl-C stops early and still returns what was measured (``interrupted``)."""
    result = RunResult(time.time(), 0.0, 0.0)
    try:
        return asyncio.run(run_async(targets, options, on_tick, tick, result))
    except KeyboardInterrupt:
        if not result.stats:
            raise
        result.interrupted = True
        return result
