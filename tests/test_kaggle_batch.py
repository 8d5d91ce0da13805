"""``kagg batch LIST --operation run``: many notebooks on Kaggle (the stand-in) at once, at most
2 sessions at a time unless ``--max-per-provider kaggle=N``; a push refused for the GPU session
cap waits in kagg's queue instead of failing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from conftest import ROOT, run_kagg, wait_until
from kaggle_fixtures import kaggle_env, kaggle_standin  # noqa: F401
from kaggle_notebooks import GATE, training_notebook


@pytest.fixture(autouse=True)
def _fast_polls(monkeypatch):
    monkeypatch.setenv("KAGG_KAGGLE_POLL", "0.05,0.3")


def notebooks(folder: Path, count: int, *extra) -> Path:
    for i in range(count):
        training_notebook(folder, *extra, name=f"nb{i}.ipynb")
    listing = folder / "list.txt"
    listing.write_text("".join(f"nb{i}.ipynb\n" for i in range(count)))
    return listing


def most_at_once(standin) -> int:
    """The most sessions that ran at the same time (from the stand-in's own times)."""
    spans = [(v.created, v.ended) for k in standin.kernels.values() for v in k.versions]
    assert all(end for _, end in spans)
    return max(sum(1 for s, e in spans if s <= start < e) for start, _ in spans)


def test_at_most_two_sessions_at_a_time_by_default(kaggle_standin, tmp_path):
    kaggle_standin.gpu_cap = 10  # the account would allow more: kagg's own cap holds them back
    listing = notebooks(tmp_path, 3, GATE)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "kagg", "batch", str(listing), "--operation", "run",
                             "--parallel", "-o", str(tmp_path / "out"), "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
    output: dict = {}
    reader = threading.Thread(target=lambda: output.update(zip(("out", "err"), proc.communicate())), daemon=True)
    reader.start()
    try:
        def at_gate():
            with kaggle_standin.lock:
                return [k for k in kaggle_standin.kernels.values()
                        if any("waiting at the gate" in e.data for e in k.latest.log)]
        first_two = wait_until(lambda: len(at_gate()) == 2 and at_gate(), timeout=180, what="two kernels at the gate")
        assert len(kaggle_standin.kernels) == 2  # the third waits in kagg's queue, not in a push
        for kernel in first_two:
            (kernel.latest.root / "go").write_text("")
        third = wait_until(lambda: [k for k in at_gate() if k not in first_two], timeout=180, what="the third")
        (third[0].latest.root / "go").write_text("")
        reader.join(timeout=240)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, output.get("err")
    report = json.loads(output["out"])
    assert [i["status"] for i in report["items"]] == ["ok", "ok", "ok"]
    assert len(kaggle_standin.kernels) == 3 and most_at_once(kaggle_standin) == 2
    assert (tmp_path / "out/nb0/outputs/metrics.json").is_file()


def test_max_per_provider_and_the_gpu_cap(kaggle_standin, tmp_path):
    kaggle_standin.gpu_cap = 1  # Kaggle refuses a second GPU session: that push waits and is tried again
    listing = notebooks(tmp_path, 2)
    res = run_kagg("batch", str(listing), "--operation", "run", "--parallel", "-o", str(tmp_path / "out"),
                   "--json", cwd=tmp_path, timeout=300)
    assert res.returncode == 0, res.stderr
    assert len(kaggle_standin.kernels) == 2 and most_at_once(kaggle_standin) == 1
    refused = len(kaggle_standin.calls_to("SaveKernel")) - 2
    assert refused >= 1  # the second push was refused at least once, then waited in kagg's queue
    for kernel in kaggle_standin.kernels.values():
        assert len(kernel.versions) == 1

    kaggle_standin.gpu_cap = 10
    again = run_kagg("batch", str(listing), "--operation", "run", "--parallel", "--max-per-provider", "kaggle=1",
                     "-o", str(tmp_path / "again"), "--json", cwd=tmp_path, timeout=300)
    assert again.returncode == 0, again.stderr
    assert len(kaggle_standin.kernels) == 4 and most_at_once(kaggle_standin) == 1


def test_a_bad_notebook_stops_the_list_before_anything_is_pushed(kaggle_standin, tmp_path):
    listing = notebooks(tmp_path, 2)
    (tmp_path / "nb1.ipynb").write_text((tmp_path / "nb1.ipynb").read_text().replace("epochs: int = 2", "epochs = ("))
    res = run_kagg("batch", str(listing), "--operation", "run", cwd=tmp_path)
    assert res.returncode == 2 and "list.txt:2: " in res.stderr and "nothing was done" in res.stderr
    assert kaggle_standin.calls_to("SaveKernel") == []


def test_without_credentials_every_item_says_so_and_nothing_runs(tmp_path):
    listing = notebooks(tmp_path, 2)
    res = run_kagg("batch", str(listing), "--operation", "run", cwd=tmp_path)
    assert res.returncode == 2 and res.stderr.count("no Kaggle credentials found") == 2, res.stderr
    assert "nothing was done" in res.stderr
