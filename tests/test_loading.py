"""Loading notebooks from paths and URLs (kagg.notebook.loading): what loads, and the one-line refusals."""

from __future__ import annotations

import hashlib
import http.server
import json
import threading
from pathlib import Path

import nbformat
import pytest

from conftest import CORPUS, free_port, needs_corpus, run_kagg
from kagg.errors import BadInput, OperationFailed
from kagg.notebook.cells import cell_tags
from kagg.notebook.loading import github_raw_url, load_notebook, parse_notebook

V4 = {"cells": [{"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [],
                 "source": ["def handler():\n", "    return 1\n"]}],
      "metadata": {"kernelspec": {"name": "python3", "language": "python", "display_name": "Python 3"}},
      "nbformat": 4, "nbformat_minor": 5}

V3 = {"metadata": {"name": "old"}, "nbformat": 3, "nbformat_minor": 0,
      "worksheets": [{"cells": [{"cell_type": "code", "collapsed": False, "input": "x = 1\nprint(x)",
                                 "language": "python", "metadata": {}, "outputs": []},
                                {"cell_type": "markdown", "metadata": {}, "source": "# hi"}],
                      "metadata": {}}]}


def write_json(path: Path, data) -> Path:
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def one_line(exc: pytest.ExceptionInfo) -> str:
    message = str(exc.value)
    assert "\n" not in message and message
    return message


# -- local files -------------------------------------------------------------------------------

def test_local_v4_notebook(tmp_path):
    path = write_json(tmp_path / "My Model.ipynb", V4)
    loaded = load_notebook(str(path))
    assert loaded.nb.nbformat == 4 and len(loaded.nb.cells) == 1
    assert loaded.raw == path.read_bytes()
    assert loaded.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert loaded.folder == tmp_path.resolve()
    assert loaded.stem == "My Model" and loaded.filename == "My Model.ipynb"
    assert loaded.source == str(path) and loaded.notes == []


def test_v3_is_upgraded_to_v4(tmp_path):
    loaded = load_notebook(str(write_json(tmp_path / "old.ipynb", V3)))
    assert loaded.nb.nbformat == 4
    assert [c.cell_type for c in loaded.nb.cells] == ["code", "markdown"]
    assert loaded.nb.cells[0].source == "x = 1\nprint(x)"


def test_v3_worksheet_without_cells_loads_empty(tmp_path):
    data = {"metadata": {"name": ""}, "nbformat": 3, "nbformat_minor": 0, "worksheets": [{"metadata": {}}]}
    loaded = load_notebook(str(write_json(tmp_path / "empty.ipynb", data)))
    assert loaded.nb.nbformat == 4 and loaded.nb.cells == []


def test_future_minor_and_unknown_cell_types_load(tmp_path):
    data = dict(V4, nbformat_minor=99)
    data["cells"] = V4["cells"] + [{"cell_type": "future cell", "metadata": {}, "source": ""}]
    loaded = load_notebook(str(write_json(tmp_path / "future.ipynb", data)))
    assert len(loaded.nb.cells) == 2


def test_schema_invalid_metadata_loads_with_a_note(tmp_path):
    data = json.loads(json.dumps(V4))
    data["metadata"]["kernelspec"] = "BAD: should be a dict"
    data["cells"][0]["metadata"] = {"collapsed": "BAD", "tags": "BAD: should be list"}
    loaded = load_notebook(str(write_json(tmp_path / "invalid.ipynb", data)))
    assert len(loaded.nb.cells) == 1
    assert len(loaded.notes) == 1 and "nbformat schema" in str(loaded.notes[0])


def test_utf8_bom_is_accepted(tmp_path):
    path = tmp_path / "bom.ipynb"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(V4).encode())
    assert len(load_notebook(str(path)).nb.cells) == 1


@pytest.mark.parametrize("case, expected", [
    ("missing", "does not exist"),
    ("directory", "is a directory"),
    ("script.py", "jupytext"),
    ("truncated", "line 1, column 12"),
    ("percent", "percent format"),
    ("html", "HTML"),
    ("list", "not a Jupyter notebook"),
    ("object", "not a Jupyter notebook"),
    ("v5", "nbformat 5"),
    ("latin1", "not UTF-8"),
])
def test_local_refusals_are_one_line(tmp_path, case, expected):
    contents = {
        "script.py": "print('hi')\n",
        "truncated": '{"cells": [',
        "percent": "# %% [code]\nx <- 1\n",
        "html": "<!DOCTYPE html><html></html>",
        "list": "[1, 2]",
        "object": '{"name": "x"}',
        "v5": json.dumps(dict(V4, nbformat=5)),
    }
    path = tmp_path / (case if case.endswith(".py") else f"{case}.ipynb")
    if case == "directory":
        path.mkdir()
    elif case == "latin1":
        path.write_bytes('{"x": "caf\xe9"}'.encode("latin-1"))
    elif case in contents:
        path.write_text(contents[case])
    with pytest.raises(BadInput) as exc:
        load_notebook(str(path))
    assert expected in one_line(exc)


def test_invalid_json_says_where(tmp_path):
    path = tmp_path / "broken.ipynb"
    path.write_text('{\n  "cells": [\n    {"a": 1,,}\n  ]\n}')
    with pytest.raises(BadInput) as exc:
        load_notebook(str(path))
    message = one_line(exc)
    assert "broken.ipynb is not valid JSON (line 3, column" in message and "save it again" in message


def test_parse_notebook_from_bytes():
    nb = parse_notebook(json.dumps(V4).encode(), "x.ipynb")
    assert nb.cells[0].source.startswith("def handler")


# -- the schema check without nbformat ----------------------------------------------------------

def _nbformat_accepts(nb: dict) -> bool:
    """What kagg reported before the cheap check: nbformat's verdict with code outputs left out."""
    import copy
    import warnings

    from nbformat.validator import ValidationError, validate

    cells = nb.get("cells")
    if isinstance(cells, list):
        cells = [dict(c, outputs=[]) if isinstance(c, dict) and c.get("cell_type") == "code" else c for c in cells]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            validate(copy.deepcopy(dict(nb, cells=cells)))
    except ValidationError:
        return False
    except Exception:  # noqa: BLE001 - the validator's own failure counts as "no problem reported"
        return True
    return True


def _rich_notebook(minor: int = 5) -> dict:
    """Every kind of cell with the metadata editors write, as nbformat builds them."""
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output, new_raw_cell

    nb = new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
                                "language_info": {"name": "python", "version": "3.11.7", "file_extension": ".py",
                                                  "codemirror_mode": {"name": "ipython", "version": 3}},
                                "title": "t", "authors": [{"name": "a"}], "colab": {"provenance": []}})
    code = new_code_cell("x = 1\nx", metadata={"tags": ["parameters"], "collapsed": False, "scrolled": "auto",
                                               "jupyter": {"source_hidden": True},
                                               "execution": {"iopub.status.busy": "2024-01-01T00:00:00Z"}})
    code.outputs = [new_output("execute_result", data={"text/plain": "1"}, execution_count=1),
                    new_output("stream", name="stdout", text="hi\n")]
    code.execution_count = 1
    markdown = new_markdown_cell("![x](attachment:x.png)", metadata={"name": "intro"},
                                 attachments={"x.png": {"image/png": "iVBORw0KGgo="}})
    raw = new_raw_cell("raw", metadata={"format": "text/x-python"})
    nb.cells = [code, markdown, raw, new_code_cell("", metadata={})]
    nb.nbformat_minor = minor
    if minor < 5:
        for cell in nb.cells:
            del cell["id"]
    return json.loads(json.dumps(nb))


@pytest.mark.parametrize("minor", [0, 2, 4, 5])
def test_common_notebooks_are_vouched_for_without_nbformat(minor):
    from kagg.notebook.schema import schema_valid

    nb = _rich_notebook(minor)
    assert _nbformat_accepts(nb) and schema_valid(nb)
    nb["cells"][0]["id"] = "abc" if minor < 5 else "bad id!"  # an id before 4.5, or one with spaces
    assert not _nbformat_accepts(nb) and not schema_valid(nb)


def test_schema_check_never_vouches_for_what_nbformat_rejects():
    """Seeded mutations of valid notebooks: whenever the cheap check says valid, nbformat agrees."""
    import copy
    import random

    from kagg.notebook.schema import schema_valid

    values = [None, True, False, 0, -1, 1, 1.0, "", "a", "a,b", "x\n", "auto", "a" * 65, "ok-id", "bad id",
              [], ["a"], ["a", "a"], ["a", 1], {}, {"a": 1}, {"name": "x", "display_name": "y"}, ["x\n", "y"],
              {"text/plain": "x"}, {"application/json": {"a": 1}}, {"image/png": 1}, 4, 5, 6, "raw", "code"]
    keys = ["metadata", "nbformat", "nbformat_minor", "cells", "kernelspec", "language_info", "name",
            "display_name", "codemirror_mode", "orig_nbformat", "title", "authors", "id", "cell_type", "source",
            "outputs", "execution_count", "attachments", "tags", "jupyter", "execution", "collapsed", "scrolled",
            "format", "extra"]

    def containers(obj, found):
        if isinstance(obj, (dict, list)):
            found.append(obj)
            for value in obj.values() if isinstance(obj, dict) else obj:
                containers(value, found)
        return found

    rng = random.Random(20240601)
    bases = [_rich_notebook(m) for m in (0, 3, 4, 5)] + [json.loads(json.dumps(V4))]
    vouched = 0
    for _ in range(1500):
        nb = copy.deepcopy(rng.choice(bases))
        for _ in range(rng.randint(1, 3)):
            target = rng.choice(containers(nb, []))
            value = copy.deepcopy(rng.choice(values))
            if isinstance(target, dict):
                roll = rng.random()
                if target and roll < 0.3:
                    del target[rng.choice(list(target))]
                elif target and roll < 0.7:
                    target[rng.choice(list(target))] = value
                else:
                    target[rng.choice(keys)] = value
            elif target and rng.random() < 0.5:
                target[rng.randrange(len(target))] = value
            else:
                target.append(value)
        if schema_valid(nb):
            vouched += 1
            assert _nbformat_accepts(nb), json.dumps(nb)[:2000]
    assert vouched > 300  # the cheap path is the common one


@needs_corpus
def test_corpus_notes_are_unchanged_by_the_cheap_check():
    """Every corpus notebook gets the schema note exactly when nbformat rejects it."""
    for path in sorted(CORPUS.glob("*.ipynb")):
        try:
            loaded = load_notebook(str(path))
        except BadInput:
            continue
        noted = any("nbformat schema" in str(n) for n in loaded.notes)
        assert noted == (not _nbformat_accepts(loaded.nb)), path.name


def test_load_and_convert_do_not_import_nbformat(tmp_path):
    """The common path (a v4 notebook) reads, checks and converts without nbformat or jsonschema."""
    path = write_json(tmp_path / "nb.ipynb", V4)
    res = run_kagg("convert", str(path), "-o", str(tmp_path / "out"), "--json",
                   env={"PYTHONPROFILEIMPORTTIME": "1"})
    assert res.returncode == 0, res.stderr
    imported = {line.rsplit("|", 1)[-1].strip() for line in res.stderr.splitlines() if line.startswith("import time:")}
    assert "kagg.notebook.convert" in imported
    heavy = {m for m in imported if m.split(".")[0] in ("nbformat", "jsonschema", "fastjsonschema", "rich")}
    assert heavy == set(), sorted(heavy)


def test_an_invalid_notebook_is_still_reported_and_loaded(tmp_path):
    data = json.loads(json.dumps(V4))
    data["nbformat_minor"] = 4
    data["cells"][0]["id"] = "not-allowed-before-4.5"
    loaded = load_notebook(str(write_json(tmp_path / "ids.ipynb", data)))
    assert len(loaded.nb.cells) == 1
    assert [str(n) for n in loaded.notes] == [
        "the notebook does not match the nbformat schema (Additional properties are not allowed ('id' was "
        "unexpected)); loaded it anyway"]


@pytest.mark.filterwarnings("ignore")  # V4's cell has no id: nbformat adds one, with a warning
def test_notebook_node_behaves_like_nbformats(tmp_path):
    import copy
    import pickle

    from kagg.notebook.loading import NotebookNode

    nb = load_notebook(str(write_json(tmp_path / "nb.ipynb", V4))).nb
    assert isinstance(nb.metadata.kernelspec, NotebookNode) and nb.metadata.kernelspec.name == "python3"
    nb.cells[0].metadata = {"tags": ["skip"]}
    assert isinstance(nb.cells[0].metadata, NotebookNode) and nb.cells[0].metadata.tags == ["skip"]
    clone = copy.deepcopy(nb)
    clone.cells[0].source = "changed"
    assert nb.cells[0].source.startswith("def handler") and clone == pickle.loads(pickle.dumps(clone))
    with pytest.raises(AttributeError):
        nb.no_such_key
    nbformat.validate(nbformat.from_dict(nb))


# -- tags --------------------------------------------------------------------------------------

@pytest.mark.parametrize("tags, expected", [
    (["parameters", "Skip"], {"parameters", "skip"}),
    ("parameters, train", {"parameters", "train"}),
    ([" parameters "], {"parameters"}),
    (None, set()),
    (12, set()),
    ([1, "skip"], {"skip"}),
])
def test_cell_tags(tags, expected):
    assert cell_tags({"metadata": {"tags": tags}}) == expected


def test_cell_tags_read_metadata_tags_only():
    assert cell_tags({"metadata": {"papermill": {"tags": ["parameters"]}, "jupyter": {"tags": ["skip"]}}}) == set()


# -- URLs --------------------------------------------------------------------------------------

@pytest.mark.parametrize("url, raw", [
    ("https://github.com/o/r/blob/main/nb.ipynb", "https://raw.githubusercontent.com/o/r/main/nb.ipynb"),
    ("https://github.com/o/r/blob/v1.2/dir/sub/My%20nb.ipynb?raw=true",
     "https://raw.githubusercontent.com/o/r/v1.2/dir/sub/My%20nb.ipynb"),
    ("http://www.github.com/o/r/blob/abc123/a.ipynb#L3", "https://raw.githubusercontent.com/o/r/abc123/a.ipynb"),
    ("https://raw.githubusercontent.com/o/r/main/nb.ipynb", "https://raw.githubusercontent.com/o/r/main/nb.ipynb"),
    ("https://example.com/github.com/o/r/blob/x.ipynb", "https://example.com/github.com/o/r/blob/x.ipynb"),
    ("https://github.com/o/r/tree/main/dir", "https://github.com/o/r/tree/main/dir"),
])
def test_github_blob_to_raw(url, raw):
    assert github_raw_url(url) == raw


class _Handler(http.server.BaseHTTPRequestHandler):
    routes: dict[str, tuple[int, str, bytes]] = {}

    def do_GET(self):  # noqa: N802 (http.server's naming)
        status, ctype, body = self.routes.get(self.path, (404, "text/plain", b"not found"))
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server(monkeypatch):
    """A local HTTP server on 127.0.0.1 (port 0) serving a notebook, an HTML page and an error."""
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    _Handler.routes = {
        "/nbs/Demo%20Book.ipynb": (200, "application/json", json.dumps(V4).encode()),
        "/page.ipynb": (200, "text/html; charset=utf-8", b"<html><body>GitHub page</body></html>"),
        "/boom.ipynb": (500, "text/plain", b"oops"),
    }
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_url_loads(server):
    url = f"{server}/nbs/Demo%20Book.ipynb"
    loaded = load_notebook(url)
    assert loaded.folder is None and loaded.source == url
    assert loaded.stem == "Demo Book" and loaded.filename == "Demo Book.ipynb"
    assert loaded.sha256 == hashlib.sha256(json.dumps(V4).encode()).hexdigest()
    assert isinstance(loaded.nb, dict) and loaded.nb.cells[0].cell_type == "code"


@pytest.mark.parametrize("path, expected", [
    ("/missing.ipynb", "HTTP 404"),
    ("/page.ipynb", "got text/html, not JSON"),
    ("/boom.ipynb", "HTTP 500"),
])
def test_url_refusals_are_bad_input(server, path, expected):
    with pytest.raises(BadInput) as exc:
        load_notebook(server + path)
    assert expected in one_line(exc)


def test_unreachable_host_is_operation_failed():
    with pytest.raises(OperationFailed) as exc:
        load_notebook(f"http://127.0.0.1:{free_port()}/nb.ipynb")
    assert "check the network" in one_line(exc)


def test_malformed_url_is_bad_input():
    with pytest.raises(BadInput) as exc:
        load_notebook("http://")
    assert "not a valid URL" in one_line(exc)
