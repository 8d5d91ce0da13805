"""Kernels run for real on this machine (run_locally, and papermill as on Kaggle): outputs, the
manifest, a failing cell, and checkpoints resumed, ignored with a reason, or forced."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kagg.kaggle.kernel import KernelRequest, build_kernel
from kagg.kaggle.kernel_notebook import DRIVER_PATH
from kagg.kaggle.local_run import TIMED_OUT, run_locally
from kagg.kaggle.manifest import END_MARKER, FAILED_MARKER, RESULT_FILE, START_MARKER, read_result
from kaggle_notebooks import CHECKPOINT_FALLBACK
from notebooks import write

pytest.importorskip("sklearn")

#: a real (small) training notebook: an SGD classifier on scikit-learn's digits, one checkpoint per epoch
SETUP = """\
import json, os, pickle
from pathlib import Path
import numpy as np
from sklearn.datasets import load_digits
from sklearn.linear_model import SGDClassifier
import helpers
""" + CHECKPOINT_FALLBACK
PARAMS = "# kagg: compat lr\nlr = 0.01  # learning rate\nepochs: int = 2\n"
TRAIN = """\
X, y = load_digits(return_X_y=True)
X = helpers.scale(X)
ckpt = kagg_checkpoint_dir() / "model.pkl"
if ckpt.exists():
    state = pickle.loads(ckpt.read_bytes())
    model, done = state["model"], state["epoch"]
    print(f"resumed from epoch {done}")
else:
    model, done = SGDClassifier(learning_rate="constant", eta0=lr, random_state=0), 0
for epoch in range(done + 1, epochs + 1):
    model.partial_fit(X, y, classes=np.arange(10))
    ckpt.write_bytes(pickle.dumps({"model": model, "epoch": epoch}))
    print(f"epoch {epoch} accuracy {model.score(X, y):.3f}")
"""
SAVE = """\
out = Path(os.environ.get("KAGG_OUTPUT_DIR", "outputs"))
out.mkdir(exist_ok=True)
(out / "metrics.json").write_text(json.dumps({"accuracy": model.score(X, y), "epochs": epochs}))
(out / "model.pkl").write_bytes(pickle.dumps(model))
"""
HELPERS = "def scale(X):\n    return X / 16.0\n"


def training_notebook(folder: Path, train: str = TRAIN, extra: tuple = ()) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "helpers.py").write_text(HELPERS)
    return write(folder / "train.ipynb", SETUP, (PARAMS, ["parameters"]), (train, ["train"]), SAVE,
                 ("print('exploring the data')", ["skip"]), *extra)


def req(slug: str, **kw) -> KernelRequest:
    return KernelRequest(owner="alice", slug=slug, title=slug.replace("-", " "), device="cpu", **kw)


def run(nb: Path, root: Path, slug: str, sources=None, **kw):
    lines: list[str] = []
    result = run_locally(build_kernel(nb, req(slug, **kw)), root, sources=sources, on_line=lines.append)
    assert result.log == "\n".join(lines) + "\n"
    return result


@pytest.fixture(scope="module")
def first(tmp_path_factory):
    """One two-epoch run whose checkpoints the resume tests attach."""
    base = tmp_path_factory.mktemp("first")
    nb = training_notebook(base / "nb")
    return nb, run(nb, base / "root", "train-one1", parameters={"epochs": "2"})


def test_completes_with_outputs_and_manifest(first):
    nb, done = first
    assert done.returncode == 0 and done.ok, done.log
    log = done.log
    assert log.index(START_MARKER) < log.index("epoch 1 accuracy") < log.index("epoch 2 accuracy") < log.index(END_MARKER)
    result = done.result
    assert result.status == "complete" and result.error is None
    assert result.parameters == {"lr": 0.01, "epochs": 2} and result.injected == {"epochs": 2}
    assert [o.name for o in result.outputs] == ["outputs/metrics.json", "outputs/model.pkl"]
    for output in result.outputs:
        data = (done.working / output.name).read_bytes()
        assert (output.size, output.sha256) == (len(data), hashlib.sha256(data).hexdigest())
    assert result.code_hash == build_kernel(nb, req("train-one1")).code_hash
    assert result.checkpoint == {"decision": "none", "source": None, "reason": None, "saved": 1}
    assert set(result.timings["cells"]) >= {"cell 1", "cell 2", "cell 3", "cell 4", "the injected parameters"}
    meta = json.loads((done.working / "checkpoints" / "kagg-checkpoint.json").read_text())
    assert meta["code_hash"] == result.code_hash and meta["parameters"] == {"lr": 0.01, "epochs": 2}
    assert list((done.root / "tmp").iterdir()) == []  # the unpacked modules are gone
    assert "exploring" not in log


def test_resume_with_compatible_checkpoints(first, tmp_path):
    nb, done = first
    again = run(nb, tmp_path / "root", "train-two2", sources={"train-one1": done.working},
                parameters={"epochs": "4"}, resume_from="alice/train-one1")
    assert again.returncode == 0, again.log
    assert "resumed from epoch 2" in again.log and "epoch 3 accuracy" in again.log and "epoch 1 accuracy" not in again.log
    assert again.result.checkpoint["decision"] == "used" and again.result.checkpoint["source"] == "alice/train-one1"
    assert (done.working / "checkpoints" / "model.pkl").is_file()  # the source is read, never changed


def test_incompatible_checkpoints_ignored_with_reason(first, tmp_path):
    nb, done = first
    again = run(nb, tmp_path / "root", "train-three3", sources={"train-one1": done.working},
                parameters={"lr": "0.1", "epochs": "3"}, resume_from="alice/train-one1")
    assert again.returncode == 0, again.log
    assert again.result.checkpoint["decision"] == "ignored"
    assert again.result.checkpoint["reason"] == "lr 0.01 ≠ 0.1"
    assert "checkpoint of alice/train-one1 ignored: lr 0.01 ≠ 0.1" in again.log
    assert "resumed" not in again.log and "epoch 1 accuracy" in again.log


def test_forced_resume_uses_them_anyway(first, tmp_path):
    nb, done = first
    again = run(nb, tmp_path / "root", "train-four4", sources={"train-one1": done.working},
                parameters={"lr": "0.1", "epochs": "3"}, resume_from="alice/train-one1", force_resume=True)
    assert again.returncode == 0, again.log
    assert again.result.checkpoint["decision"] == "forced"
    assert again.result.checkpoint["reason"] == "used despite: lr 0.01 ≠ 0.1"
    assert "resumed from epoch 2" in again.log and "epoch 3 accuracy" in again.log


def test_changed_training_code_ignores_checkpoints(first, tmp_path):
    _nb, done = first
    changed = training_notebook(tmp_path / "nb", train=TRAIN.replace("random_state=0", "random_state=1"))
    again = run(changed, tmp_path / "root", "train-five5", sources={"train-one1": done.working},
                resume_from="alice/train-one1")
    assert again.result.checkpoint["decision"] == "ignored"
    assert again.result.checkpoint["reason"].startswith("training code changed (code hash ")


def test_resume_from_a_job_without_checkpoints(tmp_path):
    nb = write(tmp_path / "nb.ipynb", "print('hi')")
    (tmp_path / "old").mkdir()
    done = run(nb, tmp_path / "root", "plain-one1", sources={"old-job": tmp_path / "old"}, resume_from="alice/old-job")
    assert done.returncode == 0
    assert done.result.checkpoint == {"decision": "none", "source": "alice/old-job",
                                      "reason": "alice/old-job left no checkpoints", "saved": 0}


def test_failing_cell_gives_error_manifest(tmp_path):
    nb = training_notebook(tmp_path / "nb", extra=("raise ValueError('bad shape (3, 4)')", "print('never here')"))
    failed = run(nb, tmp_path / "root", "train-bad1")
    assert failed.returncode == 1 and not failed.ok
    assert "ValueError: bad shape (3, 4)" in failed.log and "never here" not in failed.log
    assert f"{FAILED_MARKER} cell 6: ValueError: bad shape (3, 4)" in failed.log and END_MARKER not in failed.log
    result = failed.result
    assert result.status == "error" and result.error_line() == "cell 6: ValueError: bad shape (3, 4)"
    assert [o.name for o in result.outputs] == ["outputs/metrics.json", "outputs/model.pkl"]  # what it wrote
    assert result.checkpoint["saved"] == 1 and list((failed.root / "tmp").iterdir()) == []


def test_failing_cell_without_ipython_driver(tmp_path, monkeypatch):
    monkeypatch.setenv("KAGG_DRIVER_PLAIN", "1")
    nb = write(tmp_path / "nb.ipynb", "import os\nprint('cwd', os.getcwd())", "1 / 0")
    failed = run(nb, tmp_path / "root", "plain-bad1")
    assert failed.returncode == 1 and "ZeroDivisionError: division by zero" in failed.log
    assert f"cwd {tmp_path / 'root' / 'working'}" in failed.log
    assert failed.result.error == {"cell": "cell 2", "type": "ZeroDivisionError", "message": "division by zero"}


def test_timeout_stops_the_kernel(tmp_path):
    nb = write(tmp_path / "nb.ipynb", "print('sleeping', flush=True)", "import time\ntime.sleep(300)")
    result = run_locally(build_kernel(nb, req("sleepy-one1")), tmp_path / "root", timeout_s=10)
    assert result.returncode == TIMED_OUT and "ran past the 10 s timeout" in result.log
    assert result.result.status == "running"  # killed: the manifest says so, and has no end marker
    assert END_MARKER not in result.log


def test_checkpoints_of_a_killed_run_resume(tmp_path):
    """A session that hits Kaggle's time limit writes no end manifest, but kagg_checkpoint_dir() wrote the
    checkpoint metadata as soon as the folder was asked for: the next run resumes from it."""
    train = ("ckpt = kagg_checkpoint_dir() / 'step.txt'\n"
             "step = int(ckpt.read_text()) if ckpt.exists() else 0\n"
             "print('starting at step', step, flush=True)\n"
             "import time\n"
             "while step < target:\n"
             "    step += 1\n"
             "    ckpt.write_text(str(step))\n"
             "    print('step', step, flush=True)\n"
             "    if step == 2 and not slow_done:\n"
             "        time.sleep(300)\n")
    nb = write(tmp_path / "nb.ipynb", ("target = 4\nslow_done = False\n# kagg: compat target", ["parameters"]),
               (train, ["train"]))
    killed = run_locally(build_kernel(nb, req("steps-one1")), tmp_path / "one", timeout_s=20)
    assert killed.returncode == TIMED_OUT and "step 2" in killed.log and killed.result.status == "running"
    again = run(nb, tmp_path / "two", "steps-two2", sources={"steps-one1": killed.working},
                resume_from="alice/steps-one1", parameters={"slow_done": "true"})
    assert again.returncode == 0, again.log
    assert again.result.checkpoint["decision"] == "used" and "starting at step 2" in again.log
    assert "step 4" in again.log


def test_same_kernel_runs_under_papermill(first, tmp_path):
    """Kaggle's runner is papermill: the built kernel, run by it, writes the same manifest."""
    nb, _done = first
    bundle = build_kernel(nb, req("train-paper1", parameters={"epochs": "1"}))
    src = bundle.write(tmp_path / "src")
    (tmp_path / "root" / "working").mkdir(parents=True)
    env = dict(os.environ, KAGG_KAGGLE_ROOT=str(tmp_path / "root"))
    out = subprocess.run([sys.executable, "-m", "papermill", str(src), str(tmp_path / "out.ipynb"), "--log-output"],
                         cwd=tmp_path / "root" / "working", env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    result = read_result(tmp_path / "root" / "working" / RESULT_FILE)
    assert result.status == "complete" and result.parameters == {"lr": 0.01, "epochs": 1}
    assert [o.name for o in result.outputs] == ["outputs/metrics.json", "outputs/model.pkl"]
    assert END_MARKER in out.stdout + out.stderr


def test_failing_kernel_under_papermill_writes_error_manifest(tmp_path):
    nb = write(tmp_path / "nb.ipynb", "x = 1", "raise RuntimeError('out of memory')", "print('after')")
    src = build_kernel(nb, req("paper-bad1")).write(tmp_path / "src")
    (tmp_path / "root" / "working").mkdir(parents=True)
    env = dict(os.environ, KAGG_KAGGLE_ROOT=str(tmp_path / "root"))
    out = subprocess.run([sys.executable, "-m", "papermill", str(src), str(tmp_path / "out.ipynb")],
                         cwd=tmp_path / "root" / "working", env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode != 0
    result = read_result(tmp_path / "root" / "working" / RESULT_FILE)
    assert result.status == "error" and result.error_line() == "cell 2: RuntimeError: out of memory"


def test_the_notebook_itself_runs_outside_kagg(tmp_path):
    """The fallback idiom: the same notebook, not built by kagg, checkpoints into ./checkpoints."""
    nb = training_notebook(tmp_path / "nb")
    out = subprocess.run([sys.executable, str(DRIVER_PATH), str(nb)], cwd=tmp_path / "nb", capture_output=True,
                         text=True, timeout=300, env=dict(os.environ, IPYTHONDIR=str(tmp_path / "ipy")))
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "epoch 2 accuracy" in out.stdout
    assert (tmp_path / "nb" / "checkpoints" / "model.pkl").is_file()
    assert (tmp_path / "nb" / "outputs" / "metrics.json").is_file()
