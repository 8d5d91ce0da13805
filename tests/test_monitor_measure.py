"""The monitor's figures against local servers whose behaviour is known in advance.

Servers run in their own process (test_monitor_helpers.server_process), so their timing
is not disturbed by the client under test sharing a GIL with them.
"""

from __future__ import annotations

import pytest

from kagg.monitor import MonitorOptions, run
from kagg.monitor.target import Target
from test_monitor_helpers import server_process


def _run(urls: list[str], **options) -> list[dict]:
    options.setdefault("payload", {"x": 1})
    result = run([Target(name=u, url=u) for u in urls], MonitorOptions(**options))
    return result.reports()


def test_fixed_20ms_endpoint_at_200_per_second():
    """p50 at least the server's 20 ms and far from what a double count gives; the handler's 20 ms
    and the network share exact; achieved rate within 2 % of 200/s."""
    with server_process("--delay", "0.020") as url:
        (r,) = _run([url], rate=200, duration=3)
    assert r["requests"] == 600 and r["errors"]["total"] == 0 and r["availability_pct"] == 100.0
    assert abs(r["achieved_rate"] - 200) <= 0.02 * 200, r["achieved_rate"]
    # the 20 ms are the server's; what the loopback and a loaded test machine add on top (2 ms
    # when quiet, 5 ms and more on a busy CI machine) is not what this test is about: the handler's
    # time and the network share are checked exactly below, and a measurement counting the
    # schedule or a request twice is 20 ms off (40 ms and more)
    assert 20.0 <= r["latency_ms"]["p50"] < 35.0, r["latency_ms"]
    assert 20.0 <= r["service_ms"]["p50"] < 35.0, r["service_ms"]
    assert r["latency_ms"]["p50"] >= r["service_ms"]["p50"]  # measured from the due time
    assert r["handler_ms"]["p50"] == pytest.approx(20.0, abs=0.1)  # read from Server-Timing
    assert r["network_ms"]["p50"] == pytest.approx(r["service_ms"]["p50"] - 20.0, abs=0.2)
    assert r["cold"]["count"] == 1 and r["warm"]["count"] == 599
    assert r["cold"]["init_ms"]["p50"] == pytest.approx(123.0, rel=0.01)
    assert r["instance_ids"] == ["inst-1"]


def test_error_share_and_side_by_side_endpoints():
    """Every 10th answer a 500 -> exactly 10 % errors, 90 % availability; two endpoints at once."""
    with server_process("--delay", "0.005", "--error-every", "10") as flaky, \
            server_process("--delay", "0.030") as slow:
        r_flaky, r_slow = _run([flaky, slow], rate=100, count=200)
    assert r_flaky["errors"] == {"total": 20, "pct": 10.0, "by_kind": {"http_500": 20}}
    assert r_flaky["availability_pct"] == 90.0 and r_flaky["statuses"] == {"200": 180, "500": 20}
    assert r_slow["errors"]["total"] == 0 and r_slow["requests"] == 200
    # each measured on its own (5 ms and 30 ms of server time), not one's figures in the other's
    assert 5 <= r_flaky["latency_ms"]["p50"] < 20, r_flaky["latency_ms"]
    assert 30 <= r_slow["latency_ms"]["p50"] < 45, r_slow["latency_ms"]


def test_stall_shows_as_timeouts_and_in_the_high_percentiles():
    """The server freezes 1 s; with a 300 ms timeout and a cap of 8 in flight, requests due
    in the stall time out or wait, and the latency from the due time shows all of it."""
    with server_process("--delay", "0.005", "--stall", "0.5", "1.0") as url:
        (r,) = _run([url], rate=100, duration=2.5, timeout=0.3, concurrency=8)
    assert r["requests"] == 250
    timeouts = r["errors"]["by_kind"].get("timeout", 0)
    assert 8 <= timeouts <= 60, r["errors"]
    assert r["errors"]["total"] == timeouts and r["availability_pct"] < 97
    lat, svc = r["latency_ms"], r["service_ms"]
    assert lat["p50"] < 50  # most of the run was fine
    assert lat["p99"] >= 500  # the stall is in the tail ...
    assert lat["max"] >= 600  # queued behind timed-out requests: ~0.75 s after its due time
    assert svc["max"] < 400  # ... which service time alone hides (nothing took > timeout)
    assert lat["p95"] > 2 * svc["p95"]
    slow_seconds = [p for p in r["series"] if p["max"] >= 300]
    assert slow_seconds and all(0 <= p["second"] <= 2 for p in slow_seconds)
