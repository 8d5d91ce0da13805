"""The monitor's pure parts: parsing, alert logic, header parsing, stats, history storage."""

from __future__ import annotations

import asyncio
import time

import pytest

from kagg.errors import BadInput
from kagg.monitor.alerts import describe, evaluate, parse_alert
from kagg.monitor.history import History
from kagg.monitor.probe import Result, parse_server_timing
from kagg.monitor.schedule import Schedule
from kagg.monitor.stats import Stats
from kagg.monitor.target import parse_payload, prepare, schema_defaults, Target
from kagg.monitor.units import format_ms, parse_duration, parse_rate


@pytest.mark.parametrize("text,seconds", [("60s", 60), ("2m", 120), ("1h", 3600), ("500ms", 0.5),
                                          ("1.5", 1.5), ("7d", 604800), (" 30 s ", 30)])
def test_durations(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text,rate", [("5/s", 5), ("300/m", 5), ("10", 10), ("0.5/s", 0.5), ("120/min", 2)])
def test_rates(text, rate):
    assert parse_rate(text) == pytest.approx(rate)


@pytest.mark.parametrize("bad", ["", "fast", "5/x", "-1/s", "0/s", "1/s/s"])
def test_bad_rate_is_bad_input(bad):
    with pytest.raises(BadInput, match="invalid rate"):
        parse_rate(bad)


@pytest.mark.parametrize("bad", ["abc", "5 years", "0s", "-3s"])
def test_bad_duration_is_bad_input(bad):
    with pytest.raises(BadInput):
        parse_duration(bad)


def test_format_ms():
    assert format_ms(0.5) == "500µs" and format_ms(20.34) == "20.3ms" and format_ms(1520) == "1.52s"
    assert format_ms(None) == "-"


def test_server_timing_parsing():
    assert parse_server_timing('handler;dur=12.5, init;desc="x";dur=450') == {"handler": 12.5, "init": 450.0}
    assert parse_server_timing("db;dur=abc, cache") == {}


def _report(**over) -> dict:
    base = {
        "target": "api", "url": "http://127.0.0.1:1/", "requests": 1000, "achieved_rate": 4.95,
        "latency_ms": {"p50": 20.0, "p90": 30.0, "p95": 312.0, "p99": 400.0, "p99.9": 500.0, "max": 900.0,
                       "mean": 25.0, "min": 19.0},
        "service_ms": {"p50": 19.0, "p90": 28.0, "p95": 100.0, "p99": 200.0, "p99.9": 300.0, "max": 800.0,
                       "mean": 22.0, "min": 18.0},
        "handler_ms": {k: None for k in ("p50", "p90", "p95", "p99", "p99.9", "max", "mean", "min")},
        "network_ms": {k: None for k in ("p50", "p90", "p95", "p99", "p99.9", "max", "mean", "min")},
        "schedule_lag_ms": {"p50": 0.1, "p90": 0.2, "p95": 0.2, "p99": 0.3, "p99.9": 1, "max": 2, "mean": 0.1,
                            "min": 0},
        "errors": {"total": 15, "pct": 1.5, "by_kind": {"timeout": 5, "http_500": 10}},
        "availability_pct": 98.5,
        "cold": {"count": 2, "service_ms": {"p50": 450.0}}, "warm": {"count": 998, "service_ms": {"p50": 19.0}},
        "instances": 2,
    }
    base.update(over)
    return base


@pytest.mark.parametrize("expr,fired", [
    ("p95>300ms", True), ("p95>0.5s", False), ("p95 >= 312", True), ("p99.9<600ms", True),
    ("service.p95>150ms", False), ("max>850000us", True), ("cold.p50>400ms", True),
    ("errors>1%", True), ("errors>2%", False), ("errors>=15", True), ("timeout>0", True),
    ("http_500>1%", False), ("http_502>0", False), ("connection>0", False),
    ("availability<99.9%", True), ("availability<98", False),
    ("cold>1", True), ("instances>2", False), ("rate<4.9/s", False), ("rate<300/m", True),
])
def test_alerts_fire_or_not(expr, fired):
    check = parse_alert(expr).check(_report())
    assert check["fired"] is fired, check


def test_alert_on_unmeasured_metric_does_not_fire():
    check = parse_alert("handler.p99>1ms").check(_report())
    assert check["fired"] is False and check["value"] is None
    assert "not measured" in describe(check)


@pytest.mark.parametrize("bad", ["p95", "p95>>3ms", "p95>3 parsecs", "latency>3ms", "p75>3ms",
                                 "availability<101%", "errors>1ms", "cold>3ms", "rate<5/fortnight", ">5", ""])
def test_malformed_alerts_are_bad_input(bad):
    with pytest.raises(BadInput, match="invalid --alert"):
        parse_alert(bad)


def test_evaluate_checks_every_endpoint():
    checks = evaluate([parse_alert("p95>300ms")], [_report(), _report(target="b", latency_ms={
        **_report()["latency_ms"], "p95": 30.0})])
    assert [c["fired"] for c in checks] == [True, False]
    assert describe(checks[0]) == "api: p95 = 312ms (alert p95>300ms)"


def test_schedule_is_open_loop_and_sized_by_duration_or_count():
    s = Schedule(200, duration=3)
    assert s.total == 600 and s.due(10.0, 300) == pytest.approx(11.5) and s.span == pytest.approx(3)
    assert Schedule(5, count=7).total == 7
    assert Schedule(300 / 60, duration=60).total == 300


def test_schedule_fires_at_due_times_without_waiting_for_anything():
    fired: list[tuple[int, float, float]] = []

    async def main():
        loop = asyncio.get_running_loop()
        t0 = loop.time() + 0.01
        await Schedule(100, count=20).run(t0, lambda i, due: fired.append((i, due, loop.time())))
        return t0

    t0 = asyncio.run(main())
    assert [i for i, _, _ in fired] == list(range(20))
    lateness = sorted(at - due for _, due, at in fired)
    assert lateness[0] >= -1e-6  # never early
    assert lateness[10] < 0.002  # and on time, not a millisecond late each time
    assert fired[-1][1] == pytest.approx(t0 + 0.19)


def _result(seq, due, latency, status=200, error=None, cold=False, handler=5.0) -> Result:
    return Result(seq, due, due + 0.001, due + latency / 1000, status, error, handler_ms=handler,
                  init_ms=100.0 if cold else None, cold=cold, instance=f"i{seq % 2}")


def test_stats_from_results():
    s = Stats("api", "http://127.0.0.1:1/", "POST", 10.0, 10)
    s.t0 = 100.0
    for i in range(10):
        status, error = (500, "http_500") if i == 3 else ((404, "http_404") if i == 4 else (200, None))
        s.add(_result(i, 100.0 + i / 10, 20.0 + i, status, error, cold=i == 0))
    r = s.report()
    assert r["requests"] == 10 and r["achieved_rate"] == pytest.approx(10.0)
    assert r["errors"]["by_kind"] == {"http_404": 1, "http_500": 1} and r["errors"]["pct"] == 20.0
    assert r["availability_pct"] == 90.0  # a 4xx is the request's fault, not downtime
    assert r["cold"]["count"] == 1 and r["warm"]["count"] == 9 and r["cold"]["init_ms"]["p50"] == pytest.approx(100, rel=1e-2)
    assert r["instances"] == 2
    assert r["latency_ms"]["max"] == pytest.approx(29.0, rel=1e-3)
    assert r["service_ms"]["max"] == pytest.approx(28.0, rel=1e-3)
    assert r["network_ms"]["p50"] == pytest.approx(r["service_ms"]["p50"] - 5.0, abs=0.05)
    assert [p["requests"] for p in r["series"]] == [10]


def test_payload_and_schema_defaults():
    assert parse_payload('{"a": 1}') == {"a": 1} and parse_payload(None) is None
    with pytest.raises(BadInput, match="JSON object"):
        parse_payload("[1]")
    with pytest.raises(BadInput, match="not valid JSON"):
        parse_payload("{")
    schema = {"properties": {"a": {"default": 2}, "b": {"type": "string"}}, "required": ["b"]}
    with pytest.raises(BadInput, match="requires b"):
        schema_defaults(schema, "ep")
    assert schema_defaults({"properties": {"a": {"default": 2}, "c": {}}}, "ep") == {"a": 2}


def test_prepare_builds_the_fixed_request():
    t = Target("x", "http://127.0.0.1:1/fn")
    prepare(t, None, None, True)
    assert (t.method, t.url) == ("GET", "http://127.0.0.1:1/fn/health")
    t = Target("x", "http://127.0.0.1:1/")
    prepare(t, "get", {"a": 1, "s": "x y"}, False)
    assert (t.method, t.url, t.body) == ("GET", "http://127.0.0.1:1/?a=1&s=x+y", b"")
    t = Target("x", "http://127.0.0.1:1/")
    prepare(t, None, None, False, {"properties": {"a": {"default": [1]}}})
    assert (t.method, t.body, t.headers["Content-Type"]) == ("POST", b'{"a":[1]}', "application/json")


def test_history_round_trip_and_since(tmp_path):
    store = History(tmp_path / ".kagg")
    report = {**_report(), "duration_s": 60.0, "requested_rate": 5.0, "series": [{"second": 0}]}
    now = time.time()
    store.record(report, now - 3 * 86400, artifact_sha256="a" * 64)
    store.record(report, now - 60, alerts_fired=1, artifact_sha256="b" * 64)
    assert [r["artifact_sha256"][0] for r in store.runs("api")] == ["a", "b"]
    recent = store.runs("api", since=86400)
    assert len(recent) == 1 and recent[0]["alerts_fired"] == 1 and recent[0]["p95"] == 312.0
    assert "series" not in recent[0]["report"] and recent[0]["report"]["errors"]["total"] == 15
    assert store.runs("other") == [] and store.targets() == ["api"]
