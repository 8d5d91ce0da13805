"""Symbolic links out of the notebook's folder (issue "Hostile input", point 13): a helper package
whose files link elsewhere (``pkg/host.py -> /etc/hostname``), a helper module or a data file
linked out, a data folder linked out: refused, naming each link and its target. Links that stay
inside the folder are followed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from conftest import run_kagg
from notebooks import write


@pytest.fixture
def outside(tmp_path) -> Path:
    path = tmp_path / "elsewhere"
    path.mkdir()
    (path / "secret.py").write_text("KEY = 'not for the artifact'\n")
    (path / "table.csv").write_text("a\n1\n")
    return path


@pytest.fixture
def folder(tmp_path) -> Path:
    path = tmp_path / "project"
    path.mkdir()
    return path


def _error(res) -> str:
    assert res.returncode == 2, (res.stdout, res.stderr)
    return res.stderr.strip().splitlines()[-1]


def test_package_file_linked_out_is_refused(registry_path, folder):
    (folder / "pkg").mkdir()
    (folder / "pkg" / "__init__.py").write_text("")
    (folder / "pkg" / "host.py").symlink_to("/etc/hostname")
    (folder / "pkg" / "ok.py").write_text("X = 1\n")
    nb = write(folder / "nb.ipynb", "from pkg.ok import X\ndef handler():\n    return X")
    for command in (["deploy", str(nb)], ["convert", str(nb)]):
        error = _error(run_kagg(*command))
        assert error == ("Error: the notebook's folder holds a symbolic link to files outside it "
                         "(pkg/host.py -> /etc/hostname); kagg does not follow links out of the notebook's folder: "
                         "copy what they point to into the folder, or remove it")
    assert not registry_path.exists() and not list(folder.parent.rglob("*.zip"))


def test_every_link_out_is_named(folder, outside):
    (folder / "pkg").mkdir()
    (folder / "pkg" / "__init__.py").write_text("")
    (folder / "pkg" / "a.py").symlink_to(outside / "secret.py")
    (folder / "pkg" / "sub").symlink_to(outside)
    nb = write(folder / "nb.ipynb", "import pkg\ndef handler():\n    return 1")
    error = _error(run_kagg("convert", str(nb)))
    assert f"symbolic links to files outside it (pkg/a.py -> {outside}/secret.py, pkg/sub -> {outside})" in error


def test_module_linked_out_is_refused(folder, outside):
    (folder / "helpers.py").symlink_to(outside / "secret.py")
    nb = write(folder / "nb.ipynb", "import helpers\ndef handler():\n    return helpers.KEY")
    assert f"(helpers.py -> {outside}/secret.py)" in _error(run_kagg("convert", str(nb)))


def test_package_folder_linked_out_is_refused(folder, outside):
    (outside / "__init__.py").write_text("")
    (folder / "pkg").symlink_to(outside)
    nb = write(folder / "nb.ipynb", "import pkg.secret\ndef handler():\n    return 1")
    assert f"(pkg -> {outside})" in _error(run_kagg("convert", str(nb)))


def test_data_file_or_folder_linked_out_is_refused(registry_path, folder, outside):
    (folder / "train.csv").symlink_to(outside / "table.csv")
    nb = write(folder / "nb.ipynb", "import pandas as pd\nT = pd.read_csv('train.csv')\ndef handler():\n    return 1")
    assert f"(train.csv -> {outside}/table.csv)" in _error(run_kagg("deploy", str(nb), "--dry-run"))
    assert f"(train.csv -> {outside}/table.csv)" in _error(run_kagg("convert", str(nb)))
    (folder / "train.csv").unlink()
    (folder / "data").symlink_to(outside)
    nb = write(folder / "nb.ipynb", "import pandas as pd\nT = pd.read_csv('data/table.csv')\ndef handler():\n    return 1")
    assert f"(data -> {outside})" in _error(run_kagg("convert", str(nb)))
    plain = write(folder / "plain.ipynb", "def handler():\n    return 1")
    assert f"(data -> {outside})" in _error(run_kagg("convert", str(plain), "--include", "data"))
    # left out with --exclude, nothing is read through it
    res = run_kagg("convert", str(nb), "--exclude", "data", "--json")
    assert res.returncode == 0, res.stderr
    assert not registry_path.exists()


def test_links_inside_the_folder_are_followed(folder):
    (folder / "real").mkdir()
    (folder / "real" / "__init__.py").write_text("")
    (folder / "real" / "impl.py").write_text("X = 7\n")
    (folder / "pkg").mkdir()
    (folder / "pkg" / "__init__.py").write_text("")
    (folder / "pkg" / "impl.py").symlink_to(folder / "real" / "impl.py")
    (folder / "pkg" / "loop").symlink_to("..")  # back up the tree: not walked twice, no endless walk
    (folder / "table.csv").write_text("a\n1\n")
    (folder / "alias.csv").symlink_to("table.csv")
    nb = write(folder / "nb.ipynb", "from pkg.impl import X\nT = open('alias.csv').read()\ndef handler():\n    return X")
    res = run_kagg("convert", str(nb), "--json", "-o", str(folder.parent / "out"))
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["local_files"] == ["alias.csv", "pkg/__init__.py", "pkg/impl.py"]
    out = folder.parent / "out"
    assert (out / "pkg" / "impl.py").read_text() == "X = 7\n" and not os.path.islink(out / "pkg" / "impl.py")
    assert (out / "alias.csv").read_text() == "a\n1\n"


def test_a_packages_non_module_file_linked_out_is_not_packaged_nor_refused(folder, outside):
    """Only a package's .py files travel as its module, so a data link inside it does not matter."""
    (folder / "pkg").mkdir()
    (folder / "pkg" / "__init__.py").write_text("X = 1\n")
    (folder / "pkg" / "table.csv").symlink_to(outside / "table.csv")
    nb = write(folder / "nb.ipynb", "import pkg\ndef handler():\n    return pkg.X")
    res = run_kagg("convert", str(nb), "--json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["local_files"] == ["pkg/__init__.py"]
