"""What a new user hit in ``kagg monitor`` (issue "What a new user hit", point 16): an unknown
history NAME, ``--since``'s help against its error, where ``--plot`` wrote, plain-millisecond
plot axes, and the duration parser other commands share. Through the real CLI where it can be.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from conftest import ROOT, run_kagg
from kagg.model import Endpoint
from kagg.monitor.probe import Result
from kagg.monitor.stats import Stats
from kagg.monitor.units import duration_forms, parse_duration
from kagg.registry import Registry
from test_monitor_helpers import FakeEndpoint


def test_history_of_an_unknown_name_is_exit_2_naming_the_registry(registry_path):
    for args in (["nope"], ["nope", "--json"], ["nope", "--since", "1h"]):
        res = run_kagg("monitor", "history", *args)
        assert res.returncode == 2, res
        (line,) = res.stderr.strip().splitlines()
        assert line.startswith("Error: no endpoint named 'nope' in ") and str(registry_path) in line
        assert "monitor.sqlite3" in line and '"runs"' not in res.stdout  # (--json: the error as JSON)
    res = run_kagg("endpoints", "show", "nope")  # the same as its sibling command
    assert res.returncode == 2 and str(registry_path) in res.stderr
    res = run_kagg("monitor", "history", "http://127.0.0.1:9/never")
    assert res.returncode == 2 and "no monitor runs of http://127.0.0.1:9/never in " in res.stderr


def test_history_of_a_known_name_with_no_recent_runs_is_not_an_error(registry_path):
    Registry(registry_path).put(Endpoint(name="hello", provider="local", url="http://127.0.0.1:9/"))
    res = run_kagg("monitor", "history", "hello")
    assert res.returncode == 0 and "no monitor runs of hello in the last 24h" in res.stdout
    assert json.loads(run_kagg("monitor", "history", "hello", "--json").stdout) == {"target": "hello", "runs": []}


def _squash(text: str) -> str:
    return re.sub(r"\s+", " ", text)


def test_since_help_and_its_error_name_the_same_forms(registry_path):
    helped = _squash(run_kagg("monitor", "history", "--help").stdout)
    refused = run_kagg("monitor", "history", "x", "--since", "yesterday")
    assert refused.returncode == 2
    forms = duration_forms()
    assert forms in helped and forms in _squash(refused.stderr), (helped, refused.stderr)
    examples = re.search(r"such as ([^.]*)\.", helped[helped.index("--since"):]).group(1)
    for example in re.findall(r"\d+\w+", examples):
        assert parse_duration(example) > 0  # every example the help gives is accepted


@pytest.mark.parametrize("text,seconds", [("10", 10), ("10s", 10), ("1.5s", 1.5), ("250ms", 0.25),
                                          ("2m", 120), ("1h", 3600)])
def test_the_shared_duration_parser(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)
    assert parse_duration(text, "--timeout") == pytest.approx(seconds)  # the signature others call


def test_the_duration_parser_imports_nothing_heavy():
    code = ("import sys, kagg.monitor.units; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'aiohttp', 'hdrh', 'rich', 'tenacity', "
            "'matplotlib', 'click'}), 'kagg.monitor.runner' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.split() == ["[]", "False"], out.stdout


def test_plot_and_csv_say_where_they_wrote(registry_path, tmp_path):
    png, rows = tmp_path / "lat.png", tmp_path / "rows.csv"
    with FakeEndpoint(delay=0.001) as ep:
        res = run_kagg("monitor", ep.url, "--count", "5", "--rate", "50/s", "--plot", str(png), "--csv", str(rows),
                       "--json", "--no-history")
    assert res.returncode == 0, res.stderr
    assert f"wrote the latency plot to {png}" in res.stderr and f"wrote 5 request rows to {rows}" in res.stderr
    json.loads(res.stdout)  # stdout is still the report alone
    assert png.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("latencies", [
    [0.4, 0.9, 3.0, 20.0, 150.0, 900.0, 4000.0, 25000.0],  # many decades
    [1000.0, 1100.0, 1200.0, 1300.0, 1500.0],  # within one decade: minor ticks get labels
])
def test_plot_axes_read_as_plain_milliseconds(latencies):
    from kagg.monitor.plot import build_figure

    s = Stats("api", "http://127.0.0.1:1/", "POST", 10.0, len(latencies), keep_results=True)
    s.t0 = 100.0
    for i, ms in enumerate(latencies):
        s.add(Result(i, 100.0 + i / 10, 100.0 + i / 10, 100.0 + i / 10 + ms / 1000, 200, None))
    fig = build_figure([s])
    fig.canvas.draw()
    labels = []
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            labels += [t.get_text() for t in axis.get_ticklabels(which="both") if t.get_text()]
            assert axis.get_offset_text().get_text() == ""
    assert labels
    for label in labels:
        assert re.fullmatch(r"−?\d+(\.\d+)?", label), labels  # "1000", "0.5": no 10^3, no 1e3
    assert {ax.get_ylabel() for ax in fig.axes} >= {"latency (ms)"}
