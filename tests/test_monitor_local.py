"""``kagg monitor`` against a real kagg local endpoint: the runtime's headers, end to end."""

from __future__ import annotations

import csv
import json

import pytest

from conftest import run_kagg
from notebooks import write

SLEEPER = "import time\n\ndef handler(ms: int = 10):\n    time.sleep(ms / 1000)\n    return {'slept': ms}"


@pytest.fixture
def deployed(registry_path, tmp_path):
    """A freshly deployed local endpoint, deleted afterwards."""
    nb = write(tmp_path / "sleeper.ipynb", SLEEPER)
    res = run_kagg("deploy", str(nb), "--name", "mon-sleeper")
    assert res.returncode == 0, res.stderr
    yield "mon-sleeper"
    run_kagg("delete", "mon-sleeper")


def test_cold_start_on_first_request_after_deploy_and_handler_time(deployed, tmp_path):
    rows_file = tmp_path / "rows.csv"
    res = run_kagg("monitor", deployed, "--count", "20", "--rate", "20/s", "--payload", '{"ms": 10}',
                   "--json", "--csv", str(rows_file), "--alert", "errors>0")
    assert res.returncode == 0, res.stderr
    (r,) = json.loads(res.stdout)["endpoints"]
    assert r["requests"] == 20 and r["errors"]["total"] == 0 and r["instances"] == 1
    with open(rows_file, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert rows[0]["cold"] == "1" and float(rows[0]["init_ms"]) > 0, rows[0]
    assert [row["cold"] for row in rows[1:]] == ["0"] * 19
    assert r["cold"]["count"] == 1 and r["cold"]["in_preflight"] == 0 and r["warm"]["count"] == 19
    assert 10.0 <= r["handler_ms"]["p50"] < 25.0  # the handler's own time, from Server-Timing
    assert r["network_ms"]["p50"] == pytest.approx(r["service_ms"]["p50"] - r["handler_ms"]["p50"], abs=1.0)

    hist = run_kagg("monitor", "history", deployed, "--json")
    (run,) = json.loads(hist.stdout)["runs"]
    assert run["cold"] == 1 and len(run["artifact_sha256"]) == 64


def test_default_payload_from_schema_and_health_probe(deployed):
    res = run_kagg("monitor", deployed, "--count", "10", "--rate", "50/s", "--json", "--no-history")
    assert res.returncode == 0, res.stderr
    (r,) = json.loads(res.stdout)["endpoints"]
    assert r["statuses"] == {"200": 10} and r["method"] == "POST"
    res = run_kagg("monitor", deployed, "--count", "10", "--rate", "50/s", "--health", "--json", "--no-history")
    (r,) = json.loads(res.stdout)["endpoints"]
    assert r["statuses"] == {"200": 10} and r["url"].endswith("/health") and r["method"] == "GET"
