"""``kagg run NB --kaggle`` through the CLI against the Kaggle stand-in: a run that completes and
downloads, a failing run, resuming with compatible and incompatible checkpoints, Ctrl-C while
following, the faults Kaggle throws, and the same kernel run locally without --kaggle."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, run_kagg, wait_until
from kaggle_fixtures import kaggle_env, kaggle_standin  # noqa: F401
from kaggle_notebooks import GATE, training_notebook
from notebooks import write


@pytest.fixture(autouse=True)
def _fast_polls(monkeypatch):
    monkeypatch.setenv("KAGG_KAGGLE_POLL", "0.05,0.3")


def run_json(*args: str, cwd: Path):
    res = run_kagg("run", *args, "--json", cwd=cwd, timeout=240)
    try:
        return res, json.loads(res.stdout)
    except ValueError:
        raise AssertionError((res.returncode, res.stdout, res.stderr)) from None


def run_in_background(nb: Path, cwd: Path) -> tuple[subprocess.Popen, Path]:
    """``kagg run NB --kaggle -o o`` started, not waited for; its stderr goes to the file returned."""
    err = cwd / "stderr.txt"
    with open(err, "w") as stderr:
        proc = subprocess.Popen([sys.executable, "-m", "kagg", "run", str(nb), "--kaggle", "-o", str(cwd / "o")],
                                stdout=subprocess.PIPE, stderr=stderr, text=True,
                                env=dict(os.environ, PYTHONPATH=str(ROOT)), cwd=cwd)
    return proc, err


def secrets_absent(standin, *places: Path, texts: tuple[str, ...] = ()) -> None:
    """The key is nowhere kagg wrote: kernels pushed, output folders, the registry's state, output."""
    key = standin.key
    for call in standin.calls_to("SaveKernel"):
        assert key not in json.dumps(call.body)
    for text in texts:
        assert key not in text
    for place in places:
        for path in Path(place).rglob("*"):
            if path.is_file():
                assert key.encode() not in path.read_bytes(), path


def test_run_completes_follows_and_downloads(kaggle_standin, tmp_path, registry_path):
    kaggle_standin.page_size = 2  # the outputs come in several pages
    nb = training_notebook(tmp_path / "nb")
    res, out = run_json(str(nb), "--kaggle", "-p", "epochs=3", "-o", str(tmp_path / "out"), cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    kernel = kaggle_standin.only_kernel()
    assert out["job"] == f"{kaggle_standin.user}/{kernel.slug}/v1" and kernel.slug.startswith("kagg-train-")
    assert out["status"] == "COMPLETE" and out["ok"] and out["where"] == "kaggle"
    names = {f["name"]: f for f in out["files"]}
    assert {"kagg-result.json", "outputs/metrics.json", "outputs/part-0.bin", "outputs/part-2.bin"} <= set(names)
    assert all(names[n]["verified"] for n in names if n.startswith("outputs/"))  # sha256 from the manifest
    assert json.loads((tmp_path / "out/outputs/metrics.json").read_text()) == {"w": pytest.approx(0.3), "epochs": 3}
    assert out["gpu_time_used_s"] is not None and out["quota_left_s"] is not None
    for line in ("[check]", "[build]", "[push]", "[follow]", "[status] RUNNING", "| epoch 3 w 0.30", "[download]"):
        assert line in res.stderr, line
    log = (tmp_path / "out" / f"{kernel.slug}.log").read_text()
    assert "KERNEL-END" in log
    assert len(kaggle_standin.calls_to("SaveKernel")) == 1
    assert len(kaggle_standin.calls_to("ListKernelSessionOutput")) >= 3  # every page
    # the journal names the job; no credential anywhere
    journal = registry_path.parent / ".kagg" / "kaggle-jobs.jsonl"
    assert out["job"] in journal.read_text()
    assert journal.stat().st_mode & 0o077 == 0 and journal.parent.stat().st_mode & 0o077 == 0
    secrets_absent(kaggle_standin, tmp_path, registry_path.parent, texts=(res.stdout, res.stderr))


def test_run_prints_a_summary_for_people(kaggle_standin, tmp_path):
    nb = training_notebook(tmp_path / "nb")
    res = run_kagg("run", str(nb), "--kaggle", "--device", "cpu", "-o", str(tmp_path / "out"), cwd=tmp_path,
                   timeout=240)
    assert res.returncode == 0, res.stderr
    first = res.stdout.splitlines()[0]
    assert first.endswith(": COMPLETE") and "duration:" in res.stdout and "outputs/metrics.json" in res.stdout
    assert "sha256 ok" in res.stdout and "on Kaggle: " in res.stdout


def test_failing_run_exits_1_showing_the_notebooks_error(kaggle_standin, tmp_path):
    nb = write(tmp_path / "bad.ipynb", "print('loading data', flush=True)", "raise ValueError('labels do not match')")
    res, out = run_json(str(nb), "--kaggle", "--device", "cpu", "-o", str(tmp_path / "out"), cwd=tmp_path)
    assert res.returncode == 1
    assert out["status"] == "ERROR" and not out["ok"]
    assert "ValueError: labels do not match" in out["failure"]
    assert any("ValueError: labels do not match" in line for line in out["error_lines"])
    assert "| ValueError: labels do not match" in res.stderr  # shown live while following
    assert res.stderr.strip().splitlines()[-1].startswith("Error: the kernel ended ERROR")
    assert "Traceback (most recent call last)" not in res.stderr.split("Error:")[-1]


def test_resume_uses_compatible_checkpoints_and_reports_incompatible_ones(kaggle_standin, tmp_path):
    nb = training_notebook(tmp_path / "nb")
    res, first = run_json(str(nb), "--kaggle", "--device", "cpu", "-o", str(tmp_path / "one"), cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    res, again = run_json(str(nb), "--kaggle", "--device", "cpu", "-p", "epochs=4", "--resume-from", first["job"],
                          "-o", str(tmp_path / "two"), cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert again["checkpoint"]["decision"] == "used"
    assert "| resumed from epoch 2" in res.stderr and "| epoch 4 w 0.40" in res.stderr
    assert any(n.startswith("resumed from the checkpoint of") for n in again["notes"])
    pushed = kaggle_standin.calls_to("SaveKernel")[-1].body
    assert pushed["kernelDataSources"] == ["/".join(first["job"].split("/")[:2])]
    res, other = run_json(str(nb), "--kaggle", "--device", "cpu", "-p", "lr=0.5", "--resume-from", first["job"],
                          "-o", str(tmp_path / "three"), cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert other["checkpoint"]["decision"] == "ignored"
    kernel = "/".join(first["job"].split("/")[:2])
    assert f"checkpoint of {kernel} ignored: lr 0.1 ≠ 0.5" in other["notes"]  # the checkpoint's value first
    assert "resumed from epoch" not in res.stderr


def test_ctrl_c_while_following_leaves_the_kernel_running(kaggle_standin, tmp_path):
    nb = training_notebook(tmp_path / "nb", GATE)
    proc, err = run_in_background(nb, tmp_path)
    try:
        wait_until(lambda: "| waiting at the gate" in err.read_text(), timeout=120, what="the kernel at its gate")
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    text = err.read_text()
    assert proc.returncode == 130, text
    kernel = kaggle_standin.only_kernel()
    job = f"{kaggle_standin.user}/{kernel.slug}/v1"
    last = text.strip().splitlines()[-1]
    assert last == (f"stopped following {job}; the kernel keeps running on Kaggle: follow it again with "
                    f"`kagg kaggle logs {job} -f`, stop it with `kagg kaggle stop {job}`")
    assert "Traceback" not in text
    assert kernel.latest.status == "RUNNING"
    (kernel.latest.root / "go").write_text("")
    assert kaggle_standin.wait(kernel.slug).status == "COMPLETE"


def test_faults_are_retried_and_an_accepted_push_is_never_sent_twice(kaggle_standin, tmp_path):
    kaggle_standin.fail("SaveKernel", status=500, accept_first=True)
    kaggle_standin.fail("GetKernelSessionStatus", status=429, html=True, times=2)
    kaggle_standin.fail("ListKernelSessionOutput", status=503, times=1)
    kaggle_standin.fail("output-file", status=200, html=True, times=1)
    kaggle_standin.fail("GetAcceleratorQuotaStatistics", status=200, html=True, times=1)
    kaggle_standin.fail("logs-stream", status=503, html=True, times=1000)  # no live log at all
    nb = training_notebook(tmp_path / "nb")
    res, out = run_json(str(nb), "--kaggle", "--device", "cpu", "-o", str(tmp_path / "out"), cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert out["status"] == "COMPLETE"
    assert "| epoch 2 w 0.20" in res.stderr  # the log, shown from the output listing once it ended
    assert len(kaggle_standin.calls_to("SaveKernel")) == 1 and len(kaggle_standin.kernels) == 1
    assert len(kaggle_standin.only_kernel().versions) == 1
    assert "Traceback" not in res.stderr


def test_gpu_cap_waits_in_kaggs_queue(kaggle_standin, tmp_path):
    kaggle_standin.gpu_cap = 1
    busy = training_notebook(tmp_path / "busy", GATE, name="busy.ipynb")
    first = run_kagg("run", str(busy), "--kaggle", "--no-wait", "--json", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    busy_job = json.loads(first.stdout)["job"]
    nb = training_notebook(tmp_path / "nb")
    proc, err = run_in_background(nb, tmp_path)
    try:
        wait_until(lambda: "waiting in kagg's queue" in err.read_text(), timeout=120, what="the queue message")
        (kaggle_standin.kernel(busy_job.split("/")[1]).latest.root / "go").write_text("")
        proc.wait(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err.read_text()
    assert "Maximum batch GPU session count of 1 reached" in err.read_text()


def test_without_kaggle_the_same_kernel_runs_here(tmp_path):
    nb = training_notebook(tmp_path / "nb")
    res, out = run_json(str(nb), "-p", "epochs=3", "-o", str(tmp_path / "here"), cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert out["where"] == "local" and out["status"] == "COMPLETE" and out["job"] is None
    assert json.loads((tmp_path / "here/outputs/metrics.json").read_text())["epochs"] == 3
    assert (tmp_path / "here/checkpoints/state.json").is_file()
    res, again = run_json(str(nb), "-p", "epochs=4", "--resume-from", str(tmp_path / "here"),
                          "-o", str(tmp_path / "again"), cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert again["checkpoint"]["decision"] == "used" and "| resumed from epoch 3" in res.stderr


def test_a_session_timeout_and_a_stuck_kernel_exit_1(kaggle_standin, tmp_path):
    nb = training_notebook(tmp_path / "nb", GATE)
    res, out = run_json(str(nb), "--kaggle", "--device", "cpu", "--timeout", "3s", "-o", str(tmp_path / "t"),
                        cwd=tmp_path)
    assert res.returncode == 1 and out["status"] == "ERROR" and not out["ok"], res.stderr
    assert out["failure"].startswith("the kernel ended ERROR")
    kaggle_standin.make_stuck()
    res, out = run_json(str(nb), "--kaggle", "--device", "cpu", "--timeout", "1s", "-o", str(tmp_path / "s"),
                        cwd=tmp_path)
    assert res.returncode == 1 and out["status"] == "STUCK", res.stderr
    assert "looks stuck" in out["failure"] and "kagg kaggle stop" in out["failure"]


def test_no_gpu_quota_left_is_bad_input(kaggle_standin, tmp_path):
    kaggle_standin.gpu_used_s = kaggle_standin.gpu_quota_s
    nb = training_notebook(tmp_path / "nb")
    res = run_kagg("run", str(nb), "--kaggle", cwd=tmp_path)
    assert res.returncode == 2 and res.stderr.startswith("Error: no GPU quota left"), res.stderr
    assert kaggle_standin.calls_to("SaveKernel") == []
    cpu = run_kagg("run", str(nb), "--kaggle", "--device", "cpu", "--no-wait", cwd=tmp_path)
    assert cpu.returncode == 0, cpu.stderr


def test_complete_without_the_end_marker_is_a_failure(tmp_path):
    from kagg.kaggle.outputs import Fetched
    from kagg.kaggle.run import RunSummary, judge

    summary = RunSummary(job="a/b/v1", status="COMPLETE", ok=True, where="kaggle")
    judge(summary, "COMPLETE", "", Fetched(log_lines=["[kagg] KERNEL-START a/b", "training"], end_marker=False,
                                           log_path=tmp_path / "b.log"), None)
    assert not summary.ok and "without kagg's end marker" in summary.failure
