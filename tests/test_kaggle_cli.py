"""``kagg kaggle ...``, ``kagg deploy OWNER/SLUG`` and every bad input of ``kagg run --kaggle``
through the CLI against the Kaggle stand-in: one line, exit 2, nothing pushed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from conftest import ROOT, run_kagg, wait_until
from kaggle_fixtures import kaggle_env, kaggle_standin  # noqa: F401
from kaggle_notebooks import GATE, training_notebook
from notebooks import HANDLER, notebook, write

R_KERNEL = {"kernelspec": {"name": "ir", "language": "R", "display_name": "R"}, "language_info": {"name": "R"}}
TOKEN = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"


@pytest.fixture(autouse=True)
def _fast_polls(monkeypatch):
    monkeypatch.setenv("KAGG_KAGGLE_POLL", "0.05,0.3")


def one_line_error(res, expected: str) -> None:
    assert res.returncode == 2, (res.returncode, res.stdout, res.stderr)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), res.stderr
    assert expected in lines[0], lines[0]


def test_no_credentials_is_one_line(tmp_path):
    nb = training_notebook(tmp_path / "nb")
    one_line_error(run_kagg("run", str(nb), "--kaggle", cwd=tmp_path),
                   "no Kaggle credentials found: set KAGGLE_USERNAME and KAGGLE_KEY")
    one_line_error(run_kagg("kaggle", "jobs"), "no Kaggle credentials found")
    # a mistake in the notebook or the options is named first: no credentials are needed to see it
    one_line_error(run_kagg("run", str(nb), "--kaggle", "--accelerator", "NvidiaK80", cwd=tmp_path), "NvidiaK80")


@pytest.mark.parametrize("case", ["accelerator", "r", "secret", "param", "resume", "bad-job"])
def test_bad_input_is_one_line_and_pushes_nothing(kaggle_standin, tmp_path, case):
    nb = training_notebook(tmp_path / "nb")
    args, expected = {
        "accelerator": (["--accelerator", "NvidiaK80"], "NvidiaK80"),
        "r": ([], "R"),
        "secret": ([], "GitHub token"),
        "param": (["-p", "learning_rate=1"], "learning_rate"),
        "resume": (["--resume-from", f"{kaggle_standin.user}/kagg-never-was"], "no such kernel"),
        "bad-job": (["--resume-from", "not a job"], "is not a Kaggle kernel"),
    }[case]
    if case == "r":
        nb = write(tmp_path / "r.ipynb", "print('hello')", kernel=R_KERNEL)
    if case == "secret":
        nb = write(tmp_path / "s.ipynb", f"token = '{TOKEN}'\nprint(len(token))")
    res = run_kagg("run", str(nb), "--kaggle", *args, cwd=tmp_path)
    one_line_error(res, expected)
    assert TOKEN not in res.stderr
    assert kaggle_standin.calls_to("SaveKernel") == []


def test_options_that_need_kaggle_are_refused_without_it(tmp_path):
    nb = training_notebook(tmp_path / "nb")
    one_line_error(run_kagg("run", str(nb), "--dataset", "a/b"), "--dataset only apply with --kaggle")


def test_status_logs_output_jobs_quota_stop(kaggle_standin, tmp_path, registry_path):
    nb = training_notebook(tmp_path / "nb")
    done = run_kagg("run", str(nb), "--kaggle", "--json", "-o", str(tmp_path / "run"), cwd=tmp_path, timeout=240)
    assert done.returncode == 0, done.stderr
    job = json.loads(done.stdout)["job"]
    kernel = "/".join(job.split("/")[:2])

    status = run_kagg("kaggle", "status", job, "--json")
    assert json.loads(status.stdout) == {"job": job, "status": "COMPLETE", "failure": None}
    assert run_kagg("kaggle", "status", kernel).stdout.strip() == f"{job}: COMPLETE"  # latest version, pinned

    logs = run_kagg("kaggle", "logs", job)
    assert "epoch 2 w 0.20" in logs.stdout.splitlines()
    followed = run_kagg("kaggle", "logs", job, "-f", "--json")
    assert followed.returncode == 0 and "epoch 2 w 0.20" in json.loads(followed.stdout)["lines"]

    out = run_kagg("kaggle", "output", job, "-o", str(tmp_path / "again"), "--json")
    files = {f["name"]: f for f in json.loads(out.stdout)["files"]}
    assert files["outputs/metrics.json"]["verified"]
    assert (tmp_path / "again/outputs/part-2.bin").stat().st_size == 3000

    jobs = run_kagg("kaggle", "jobs", "--json")
    assert [j["job"] for j in json.loads(jobs.stdout)["jobs"]] == [job]
    assert str(nb) in run_kagg("kaggle", "jobs").stdout

    quota = json.loads(run_kagg("kaggle", "quota", "--json").stdout)
    assert quota["gpu"]["total_time_allowed"] == kaggle_standin.gpu_quota_s and quota["gpu"]["time_left"] > 0
    assert "GPU" in run_kagg("kaggle", "quota").stdout

    refused = run_kagg("kaggle", "stop", job)  # not a terminal, no --yes
    one_line_error(refused, "stopping")
    assert "deletes the kernel" in refused.stderr
    stopped = run_kagg("kaggle", "stop", job, "--yes", "--json")
    assert json.loads(stopped.stdout) == {"job": kernel, "deleted": True}
    assert kaggle_standin.calls_to("DeleteKernel")
    one_line_error(run_kagg("kaggle", "status", job), "no such kernel")
    assert json.loads(run_kagg("kaggle", "jobs", "--json").stdout)["jobs"] == []


def test_stop_ends_a_running_session(kaggle_standin, tmp_path):
    nb = training_notebook(tmp_path / "nb", GATE)
    pushed = run_kagg("run", str(nb), "--kaggle", "--no-wait", "--json", cwd=tmp_path)
    assert pushed.returncode == 0, pushed.stderr
    job = json.loads(pushed.stdout)["job"]
    assert json.loads(pushed.stdout)["status"] == "PUSHED"
    wait_until(lambda: kaggle_standin.running_pids(), timeout=60, what="the session to start")
    one_line_error(run_kagg("kaggle", "output", job), "RUNNING: Kaggle lists its outputs once it ends")
    # follow its log, then Ctrl-C: exit 130, and it keeps running
    out = tmp_path / "follow.txt"
    with open(out, "w") as stdout:
        proc = subprocess.Popen([sys.executable, "-m", "kagg", "kaggle", "logs", job, "-f"], stdout=stdout,
                                stderr=subprocess.PIPE, text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    try:
        wait_until(lambda: "waiting at the gate" in out.read_text(), timeout=120, what="the gate line")
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130 and err.strip().endswith(f"stop it with `kagg kaggle stop {job}`)"), err
    assert kaggle_standin.kernel(job.split("/")[1]).latest.status == "RUNNING"
    assert run_kagg("kaggle", "stop", job, "--yes").returncode == 0
    wait_until(lambda: kaggle_standin.running_pids() == [], timeout=60, what="the session to be killed")


def test_list_pull_push_and_deploy_a_kaggle_notebook(kaggle_standin, tmp_path, reg):
    kaggle_standin.add_kernel("someone/adder-model", json.dumps(notebook(HANDLER)), title="Adder Model")
    listed = json.loads(run_kagg("kaggle", "list", "--search", "adder", "--json").stdout)["kernels"]
    assert [k["ref"] for k in listed] == ["someone/adder-model"]

    pulled = run_kagg("kaggle", "pull", "someone/adder-model", "-o", str(tmp_path / "pulled"))
    assert pulled.returncode == 0, pulled.stderr
    meta = json.loads((tmp_path / "pulled/kernel-metadata.json").read_text())
    assert meta["id"] == "someone/adder-model" and (tmp_path / "pulled" / meta["code_file"]).is_file()

    # a kernel folder of our own, pushed once
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "nb.ipynb").write_text(json.dumps(notebook("print('pushed by hand')")))
    (folder / "kernel-metadata.json").write_text(json.dumps({
        "id": f"{kaggle_standin.user}/hand-pushed", "title": "hand pushed", "code_file": "nb.ipynb",
        "language": "python", "kernel_type": "notebook"}))
    pushed = run_kagg("kaggle", "push", str(folder), "--json")
    assert pushed.returncode == 0, pushed.stderr
    assert json.loads(pushed.stdout)["job"] == f"{kaggle_standin.user}/hand-pushed/v1"
    (folder / "kernel-metadata.json").write_text(json.dumps({"id": f"{kaggle_standin.user}/hand-pushed",
                                                              "title": "other title", "code_file": "nb.ipynb"}))
    one_line_error(run_kagg("kaggle", "push", str(folder)), "does not slugify")

    deployed = run_kagg("deploy", "someone/adder-model", "--json")
    assert deployed.returncode == 0, deployed.stderr
    name = json.loads(deployed.stdout)["name"]
    answer = run_kagg("invoke", name, '{"x": 2, "y": 0.5}')
    assert answer.returncode == 0 and json.loads(answer.stdout)["sum"] == 2.5
    one_line_error(run_kagg("deploy", "someone/not-there"), "no such kernel")


def test_a_local_path_is_never_taken_for_a_kernel(tmp_path, kaggle_standin):
    (tmp_path / "dir").mkdir()
    one_line_error(run_kagg("deploy", "dir/nb.ipynb", cwd=tmp_path), "does not exist")
    assert kaggle_standin.calls_to("GetKernel") == []
