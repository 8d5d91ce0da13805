"""Files beside the notebook named like kagg's own (issue "Hostile input", point 12): a helper
``main.py`` (or ``kagg_runtime.py``, ``lambda_function.py``, ... or a package folder of those
names), or a data file ``kagg.json`` / ``host.json``, would be replaced by kagg's file in the
artifact and the endpoint would fail later with an ImportError. Refused before anything is built.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import run_kagg
from kagg.notebook.datafiles import KAGG_FILE_ROLES, _kagg_names
from notebooks import write

MODULES = ["main", "kagg_runtime", "kagg_notebook", "kagg_request", "lambda_function", "function_app"]


def _nothing_built(tmp_path: Path, registry: Path) -> None:
    assert not registry.exists()
    assert not list(tmp_path.rglob("*.zip"))


@pytest.mark.parametrize("module", MODULES)
def test_helper_module_named_like_kaggs_file_is_refused(registry_path, tmp_path, module):
    (tmp_path / f"{module}.py").write_text("def helper():\n    return 'mine'\n")
    nb = write(tmp_path / "nb.ipynb", f"import {module}\ndef handler():\n    return {module}.helper()")
    for command in (["deploy", str(nb)], ["deploy", str(nb), "--aws", "--dry-run"], ["convert", str(nb)]):
        res = run_kagg(*command)
        assert res.returncode == 2, (command, res.stdout, res.stderr)
        error = res.stderr.strip().splitlines()[-1]
        assert error.startswith(f"Error: the module {module}.py beside the notebook has the name of kagg's own "
                                f"{module}.py (")
        assert f"rename it (e.g. to my_{module}.py) and change `import {module}` in the notebook to match" in error
    _nothing_built(tmp_path, registry_path)


@pytest.mark.parametrize("module", ["main", "lambda_function"])
def test_helper_package_named_like_kaggs_file_is_refused(registry_path, tmp_path, module):
    (tmp_path / module).mkdir()
    (tmp_path / module / "__init__.py").write_text("X = 1\n")
    (tmp_path / module / "util.py").write_text("Y = 2\n")
    nb = write(tmp_path / "nb.ipynb", f"from {module}.util import Y\ndef handler():\n    return Y")
    res = run_kagg("deploy", str(nb))
    assert res.returncode == 2, res.stderr
    error = res.stderr.strip().splitlines()[-1]
    assert error.startswith(f"Error: the package {module}/ beside the notebook has the name of kagg's own {module}.py")
    assert f"rename it (e.g. to my_{module}/)" in error
    _nothing_built(tmp_path, registry_path)


@pytest.mark.parametrize("name", ["kagg.json", "host.json"])
def test_data_file_named_like_kaggs_file_is_refused(registry_path, tmp_path, name):
    (tmp_path / name).write_text(json.dumps({"threshold": 0.5}))
    nb = write(tmp_path / "nb.ipynb", f"import json\nCFG = json.load(open({name!r}))\ndef handler():\n    return CFG")
    res = run_kagg("deploy", str(nb))
    assert res.returncode == 2, res.stderr
    error = res.stderr.strip().splitlines()[-1]
    assert error.startswith(f"Error: the data file {name} beside the notebook has the name of kagg's own {name} (")
    assert f"rename it (e.g. to my_{name}) and the path in the notebook, or leave it out with --exclude {name}" in error
    _nothing_built(tmp_path, registry_path)
    # the same file asked for with --include: refused too
    plain = write(tmp_path / "plain.ipynb", "def handler():\n    return 1")
    res = run_kagg("convert", str(plain), "--include", "*.json")
    assert res.returncode == 2 and f"the data file {name} beside the notebook" in res.stderr
    assert run_kagg("convert", str(nb), "--exclude", name).returncode == 0


def test_a_data_folder_named_like_a_kagg_module_is_refused(tmp_path):
    (tmp_path / "main").mkdir()
    (tmp_path / "main" / "table.csv").write_text("a\n")
    nb = write(tmp_path / "nb.ipynb", "def handler():\n    return open('main/table.csv').read()")
    res = run_kagg("convert", str(nb))
    assert res.returncode == 2
    assert "the data file main/ beside the notebook has the name of kagg's own main.py" in res.stderr


def test_requirements_txt_read_by_the_notebook_is_not_a_clash(tmp_path):
    """requirements.txt beside the notebook is the requirements file: kagg writes the artifact's
    own from it, so a notebook that reads it finds the same requirements."""
    (tmp_path / "requirements.txt").write_text("# pinned\nnbformat\n")
    nb = write(tmp_path / "nb.ipynb", "REQS = open('requirements.txt').read()\ndef handler():\n    return REQS")
    res = run_kagg("convert", str(nb), "--json", "--include", "*.txt")
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["data_files"] == [] and doc["requirements"] == ["nbformat"]


def test_names_that_are_not_kaggs_own_are_packaged(tmp_path):
    (tmp_path / "main_helpers.py").write_text("X = 1\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "kagg.json").write_text("{}")  # not at the root: no clash
    nb = write(tmp_path / "nb.ipynb", "import main_helpers\nC = open('sub/kagg.json').read()\n"
                                      "def handler():\n    return main_helpers.X")
    res = run_kagg("convert", str(nb), "--json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["local_files"] == ["main_helpers.py", "sub/kagg.json"]


def test_every_kagg_file_has_a_description():
    """The refusal says what kagg's file is; a new shim or file must say it too."""
    assert set(_kagg_names()) <= set(KAGG_FILE_ROLES)
