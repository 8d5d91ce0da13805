"""Conversion over the real-world corpus (CORPUS/MANIFEST.tsv says what each notebook exercises).

Every notebook either converts into code that compiles, or is refused with a
one-line BadInput saying what to add; nothing else may escape. The tables
below pin each outcome so a regression shows up as a changed row.
"""

from __future__ import annotations

import csv
import warnings

import nbformat
import pytest

from conftest import CORPUS, needs_corpus
from kagg.notebook.convert import convert, convert_source
from kagg.errors import BadInput
from kagg.notebook.loading import load_notebook

NOTHING = "refused: has nothing to serve: define a function `handler(...)`"
NO_CODE = "refused: has no code to serve: define a function `handler(...)`"

#: file prefix -> "handler" | "script" | "refused: <part of the message>", with the default entry.
EXPECTED = {
    "01": "refused: never assigns `result` below its parameters cell (cell 2)",
    "02": "refused: cell 1, line 14: the parameters cell does not parse",
    "03": "refused: it is a script in percent format (`# %%` cells): convert it with `jupytext",
    "04": NOTHING,
    "05": "refused: uses the R kernel; kagg serves Python notebooks only",
    "06": NO_CODE,
    "07": NOTHING,
    "08": NO_CODE,
    "09": NOTHING,
    "10": NOTHING,
    "11": NOTHING,
    "12": NOTHING,
    "13": NOTHING,
    "14": NOTHING,
    "15": NOTHING,
    "16": NOTHING,
    "17": NOTHING,
    "18": NOTHING,
    "19": NOTHING,
    "20": NOTHING,
    "21": NOTHING,
    "22": NOTHING,
    "23": NOTHING,
    "24": NO_CODE,
    "25": NOTHING,
    "26": NOTHING,
    "27": NOTHING,
    "28": "refused: uses the plaintext kernel",
    "29": NO_CODE,
    "30": NOTHING,
    "31": "refused: uses the R kernel",
    "32": NOTHING,
    "33": NOTHING,
    "34": NOTHING,
    "35": NOTHING,
    "36": "refused: uses the Julia 1.8 kernel",
    "37": "refused: uses the Julia 1.10.2 kernel",
    "38": "handler",
    "39": NOTHING,
    "40": NOTHING,
}

#: (file prefix, --entry) -> outcome, for notebooks that define a usable function under another name.
EXPECTED_WITH_ENTRY = {
    ("16", "predict"): "handler",
    ("13", "eval_gini"): "handler",
    ("15", "grey_color_func"): "handler",
    ("18", "feature_eng"): "handler",
    ("20", "make_model"): "handler",
    ("21", "to_markdown"): "handler",
    ("17", "get_optimizer"): "handler",
    ("23", "print_10_nums"): "refused: cell 14, line 3: Missing parentheses in call to 'print'",
    ("04", "f"): "refused: defines no top-level function `f`",
    ("10", "agent"): "refused: defines no top-level function `agent`",
}

#: Every Python notebook plus a trailing ``def handler`` cell: the whole notebook goes through the
#: magic rewriting and compile checks. Prefixes not listed here must convert.
EXPECTED_WITH_HANDLER = {
    "02": "refused: cell 1, line 14: invalid syntax",
    "03": "refused: not JSON",
    "04": "refused: cell 16, line 1: invalid syntax",
    "05": "refused: R kernel",
    "23": "refused: cell 4, line 3: Missing parentheses in call to 'print'",
    "28": "refused: plaintext kernel",
    "31": "refused: R kernel",
    "36": "refused: Julia 1.8 kernel",
    "37": "refused: Julia 1.10.2 kernel",
}

NOTEBOOKS = sorted(p.name for p in CORPUS.glob("*.ipynb"))

pytestmark = needs_corpus


def by_prefix(prefix: str) -> str:
    (match,) = [n for n in NOTEBOOKS if n.startswith(prefix + "-")]
    return str(CORPUS / match)


def outcome(run) -> str:
    """Run a conversion; return its mode after checking the code compiles, or "refused: <message>"."""
    try:
        fn = run()
    except BadInput as exc:
        message = str(exc)
        assert message and "\n" not in message, message
        return f"refused: {message}"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the notebooks' own invalid escape sequences
        compile(fn.module_source, "module", "exec")
        if fn.request_source is not None:
            compile(fn.request_source, "request", "exec")
    assert fn.name and all(isinstance(n.message, str) and "\n" not in n.message for n in fn.notes)
    return fn.mode


def check(got: str, expected: str) -> None:
    if expected.startswith("refused: "):
        assert got.startswith("refused: ") and expected[len("refused: "):] in got, got
    else:
        assert got == expected, got


def test_tables_cover_the_whole_corpus():
    assert len(NOTEBOOKS) == 40 and sorted(EXPECTED) == [n[:2] for n in NOTEBOOKS]
    with open(CORPUS / "MANIFEST.tsv", newline="") as handle:
        listed = {row["file"] for row in csv.DictReader(handle, delimiter="\t")}
    assert listed == set(NOTEBOOKS)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_corpus_default_entry(name):
    check(outcome(lambda: convert_source(str(CORPUS / name))), EXPECTED[name[:2]])


@pytest.mark.parametrize("prefix, entry", sorted(EXPECTED_WITH_ENTRY))
def test_corpus_with_entry(prefix, entry):
    check(outcome(lambda: convert_source(by_prefix(prefix), entry=entry)), EXPECTED_WITH_ENTRY[(prefix, entry)])


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_corpus_plus_a_handler_cell(name):
    def run():
        loaded = load_notebook(str(CORPUS / name))
        loaded.nb.cells.append(nbformat.v4.new_code_cell("def handler(q: str = 'x'):\n    return q"))
        return convert(loaded)

    check(outcome(run), EXPECTED_WITH_HANDLER.get(name[:2], "handler"))


def test_non_python_kernels_are_refused():
    manifest = {}
    with open(CORPUS / "MANIFEST.tsv", newline="") as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            manifest[row["file"]] = row
    for name, row in manifest.items():
        if "non-python" in row["features"]:
            with pytest.raises(BadInput, match="kernel; kagg serves Python notebooks only"):
                convert_source(str(CORPUS / name))


def test_nuclio_handler_details():
    fn = convert_source(by_prefix("38"))
    assert [(p.name, p.required) for p in fn.parameters] == [("context", True), ("event", True)]
    got = {str(n) for n in fn.notes}
    assert "cell 2, line 1: dropped the `%%nuclio env` cell (cell magics only run in Jupyter)" in got
    assert "cell 9, line 1: dropped shell command `!curl 3.122.204.208:30287`" in got
    code = [ln for ln in fn.module_source.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    assert code == ["from os import environ", "def handler(context, event):",
                    "    context.logger.info('some log message')", "    return 'Hello World '+environ.get('USER')",
                    "event = nuclio.Event(body='')", "handler(context, event)"]


def test_ipython_tour_magics_are_all_handled():
    """04 has every kind of IPython syntax; with the one unparseable cell skipped it converts."""
    loaded = load_notebook(by_prefix("04"))
    loaded.nb.cells[15].metadata["tags"] = ["skip"]  # cell 16 is `collections.` (a tab-completion demo)
    loaded.nb.cells.append(nbformat.v4.new_code_cell("def handler():\n    return 1"))
    fn = convert(loaded)
    compile(fn.module_source, "module", "exec")
    got = {str(n) for n in fn.notes}
    for expected in ("cell 7, line 1: dropped help request `?`",
                     "cell 11, line 1: dropped help request `*int*?`",
                     "cell 34, line 1: dropped shell command `!pwd`",
                     "cell 35, line 1: dropped shell command `files = !ls`; `files` is not defined when the "
                     "function runs",
                     "cell 39, line 4: dropped shell command `!echo {\"%02d\" % i} - \"{os.path.splitext(f)[0]}\"`",
                     "cell 45, line 1: dropped the `%%timeit` cell (cell magics only run in Jupyter)",
                     "cell 47, line 4: dropped line magic `%timeit list(range(size))`",
                     "cell 49, line 1: dropped the `%%bash` cell (cell magics only run in Jupyter)",
                     "cell 68, line 1: dropped the `%%perl` cell (cell magics only run in Jupyter)"):
        assert expected in got
    assert "%matplotlib" not in " ".join(got)
    assert "from __future__ import print_function" in fn.module_source.splitlines()[2]
    assert "a, b = 0, 1" in fn.module_source  # `>>>` prompts are stripped, as IPython does


def test_pip_lines_become_requirements():
    fn = convert_source(by_prefix("17"), entry="get_optimizer")
    for spec in ("torch_geometric==2.3.1", "biopython==1.80", "fair_esm==2.0.0", "torch"):
        assert spec in fn.requirements
    assert any("--index-url https://download.pytorch.org/whl/cu118" in str(n) for n in fn.notes)
