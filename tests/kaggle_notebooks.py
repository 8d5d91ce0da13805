"""Training notebooks the Kaggle client tests run (small and quick, with real checkpoints)."""

from __future__ import annotations

from pathlib import Path

from notebooks import write

#: the documented idiom that lets a training notebook run in plain Jupyter too (docs/kaggle-kernel.md)
CHECKPOINT_FALLBACK = """\
try:
    kagg_checkpoint_dir
except NameError:  # plain Jupyter: not run by kagg
    def kagg_checkpoint_dir():
        path = Path(os.environ.get("KAGG_CHECKPOINT_DIR", "checkpoints"))
        path.mkdir(parents=True, exist_ok=True)
        return path
"""
SETUP = "import json, os\nfrom pathlib import Path\n" + CHECKPOINT_FALLBACK
PARAMS = "# kagg: compat lr\nlr = 0.1  # learning rate\nepochs: int = 2\n"
TRAIN = """\
state_file = kagg_checkpoint_dir() / "state.json"
state = json.loads(state_file.read_text()) if state_file.exists() else {"epoch": 0, "w": 0.0}
if state["epoch"]:
    print(f"resumed from epoch {state['epoch']}")
for epoch in range(state["epoch"] + 1, epochs + 1):
    state = {"epoch": epoch, "w": state["w"] + lr}
    state_file.write_text(json.dumps(state))
    print(f"epoch {epoch} w {state['w']:.2f}", flush=True)
"""
SAVE = """\
out = Path(os.environ.get("KAGG_OUTPUT_DIR", "outputs"))
out.mkdir(parents=True, exist_ok=True)
(out / "metrics.json").write_text(json.dumps({"w": state["w"], "epochs": epochs}))
for i in range(3):
    (out / f"part-{i}.bin").write_bytes(bytes([i]) * (1000 * (i + 1)))
"""
#: a cell that waits for a file the test creates in the kernel's root (never a sleep in a test)
GATE = ("import os, time\nroot = os.environ.get('KAGG_KAGGLE_ROOT', '/kaggle')\nprint('waiting at the gate', flush=True)\n"
        "while not os.path.exists(os.path.join(root, 'go')):\n    time.sleep(0.02)")


def training_notebook(folder: Path, *extra, name: str = "train.ipynb") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return write(folder / name, SETUP, (PARAMS, ["parameters"]), (TRAIN, ["train"]), *extra, SAVE)
