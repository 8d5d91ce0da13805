"""Cleaning notebooks (kagg.notebook.preprocess): outputs and editor metadata out, code and tags kept."""

from __future__ import annotations

import json

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from conftest import CORPUS, needs_corpus
from kagg.errors import OperationFailed
from kagg.notebook.preprocess import preprocess, write_notebook
from kagg.notebook.loading import load_notebook


@pytest.fixture
def loaded(tmp_path):
    nb = new_notebook(metadata={"kernelspec": {"name": "python3", "language": "python", "display_name": "Py"},
                                "language_info": {"name": "python"}, "colab": {"provenance": []},
                                "widgets": {"state": {}}})
    code = new_code_cell("x = 1\nx", execution_count=3,
                         metadata={"tags": ["parameters"], "colab": {"id": "abc"}, "scrolled": True},
                         outputs=[new_output("execute_result", data={"text/plain": "1"}, execution_count=3)])
    nb.cells = [new_markdown_cell("# Title", metadata={"id": "m1"}), code]
    path = tmp_path / "nb.ipynb"
    nbformat.write(nb, str(path))
    return load_notebook(str(path))


def test_nothing_asked_nothing_changed(loaded):
    assert preprocess(loaded) == loaded.nb


def test_strip_outputs(loaded):
    nb = preprocess(loaded, strip_outputs=True)
    code = nb.cells[1]
    assert code.outputs == [] and code.execution_count is None
    assert code.metadata["colab"] == {"id": "abc"} and "colab" in nb.metadata
    assert loaded.nb.cells[1].outputs and loaded.nb.cells[1].execution_count == 3  # the original is untouched


def test_clean_metadata(loaded):
    nb = preprocess(loaded, clean_metadata=True)
    assert set(nb.metadata) == {"kernelspec", "language_info"}
    assert nb.cells[1].metadata == {"tags": ["parameters"]} and nb.cells[0].metadata == {}
    assert nb.cells[1].outputs  # outputs stay unless asked
    assert "colab" in loaded.nb.metadata


def test_write_and_reload(loaded, tmp_path):
    out = write_notebook(preprocess(loaded, strip_outputs=True, clean_metadata=True), tmp_path / "sub" / "clean.ipynb")
    again = load_notebook(str(out))
    assert [c.source for c in again.nb.cells] == ["# Title", "x = 1\nx"]
    assert again.nb.cells[1].metadata == {"tags": ["parameters"]}
    assert not [p for p in out.parent.iterdir() if p.name != "clean.ipynb"]  # no temporary file left


def test_write_to_stdout(loaded, capsys):
    assert write_notebook(preprocess(loaded, strip_outputs=True), "-") is None
    data = json.loads(capsys.readouterr().out)
    assert data["nbformat"] == 4 and data["cells"][1]["outputs"] == []


def test_write_failure_is_operation_failed(loaded, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(OperationFailed) as exc:
        write_notebook(loaded.nb, blocker / "nb.ipynb")
    assert "\n" not in str(exc.value) and "cannot write" in str(exc.value)


@pytest.mark.parametrize("name", ["27-nbformat-4.5-schema-invalid-metadata.ipynb", "29-nbformat-v3-worksheet-without-cells.ipynb",
                                  "36-julia-colab-datacamp-capture-shell.ipynb", "30-nbformat-4.99-future-minor.ipynb"])
@needs_corpus
def test_corpus_notebooks_clean_and_reload(name, tmp_path):
    original = load_notebook(str(CORPUS / name))
    out = write_notebook(preprocess(original, strip_outputs=True, clean_metadata=True), tmp_path / name)
    again = load_notebook(str(out))
    assert [c.get("source") for c in again.nb.cells] == [c.get("source") for c in original.nb.cells]
    assert all(c.get("outputs", []) == [] for c in again.nb.cells)
    assert set(again.nb.metadata) <= {"kernelspec", "language_info"}
