"""``kagg monitor`` as a command: outputs, alerts and exit codes, webhook, history, registry names.

Most tests call the click command in-process (CliRunner) and map kagg's errors to exit
codes as the main CLI does; the last ones run the real ``kagg`` once the command is
registered in kagg/cli.py.
"""

from __future__ import annotations

import csv
import itertools
import json

import pytest
from click.testing import CliRunner

from kagg.cli.monitor import monitor
from kagg.errors import KaggError
from kagg.model import Endpoint
from kagg.providers import register
from kagg.providers.base import Provider
from kagg.registry import Registry
from conftest import free_port, run_kagg
from test_monitor_helpers import FakeEndpoint, WebhookReceiver

FAST = ["--rate", "200/s", "--count", "20"]


def invoke(*args: str, obj=None) -> tuple:
    """(result, exit code as the kagg CLI would give it)."""
    result = CliRunner().invoke(monitor, list(args), obj=obj)
    if isinstance(result.exception, KaggError):
        return result, result.exception.exit_code
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result, result.exit_code


@pytest.fixture
def endpoint():
    with FakeEndpoint(delay=0.002) as ep:
        yield ep


def test_json_report_and_alerts_that_do_not_fire(endpoint, registry_path):
    result, code = invoke(endpoint.url, *FAST, "--alert", "p95>2s", "--alert", "errors>50%",
                          "--alert", "availability<90%", "--json")
    assert code == 0, result.output
    doc = json.loads(result.stdout)
    (r,) = doc["endpoints"]
    assert r["requests"] == 20 and r["method"] == "POST" and r["latency_ms"]["p50"] > 2
    assert doc["alerts_fired"] == 0 and [a["fired"] for a in doc["alerts"]] == [False] * 3
    assert doc["options"]["count"] == 20
    assert (registry_path.parent / ".kagg" / "monitor.sqlite3").exists()  # history beside the registry


def test_fired_alert_exits_1_and_posts_the_webhook():
    with FakeEndpoint(delay=0.001, error_every=2) as ep, WebhookReceiver() as hook:
        result, code = invoke(ep.url, *FAST, "--alert", "errors>1%", "--alert", "p99>10s",
                              "--webhook", hook.url)
        assert hook.event.wait(5)
    assert code == 1
    assert "ALERT" in result.stderr and "errors = 50%" in result.stderr
    assert "1 alert fired" in str(result.exception) and "\n" not in str(result.exception)
    assert "kagg monitor report" in result.stdout  # the report still printed
    (payload,) = hook.received
    (alert,) = payload["alerts"]
    assert alert["expression"] == "errors>1%" and alert["value"] == 50.0 and alert["fired"] is True
    assert payload["endpoints"][ep.url]["errors"]["by_kind"] == {"http_500": 10}
    assert payload["text"].startswith("kagg monitor alert:")


def test_malformed_alert_is_exit_2_before_any_request(endpoint):
    result, code = invoke(endpoint.url, *FAST, "--alert", "p95>>300ms")
    assert code == 2 and "invalid --alert 'p95>>300ms'" in str(result.exception)
    assert endpoint.probes == 0


@pytest.mark.parametrize("args,message", [
    ([], "at least one endpoint"),
    (["http://127.0.0.1:9/", "--duration", "1s", "--count", "3"], "--duration or --count"),
    (["http://127.0.0.1:9/", "--rate", "fast"], "invalid rate"),
    (["http://127.0.0.1:9/", "--timeout", "soon"], "invalid --timeout"),
    (["http://127.0.0.1:9/", "--payload", "[1]"], "JSON object"),
    (["http://127.0.0.1:9/", "--health", "--payload", "{}"], "no --payload"),
    (["http://127.0.0.1:9/", "--webhook", "http://127.0.0.1:9/"], "needs at least one --alert"),
    (["ftp://127.0.0.1/x"], "only http:// and https://"),
    (["no-such-endpoint"], "no endpoint named 'no-such-endpoint'"),
    (["http://127.0.0.1:9/", "http://127.0.0.1:9/"], "given twice"),
])
def test_bad_input_is_exit_2(args, message, registry_path):
    result, code = invoke(*args)
    assert code == 2 and message in str(result.exception)


def test_default_payload_comes_from_schema_and_health_probes_get(endpoint):
    result, code = invoke(endpoint.url, *FAST, "--json", "--no-history")
    assert code == 0, result.output
    assert set(endpoint.bodies) == {b'{"x":3}'} and set(endpoint.methods) == {"POST"}
    assert len(endpoint.bodies) == 20  # the /schema fetch is not a probe
    result, code = invoke(endpoint.url, *FAST, "--health", "--no-history")
    assert code == 0
    assert endpoint.paths[-20:] == ["/health"] * 20 and endpoint.methods[-1] == "GET"


def test_connection_refused_counts_as_downtime():
    url = f"http://127.0.0.1:{free_port()}/"
    result, code = invoke(url, "--rate", "100/s", "--count", "10", "--payload", "{}", "--json",
                          "--alert", "availability<99.9%", "--no-history")
    assert code == 1
    (r,) = json.loads(result.stdout)["endpoints"]
    assert r["errors"]["by_kind"] == {"connection": 10} and r["availability_pct"] == 0.0


def test_unreachable_schema_is_a_warning_and_the_bare_call_is_measured():
    result, code = invoke(f"http://127.0.0.1:{free_port()}/", *FAST, "--json", "--no-history")
    assert code == 0
    assert "warning:" in result.stderr and "cannot read its /schema (cannot connect" in result.stderr
    (r,) = json.loads(result.stdout)["endpoints"]
    assert r["errors"]["by_kind"] == {"connection": 20} and r["schema_preflight"]["schema"] == "unreadable"


def test_csv_has_one_row_per_request_and_plot_is_a_png(endpoint, tmp_path):
    rows_file, png = tmp_path / "rows.csv", tmp_path / "lat.png"
    result, code = invoke(endpoint.url, *FAST, "--csv", str(rows_file), "--plot", str(png), "--no-history")
    assert code == 0, result.output
    with open(rows_file, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["seq"]) for r in rows] == list(range(20))
    # the server marks the first probe to reach it cold (under load, seq 1 may overtake seq 0)
    (cold,) = [r for r in rows if r["cold"] == "1"]
    assert int(cold["seq"]) <= 1 and cold["init_ms"] == "123.000"
    assert all(r["cold"] == "0" and r["init_ms"] == "" for r in rows if r is not cold)
    assert all(r["status"] == "200" and not r["error"] and r["instance"] == "inst-1" for r in rows)
    assert all(float(r["latency_ms"]) >= float(r["service_ms"]) >= 2.0 for r in rows)
    assert float(rows[0]["handler_ms"]) == pytest.approx(2.0)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


class SigningProvider(Provider):
    """A provider whose sign() stamps each request, to see that every probe is signed."""

    counter = itertools.count()

    def plan(self, artifact, current, options):
        raise NotImplementedError

    def apply(self, plan):
        raise NotImplementedError

    def delete(self, endpoint):
        return []

    def sign(self, endpoint, method, url, headers, body):
        return {**headers, "X-Test-Signature": f"{endpoint.name}:{method}:{len(body)}:{next(self.counter)}"}


def test_registry_name_is_signed_per_probe_and_history_marks_redeploys(endpoint, tmp_path):
    register("test-signing", SigningProvider)
    registry = Registry(tmp_path / "reg" / "endpoints.json")
    registry.put(Endpoint(name="api", provider="test-signing", url=endpoint.url, auth="aws_iam",
                          artifact_sha256="a" * 64))
    result, code = invoke("api", *FAST, obj={"registry": registry})
    assert code == 0, result.output
    signatures = [h.get("X-Test-Signature") for h in endpoint.headers]
    assert len(signatures) == 20 and len(set(signatures)) == 20
    assert all(s.startswith("api:POST:7:") for s in signatures)

    registry.put(Endpoint(name="api", provider="test-signing", url=endpoint.url, auth="aws_iam",
                          artifact_sha256="b" * 64))
    invoke("api", *FAST, obj={"registry": registry})
    result, code = invoke("history", "api", "--json", obj={"registry": registry})
    assert code == 0
    runs = json.loads(result.stdout)["runs"]
    assert [r["artifact_sha256"][0] for r in runs] == ["a", "b"]
    assert all(r["requests"] == 20 and r["cold"] >= 0 and r["p50"] > 0 for r in runs)
    result, code = invoke("history", "api", "--since", "1h", obj={"registry": registry})
    assert code == 0 and "bbbbbbbbbbbb (redeployed)" in result.stdout and "aaaaaaaaaaaa " in result.stdout
    assert (tmp_path / "reg" / ".kagg" / "monitor.sqlite3").exists()


def test_history_of_unknown_target_and_bad_since(registry_path):
    result, code = invoke("history", "nothing-here")
    assert code == 2 and "no endpoint named 'nothing-here'" in str(result.exception)
    result, code = invoke("history", "nothing-here", "--json")
    assert code == 2 and str(registry_path) in str(result.exception)
    result, code = invoke("history", "x", "--since", "yesterday")
    assert code == 2 and "invalid --since" in str(result.exception)


def test_real_cli_exit_codes(endpoint, registry_path):
    bad = run_kagg("monitor", endpoint.url, "--alert", "p95 over 9000")
    assert bad.returncode == 2 and bad.stderr.strip().startswith("Error: invalid --alert")
    assert len(bad.stderr.strip().splitlines()) == 1
    fired = run_kagg("monitor", endpoint.url, *FAST, "--alert", "p50>0ms", "--json")
    assert fired.returncode == 1 and json.loads(fired.stdout)["alerts_fired"] == 1
    assert fired.stderr.strip().splitlines()[-1].startswith("Error: 1 alert fired")
    ok = run_kagg("monitor", endpoint.url, *FAST, "--alert", "p50>5s")
    assert ok.returncode == 0 and "kagg monitor report" in ok.stdout
    hist = run_kagg("monitor", "history", endpoint.url, "--json")
    assert hist.returncode == 0 and len(json.loads(hist.stdout)["runs"]) == 2
