"""examples/digits_training.ipynb: it builds (always), and with torch installed it trains, checkpoints
every epoch and resumes from those checkpoints (torch is not a test dependency: skipped without it)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kagg.kaggle.kernel import KernelRequest, build_kernel
from kagg.kaggle.local_run import run_locally

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "digits_training.ipynb"


def req(slug: str, **kw) -> KernelRequest:
    return KernelRequest(owner="alice", slug=slug, title=slug.replace("-", " "), **kw)


def test_example_builds_for_a_gpu():
    bundle = build_kernel(EXAMPLE, req("digits-gpu1", parameters={"epochs": "40"}))
    assert bundle.metadata["enable_gpu"] and bundle.metadata["machine_shape"] == "NvidiaTeslaT4"
    assert bundle.compat == ["lr", "batch_size", "hidden", "seed"]
    assert bundle.effective["epochs"] == 40
    sources = [c["source"] for c in bundle.notebook["cells"] if c["cell_type"] == "code"]
    assert not any("matplotlib" in s for s in sources)  # the `skip` cell stays home


def test_example_trains_checkpoints_and_resumes(tmp_path):
    pytest.importorskip("torch")
    first = run_locally(build_kernel(EXAMPLE, req("digits-one1", device="cpu", parameters={"epochs": "2"})),
                        tmp_path / "one")
    assert first.returncode == 0, first.log
    assert "epoch 2/2" in first.log and first.result.status == "complete"
    assert [o.name for o in first.result.outputs] == ["outputs/metrics.json", "outputs/model.pt"]
    assert (first.working / "checkpoints" / "last.pt").is_file()
    metrics = json.loads((first.working / "outputs" / "metrics.json").read_text())
    assert metrics["accuracy"] > 0.5 and metrics["resumed_from"] == 0

    second = run_locally(build_kernel(EXAMPLE, req("digits-two2", device="cpu", parameters={"epochs": "3"},
                                                   resume_from="alice/digits-one1")),
                         tmp_path / "two", sources={"digits-one1": first.working})
    assert second.returncode == 0, second.log
    assert second.result.checkpoint["decision"] == "used"
    assert "resumed from epoch 2" in second.log and "epoch 3/3" in second.log and "epoch 1/3" not in second.log
    assert json.loads((second.working / "outputs" / "metrics.json").read_text())["resumed_from"] == 2

    other = run_locally(build_kernel(EXAMPLE, req("digits-three3", device="cpu", parameters={"epochs": "3", "lr": "0.1"},
                                                  resume_from="alice/digits-one1")),
                        tmp_path / "three", sources={"digits-one1": first.working})
    assert other.returncode == 0, other.log
    assert other.result.checkpoint["reason"] == "lr 0.05 ≠ 0.1" and "epoch 1/3" in other.log
