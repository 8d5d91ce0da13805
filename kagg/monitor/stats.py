"""Aggregate results into numbers: HDR histograms, error kinds, cold starts, a time series.

HDR histograms (1 µs .. 60 s, 3 significant digits) keep every percentile within 0.1 %
in constant memory, however long the run, and the tail (p99.9, max) is exact enough to
trust, which sorting a sample would not be.
"""

from __future__ import annotations

import math
from array import array
from collections import Counter
from typing import Optional

from hdrh.histogram import HdrHistogram

from kagg.monitor.probe import Result

LOWEST_US, HIGHEST_US, DIGITS = 1, 60_000_000, 3
PERCENTILES = (("p50", 50.0), ("p90", 90.0), ("p95", 95.0), ("p99", 99.0), ("p99.9", 99.9))


class Histogram:
    """Latencies in milliseconds, stored as microseconds in an HDR histogram.

    The sum is kept here because hdrh computes a mean by walking every bucket (slow).
    """

    def __init__(self) -> None:
        self._h = HdrHistogram(LOWEST_US, HIGHEST_US, DIGITS)
        self._sum_us = 0

    def record(self, ms: float) -> None:
        us = min(HIGHEST_US, max(LOWEST_US, int(round(ms * 1000))))
        self._h.record_value(us)
        self._sum_us += us

    @property
    def count(self) -> int:
        return self._h.get_total_count()

    def summary(self) -> dict[str, Optional[float]]:
        """p50 .. p99.9, max, mean and min in ms (None when nothing was recorded)."""
        if not self.count:
            return {**{name: None for name, _ in PERCENTILES}, "max": None, "mean": None, "min": None}
        values = self._h.get_percentile_to_value_dict([p for _, p in PERCENTILES])
        out: dict[str, Optional[float]] = {name: values[p] / 1000.0 for name, p in PERCENTILES}
        out["max"] = self._h.get_max_value() / 1000.0
        out["mean"] = round(self._sum_us / self.count / 1000.0, 3)
        out["min"] = self._h.get_min_value() / 1000.0
        return out


def _quantile(values: array, q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


class Stats:
    """Everything measured for one endpoint during one run."""

    def __init__(self, name: str, url: str, method: str, requested_rate: float, planned: int,
                 keep_results: bool = False) -> None:
        self.name, self.url, self.method = name, url, method
        self.requested_rate, self.planned = requested_rate, planned
        self.t0: Optional[float] = None
        self.latency, self.service, self.lag = Histogram(), Histogram(), Histogram()
        self.handler, self.network, self.init = Histogram(), Histogram(), Histogram()
        self.cold_service, self.warm_service = Histogram(), Histogram()
        self.errors: Counter[str] = Counter()
        self.statuses: Counter[int] = Counter()
        self.completed = self.down = self.cold = self.warm = 0
        self.instances: set[str] = set()
        self.first_sent = self.last_sent = self.last_done = None  # type: Optional[float]
        self.seconds: dict[int, array] = {}  # due second -> latencies (ms) of that second
        self.second_errors: Counter[int] = Counter()
        self.results: Optional[list[Result]] = [] if keep_results else None
        self.preflight_cold = 0
        self.preflight: dict = {"schema": None}  # what the /schema preflight did (runner)
        self.bytes_total = self.bytes_max = 0

    def add(self, r: Result) -> None:
        self.completed += 1
        self.latency.record(r.latency_ms)
        self.service.record(r.service_ms)
        self.lag.record(max(0.0, r.lag_ms))
        self.first_sent = r.sent if self.first_sent is None else min(self.first_sent, r.sent)
        self.last_sent = r.sent if self.last_sent is None else max(self.last_sent, r.sent)
        self.last_done = r.done if self.last_done is None else max(self.last_done, r.done)
        if r.status is not None:
            self.statuses[r.status] += 1
        self.bytes_total += r.size
        self.bytes_max = max(self.bytes_max, r.size)
        if r.error:
            self.errors[r.error] += 1
            self.down += r.counts_as_down
        if r.handler_ms is not None:
            self.handler.record(r.handler_ms)
            self.network.record(r.network_ms or 0.0)
        if r.cold:
            self.cold += 1
            self.cold_service.record(r.service_ms)
            if r.init_ms is not None:
                self.init.record(r.init_ms)
        elif r.cold is False:
            self.warm += 1
            self.warm_service.record(r.service_ms)
        if r.instance:
            self.instances.add(r.instance)
        second = int(r.due - self.t0) if self.t0 is not None else 0
        self.seconds.setdefault(second, array("f")).append(r.latency_ms)
        if r.error:
            self.second_errors[second] += 1
        if self.results is not None:
            self.results.append(r)

    def add_preflight(self, r: Result) -> None:
        """The ``/schema`` fetch is not a probe, but a cold start it caused is still one seen."""
        if r.cold:
            self.preflight_cold += 1
            self.cold_service.record(r.service_ms)
            if r.init_ms is not None:
                self.init.record(r.init_ms)
        if r.instance:
            self.instances.add(r.instance)

    # -- derived figures ----------------------------------------------------------------
    @property
    def achieved_rate(self) -> float:
        """Requests sent per second: the inverse of the mean gap between sends."""
        if self.completed < 2 or self.first_sent is None or self.last_sent == self.first_sent:
            return 0.0
        return (self.completed - 1) / (self.last_sent - self.first_sent)

    @property
    def error_share(self) -> float:
        return sum(self.errors.values()) / self.completed if self.completed else 0.0

    @property
    def availability(self) -> float:
        return 1.0 - self.down / self.completed if self.completed else 0.0

    def series(self, last: Optional[int] = None) -> list[dict]:
        """Per second of due time: requests, errors, p50, p99 and max latency (ms)."""
        keys = sorted(self.seconds)
        if last is not None:
            keys = keys[-last:]
        return [{"second": s, "requests": len(self.seconds[s]), "errors": self.second_errors[s],
                 "p50": round(_quantile(self.seconds[s], 0.5), 3),
                 "p99": round(_quantile(self.seconds[s], 0.99), 3),
                 "max": round(max(self.seconds[s]), 3)} for s in keys]

    def all_latencies(self) -> list[float]:
        return [v for s in sorted(self.seconds) for v in self.seconds[s]]

    def report(self) -> dict:
        """The final figures for this endpoint, as plain JSON-ready data."""
        n = self.completed
        error_total = sum(self.errors.values())
        return {
            "target": self.name,
            "url": self.url,
            "method": self.method,
            "requests": n,
            "planned": self.planned,
            "requested_rate": round(self.requested_rate, 4),
            "achieved_rate": round(self.achieved_rate, 4),
            "duration_s": round(self.last_done - self.t0, 3) if self.last_done and self.t0 else 0.0,
            "latency_ms": self.latency.summary(),
            "service_ms": self.service.summary(),
            "schedule_lag_ms": self.lag.summary(),
            "handler_ms": self.handler.summary(),
            "network_ms": self.network.summary(),
            "errors": {"total": error_total, "pct": round(100.0 * error_total / n, 4) if n else 0.0,
                       "by_kind": dict(sorted(self.errors.items()))},
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "availability_pct": round(100.0 * self.availability, 4),
            "cold": {"count": self.cold + self.preflight_cold, "in_preflight": self.preflight_cold,
                     "service_ms": self.cold_service.summary(), "init_ms": self.init.summary()},
            "warm": {"count": self.warm, "service_ms": self.warm_service.summary()},
            "instances": len(self.instances),
            "instance_ids": sorted(self.instances),
            "body_bytes": {"total": self.bytes_total, "max": self.bytes_max},
            "schema_preflight": self.preflight,
            "series": self.series(),
        }
