"""``kagg monitor`` against hostile input: credentials in URLs, servers that trickle, close,
reset, send garbage or huge bodies, redirects, a flaky ``/schema`` (issue "Hostile input
and shared state", points 15-20). Everything goes through the real CLI (``python -m kagg``)
against servers started here on 127.0.0.1; time is only ever checked as a generous upper
bound that the old code broke by far.
"""

from __future__ import annotations

import base64
import csv
import json
import os
import sqlite3
import subprocess
import sys
import time

import pytest

from conftest import ROOT, free_port, run_kagg
from test_monitor_helpers import FakeEndpoint, HostileServer, WebhookReceiver

QUICK = ["--count", "3", "--rate", "20/s"]


def _json(res: subprocess.CompletedProcess) -> dict:
    assert res.stdout.strip(), res.stderr
    return json.loads(res.stdout)


def _no_unexpected(res: subprocess.CompletedProcess) -> None:
    assert "unexpected" not in res.stderr and "Traceback" not in res.stderr, res.stderr


# -- 15: credentials in a URL --------------------------------------------------------------

def test_credentials_in_the_url_authenticate_and_are_never_shown_or_stored(registry_path, tmp_path):
    rows_file, png = tmp_path / "rows.csv", tmp_path / "lat.png"
    with FakeEndpoint(delay=0.001, auth=("alice", "s3cret")) as ep:
        port = ep.url.split(":")[2].rstrip("/")
        url = f"http://alice:s3cret@127.0.0.1:{port}/?token=tok123&x=1"
        as_json = run_kagg("monitor", url, *QUICK, "--json", "--csv", str(rows_file), "--plot", str(png))
        table = run_kagg("monitor", url, *QUICK)
        hist_json = run_kagg("monitor", "history", url, "--json")
        hist_table = run_kagg("monitor", "history", url)
        sent_auth = {h.get("Authorization") for h in ep.headers}
        sent_paths = set(ep.paths)
    assert as_json.returncode == 0 and table.returncode == 0, as_json.stderr + table.stderr
    # the requests authenticated with the userinfo (the server answers 401 otherwise) ...
    assert sent_auth == {"Basic " + base64.b64encode(b"alice:s3cret").decode()}
    assert ep.unauthorized == 0 and sent_paths == {"/?token=tok123&x=1"}  # ... and kept their query
    (r,) = _json(as_json)["endpoints"]
    assert r["statuses"] == {"200": 3} and r["errors"]["total"] == 0
    assert r["target"] == f"http://alice:***@127.0.0.1:{port}/?token=***&x=1"
    assert r["url"] == f"http://127.0.0.1:{port}/?token=***&x=1"
    assert "alice:***@" in table.stdout
    runs = _json(hist_json)["runs"]
    assert len(runs) == 2 and hist_table.returncode == 0 and "monitor history: http://alice:***@" in hist_table.stdout
    stored = (registry_path.parent / ".kagg" / "monitor.sqlite3").read_bytes()
    with sqlite3.connect(registry_path.parent / ".kagg" / "monitor.sqlite3") as db:
        stored_text = json.dumps(db.execute("SELECT * FROM runs").fetchall())
    everything = [as_json.stdout, as_json.stderr, table.stdout, table.stderr, hist_json.stdout,
                  hist_table.stdout, rows_file.read_text(), stored_text]
    for secret in ("s3cret", "tok123"):
        assert all(secret not in text for text in everything), secret
        assert secret.encode() not in stored and secret.encode() not in png.read_bytes()
    with open(rows_file, newline="") as fh:
        assert {row["target"] for row in csv.DictReader(fh)} == {r["target"]}


def test_credentials_stay_out_of_errors_and_webhook_warnings(registry_path):
    needs = {"type": "object", "properties": {"x": {"type": "integer"}}, "required": ["x"]}
    with FakeEndpoint(delay=0.001, schema=needs, auth=("alice", "s3cret")) as ep:
        url = ep.url.replace("http://", "http://alice:s3cret@") + "?api_key=k3y"
        refused = run_kagg("monitor", url, *QUICK)
        hook = f"http://bob:hunter2@127.0.0.1:{free_port()}/hook?sig=abc"
        warned = run_kagg("monitor", url, *QUICK, "--payload", '{"x": 1}', "--alert", "p50>0ms",
                          "--webhook", hook, "--no-history")
        twice = run_kagg("monitor", url, url)
    assert refused.returncode == 2 and "alice:***@" in refused.stderr and "requires x" in refused.stderr
    assert warned.returncode == 1 and "warning: webhook http://bob:***@127.0.0.1:" in warned.stderr
    assert twice.returncode == 2 and "given twice: http://alice:***@" in twice.stderr
    for res in (refused, warned, twice):
        for secret in ("s3cret", "k3y", "hunter2", "abc"):
            assert secret not in res.stdout + res.stderr, (secret, res.stderr)


def test_webhook_credentials_are_sent_as_basic_auth(registry_path):
    with FakeEndpoint(delay=0.001) as ep, WebhookReceiver() as receiver:
        hook = receiver.url.replace("http://", "http://bob:hunter2@")
        res = run_kagg("monitor", ep.url, *QUICK, "--alert", "p50>0ms", "--webhook", hook, "--no-history")
        assert receiver.event.wait(5)
    assert res.returncode == 1 and "warning" not in res.stderr, res.stderr
    (headers,) = receiver.headers
    assert headers["Authorization"] == "Basic " + base64.b64encode(b"bob:hunter2").decode()


def test_plot_legend_shows_the_redacted_url(tmp_path):
    from kagg.monitor import MonitorOptions, resolve_targets, run
    from kagg.monitor.plot import build_figure
    from kagg.registry import Registry

    with FakeEndpoint(delay=0.001, auth=("alice", "s3cret")) as ep:
        url = ep.url.replace("http://", "http://alice:s3cret@") + "?token=tok123"
        targets = resolve_targets([url], Registry(tmp_path / "endpoints.json"))
        result = run(targets, MonitorOptions(rate=50, count=3, payload={}, keep_results=True))
    fig = build_figure(result.stats)
    labels = [t.get_text() for ax in fig.axes for t in ax.get_legend().get_texts()]
    assert labels and all("alice:***@" in label and "s3cret" not in label and "tok123" not in label
                          for label in labels), labels
    assert result.reports()[0]["statuses"] == {"200": 3}


# -- 16: total deadlines -----------------------------------------------------------------

def test_a_trickling_answer_is_cut_at_the_timeout(registry_path):
    """Headers trickle one byte every 0.5 s for as long as the server runs: each probe is
    still a timeout after --timeout in all, not after --timeout per byte."""
    with HostileServer("trickle") as server:
        started = time.monotonic()
        res = run_kagg("monitor", server.url, *QUICK, "--timeout", "1s", "--payload", "{}", "--json",
                       "--no-history", timeout=60)
        took = time.monotonic() - started
    assert res.returncode == 0, res.stderr
    (r,) = _json(res)["endpoints"]
    assert r["errors"]["by_kind"] == {"timeout": 3}
    assert r["service_ms"]["max"] < 3000  # each request ended near its 1 s deadline
    assert took < 15


def test_a_trickling_schema_is_cut_and_the_run_goes_on(registry_path):
    with HostileServer("trickle") as server:
        started = time.monotonic()
        res = run_kagg("monitor", server.url, "--count", "1", "--timeout", "1s", "--json", "--no-history",
                       timeout=60)
        took = time.monotonic() - started
    assert res.returncode == 0, res.stderr
    (r,) = _json(res)["endpoints"]
    assert r["schema_preflight"]["schema"] == "unreadable" and r["errors"]["by_kind"] == {"timeout": 1}
    assert 2 <= r["schema_preflight"]["attempts"] <= 4
    assert took < 20  # at most 5 s of retrying plus one --timeout, then one probe


@pytest.mark.slow
def test_webhook_to_a_trickling_server_gives_up_after_10_s(registry_path):
    """The webhook's answer trickles for as long as the server runs (the old code waited
    for all of it, 40 s and more); the POST has 10 s in all."""
    with FakeEndpoint(delay=0.001) as ep, HostileServer("trickle") as hook:
        started = time.monotonic()
        res = run_kagg("monitor", ep.url, *QUICK, "--alert", "p50>0ms", "--webhook", hook.url + "hook",
                       "--no-history", timeout=90)
        took = time.monotonic() - started
    assert res.returncode == 1
    assert f"warning: webhook {hook.url}… failed: no full answer within 10 s" in res.stderr, res.stderr
    assert took < 25


# -- 17: servers that break the connection ------------------------------------------------

KINDS = {"close": ("closed", "closed without answering"), "garbage": ("invalid_http", "invalid HTTP response"),
         "short": ("short_body", "short body"), "reset": ("reset", "connection reset")}


def test_broken_answers_are_errors_of_their_request_with_a_clear_kind(registry_path):
    servers = [HostileServer(mode) for mode in KINDS]
    for server in servers:
        server.__enter__()
    try:
        urls = [s.url for s in servers]
        as_json = run_kagg("monitor", *urls, *QUICK, "--payload", "{}", "--json", "--no-history",
                           "--alert", "reset>0")
        table = run_kagg("monitor", *urls, *QUICK, "--payload", "{}", "--no-history")
    finally:
        for server in servers:
            server.__exit__(None, None, None)
    _no_unexpected(as_json)
    _no_unexpected(table)
    assert as_json.returncode == 1 and "ALERT" in as_json.stderr  # the kinds are alert metrics too
    reports = _json(as_json)["endpoints"]
    for report, (kind, label) in zip(reports, KINDS.values()):
        assert report["errors"]["by_kind"] == {kind: 3}, report["errors"]
        assert report["availability_pct"] == 0.0
        assert f"{label} 3" in table.stdout
    assert table.returncode == 0


@pytest.mark.parametrize("mode", list(KINDS))
def test_a_broken_webhook_is_a_warning_naming_what_happened(mode, registry_path):
    with FakeEndpoint(delay=0.001) as ep, HostileServer(mode) as hook:
        res = run_kagg("monitor", ep.url, *QUICK, "--alert", "p50>0ms", "--webhook", hook.url,
                       "--no-history")
    _no_unexpected(res)
    assert res.returncode == 1
    assert f"warning: webhook {hook.url} failed: {KINDS[mode][1]}" in res.stderr, res.stderr
    assert res.stderr.strip().splitlines()[-1].startswith("Error: 1 alert fired")


# -- 18: huge bodies ---------------------------------------------------------------------

_PEAK_RSS = """
import resource, subprocess, sys
done = subprocess.run([sys.executable, "-m", "kagg", *sys.argv[1:]], capture_output=True, text=True)
sys.stderr.write(done.stderr)
sys.stdout.write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) + "\\n" + done.stdout)
sys.exit(done.returncode)
"""


def test_a_200_mb_answer_is_streamed_and_discarded(registry_path, tmp_path):
    """The monitor's peak RSS (its own process alone, measured by a parent that runs nothing
    else) stays far below the body's size."""
    size = 200 * (1 << 20)
    rows_file = tmp_path / "rows.csv"
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    with HostileServer("stream", size=size) as server:
        res = subprocess.run([sys.executable, "-c", _PEAK_RSS, "monitor", server.url, "--count", "2",
                              "--rate", "10/s", "--timeout", "60s", "--payload", "{}", "--json",
                              "--csv", str(rows_file), "--no-history"],
                             capture_output=True, text=True, env=env, timeout=120)
    assert res.returncode == 0, res.stderr
    peak_kib, _, report = res.stdout.partition("\n")
    assert int(peak_kib) < 150 * 1024, f"peak RSS {int(peak_kib) / 1024:.0f} MiB"
    (r,) = json.loads(report)["endpoints"]
    assert r["statuses"] == {"200": 2} and r["errors"]["total"] == 0
    assert r["body_bytes"] == {"total": 2 * size, "max": size}
    with open(rows_file, newline="") as fh:
        assert [int(row["bytes"]) for row in csv.DictReader(fh)] == [size, size]


# -- 19: redirects -------------------------------------------------------------------------

def test_a_redirect_is_an_error_unless_followed(registry_path):
    with FakeEndpoint(delay=0.001, redirect="/final") as ep:
        counted = run_kagg("monitor", ep.url, *QUICK, "--payload", "{}", "--json", "--no-history")
        counted_table = run_kagg("monitor", ep.url, *QUICK, "--payload", "{}", "--no-history")
        assert ep.probes == 0  # nothing reached the function
        followed = run_kagg("monitor", ep.url, *QUICK, "--payload", "{}", "--json", "--follow-redirects",
                            "--no-history")
        followed_table = run_kagg("monitor", ep.url, *QUICK, "--payload", "{}", "--follow-redirects",
                                  "--no-history")
        assert set(ep.paths) == {"/final"}
    doc = _json(counted)
    (r,) = doc["endpoints"]
    assert r["errors"]["by_kind"] == {"http_302": 3} and r["statuses"] == {"302": 3}
    assert r["availability_pct"] == 0.0 and doc["options"]["follow_redirects"] is False
    assert " redirects " in counted_table.stdout and "counted as errors" in counted_table.stdout
    doc = _json(followed)
    (r,) = doc["endpoints"]
    assert r["errors"]["total"] == 0 and r["statuses"] == {"200": 3} and doc["options"]["follow_redirects"]
    assert "followed" in followed_table.stdout and "counted as errors" not in followed_table.stdout


# -- 20: a flaky /schema -----------------------------------------------------------------

def test_a_schema_that_fails_twice_is_retried(registry_path):
    with FakeEndpoint(delay=0.001, schema_failures=2) as ep:
        res = run_kagg("monitor", ep.url, *QUICK, "--json", "--no-history")
        bodies = set(ep.bodies)
    assert res.returncode == 0, res.stderr
    assert "warning" not in res.stderr and bodies == {b'{"x":3}'}  # the /schema defaults
    (r,) = _json(res)["endpoints"]
    assert r["schema_preflight"] == {"schema": "read", "attempts": 3, "errors": {"http_500": 2},
                                     "problem": None}
    assert r["requests"] == 3 and r["errors"]["total"] == 0


@pytest.mark.parametrize("status,method,attempts,sent", [
    (500, None, 4, "POST / with {}"),  # retried, then the bare call
    (404, "GET", 1, "GET /"),  # not a kagg endpoint: no point asking again
])
def test_a_schema_that_keeps_failing_falls_back_to_the_bare_call(status, method, attempts, sent, registry_path):
    with FakeEndpoint(delay=0.001, schema_failures=-1, schema_status=status, error_every=3) as ep:
        started = time.monotonic()
        res = run_kagg("monitor", ep.url, *QUICK, "--json", "--no-history", *(["--method", method] if method else []))
        took = time.monotonic() - started
        schema_requests = ep.schema_requests
    assert res.returncode == 0, res.stderr  # the endpoint's failures are the run's data
    (warning,) = [line for line in res.stderr.splitlines() if line.startswith("warning:")]
    assert f"cannot read its /schema (http_{status}" in warning and f"sending the bare call {sent}" in warning
    (r,) = _json(res)["endpoints"]
    assert r["schema_preflight"]["schema"] == "unreadable" and r["schema_preflight"]["attempts"] == attempts
    assert schema_requests == attempts and r["requests"] == 3
    assert r["errors"]["by_kind"] == {"http_500": 1}  # every third probe fails, as planned
    if method == "GET":
        assert set(ep.methods) == {"GET"} and set(ep.paths) == {"/"}
    else:
        assert set(ep.bodies) == {b"{}"} and set(ep.methods) == {"POST"}
    assert took < 20  # retries within a few seconds


def test_an_unreachable_endpoint_is_measured_not_refused(registry_path):
    res = run_kagg("monitor", f"http://127.0.0.1:{free_port()}/", *QUICK, "--json", "--no-history")
    assert res.returncode == 0, res.stderr
    assert "cannot read its /schema (cannot connect after 4 attempts)" in res.stderr
    (r,) = _json(res)["endpoints"]
    assert r["errors"]["by_kind"] == {"connection": 3} and r["availability_pct"] == 0.0
