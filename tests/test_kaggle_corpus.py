"""Every notebook of the real-world corpus builds into a Kaggle kernel whose cells compile (as IPython
runs them), or is refused with a one-line reason. The table pins each outcome."""

from __future__ import annotations

import csv
import json
import warnings

import nbformat
import pytest

from conftest import CORPUS, needs_corpus
from kagg.errors import BadInput
from kagg.kaggle.kernel import KernelRequest, build_kernel
from kagg.notebook.loading import load_notebook

pytestmark = needs_corpus
IPython = pytest.importorskip("IPython")
from IPython.core.inputtransformer2 import TransformerManager  # noqa: E402

NO_CODE = "refused: has no code to run on Kaggle"

#: file prefix -> "kernel" | "refused: <part of the message>"
EXPECTED = {
    "01": "kernel",
    "02": "refused: cell 1, line 14: invalid syntax",
    "03": "refused: it is a script in percent format",
    "04": "refused: cell 16, line 1: invalid syntax",
    "05": "refused: uses the R kernel; kagg runs only Python notebooks on Kaggle",
    "06": NO_CODE,
    "08": NO_CODE,
    "23": "refused: cell 4, line 3: Missing parentheses in call to 'print'",
    "24": NO_CODE,
    "28": "refused: uses the plaintext kernel",
    "29": NO_CODE,
    "31": "refused: uses the R kernel",
    "36": "refused: uses the Julia 1.8 kernel",
    "37": "refused: uses the Julia 1.10.2 kernel",
    "38": "refused: serves `handler` (cell 6) and has no cell tagged `train`",
    "40": "refused: found 1 possible credential in 40-nuclio-handler-cell-magic-dummy-secrets.ipynb: cell 4, line 3",
}
NOTEBOOKS = sorted(p.name for p in CORPUS.glob("*.ipynb"))


def request(**kw) -> KernelRequest:
    return KernelRequest(owner="alice", slug="corpus-run1", title="corpus run1", **kw)


def outcome(source, **kw) -> str:
    try:
        bundle = build_kernel(source, request(**kw))
    except BadInput as exc:
        message = str(exc)
        assert message and "\n" not in message, message
        return f"refused: {message}"
    nbformat.validate(nbformat.reads(bundle.text(), as_version=4))
    transform = TransformerManager().transform_cell
    for cell in bundle.notebook["cells"]:
        assert not cell.get("outputs")
        if cell["cell_type"] == "code":
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                compile(transform(cell["source"]), cell["id"], "exec")
    assert bundle.text() == build_kernel(source, request(**kw)).text()  # deterministic
    assert all("\n" not in note for note in bundle.notes)
    return "kernel"


def test_table_covers_the_corpus():
    with open(CORPUS / "MANIFEST.tsv", newline="") as handle:
        listed = {row["file"] for row in csv.DictReader(handle, delimiter="\t")}
    assert listed == set(NOTEBOOKS) and set(EXPECTED) <= {n[:2] for n in NOTEBOOKS}


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_corpus_notebook_builds_or_is_refused(name):
    got = outcome(str(CORPUS / name))
    expected = EXPECTED.get(name[:2], "kernel")
    if expected == "kernel":
        assert got == "kernel", got
    else:
        assert got.startswith("refused: ") and expected[len("refused: "):] in got, got


def test_handler_notebook_with_train_cells_builds(tmp_path):
    """38 serves a handler (cell 6); tagging cells 2-5 `train` sends those and the untagged setup to Kaggle,
    not the handler nor cell 7, which calls it."""
    (name,) = [n for n in NOTEBOOKS if n.startswith("38-")]
    nb = json.loads((CORPUS / name).read_text())
    for number, cell in enumerate(nb["cells"], start=1):
        if number in (2, 3, 4, 5):
            cell.setdefault("metadata", {}).setdefault("tags", []).append("train")
    (tmp_path / name).write_text(json.dumps(nb))
    assert outcome(str(tmp_path / name)) == "kernel"
    sources = [c["source"] for c in build_kernel(str(tmp_path / name), request()).notebook["cells"]]
    cells = load_notebook(str(CORPUS / name)).nb["cells"]
    assert "".join(cells[5]["source"]) not in sources and "".join(cells[6]["source"]) not in sources
    assert "".join(cells[1]["source"]) in sources and "".join(cells[7]["source"]) in sources


def test_secrets_notebook_builds_when_allowed():
    (name,) = [n for n in NOTEBOOKS if n.startswith("40-")]
    assert outcome(str(CORPUS / name), allow_secrets=True) == "kernel"
