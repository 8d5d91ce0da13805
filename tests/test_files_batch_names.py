"""``kagg batch --operation convert|download -o DIR`` writes only inside DIR.

An item's name becomes a folder (convert) or a file name (download) under ``-o DIR``: a name
that is not one plain path component (``../../x``, ``/tmp/x``, ``..``) is refused with the
list's usual one-line problem naming the row, before anything is written; and the write
itself refuses a path that resolves outside DIR (a symlink inside it pointing elsewhere).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import run_kagg, serve_folder
from notebooks import notebook

HANDLER = "def handler(x: int = 1):\n    return {'x': x}"


@pytest.fixture
def work(tmp_path: Path, registry_path: Path) -> Path:
    """tmp/work with a notebook in it; the tests look for strays in tmp (the parent)."""
    folder = tmp_path / "work"
    folder.mkdir()
    (folder / "nb.ipynb").write_text(json.dumps(notebook(HANDLER)))
    return folder


@pytest.fixture
def served(tmp_path: Path, monkeypatch):
    """An HTTP server on 127.0.0.1 serving tmp/served/remote.ipynb; yields its base URL."""
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    root = tmp_path / "served"
    root.mkdir()
    (root / "remote.ipynb").write_text(json.dumps(notebook(HANDLER)))

    with serve_folder(root) as base:
        yield base


def everything(root: Path) -> set[str]:
    """Every path under ``root`` but the registry's state folder (its batch lock)."""
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if ".kagg" not in p.relative_to(root).parts}


def refused(res, row: str, name: str) -> None:
    assert res.returncode == 2, (res.stdout, res.stderr)
    lines = res.stderr.strip().splitlines()
    assert lines[-1] == "Error: list.csv has 1 problem (listed above); nothing was done", res.stderr
    problem = next(ln for ln in lines if ln.startswith("list.csv:"))
    assert problem.startswith(f"list.csv:{row}: the name {name!r} cannot be used"), problem
    assert "Traceback" not in res.stderr


@pytest.mark.parametrize("name", ["../../escaped", "../escaped", "ABSOLUTE", "..", "a/b", "sub\\..\\x"])
def test_convert_refuses_a_name_that_is_not_one_path_component(work, tmp_path, name):
    name = str(tmp_path / "escaped") if name == "ABSOLUTE" else name
    before = everything(tmp_path)
    (work / "list.csv").write_text(f"notebook,name\nnb.ipynb,{name}\n")
    res = run_kagg("batch", "list.csv", "--operation", "convert", "-o", str(work / "out"), cwd=work)
    refused(res, "2", name)
    assert everything(tmp_path) == before | {"work/list.csv"}


def test_convert_still_writes_plain_names(work):
    (work / "list.csv").write_text("notebook,name\nnb.ipynb,plain-name.v2\nnb.ipynb,\n")
    res = run_kagg("batch", "list.csv", "--operation", "convert", "-o", str(work / "out"), cwd=work)
    assert res.returncode == 0, res.stderr
    assert json.loads((work / "out" / "plain-name.v2" / "kagg.json").read_text())["name"] == "plain-name.v2"
    assert (work / "out" / "nb" / "kagg.json").is_file()


def test_convert_refuses_a_folder_that_links_outside(work, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (work / "out").mkdir()
    (work / "out" / "linked").symlink_to(elsewhere, target_is_directory=True)
    (work / "list.csv").write_text("notebook,name\nnb.ipynb,linked\n")
    res = run_kagg("batch", "list.csv", "--operation", "convert", "-o", str(work / "out"), "--json", cwd=work)
    assert res.returncode == 1, (res.stdout, res.stderr)
    item = json.loads(res.stdout)["items"][0]
    assert item["status"] == "failed" and "outside" in item["error"] and item["attempts"] == 1
    assert list(elsewhere.iterdir()) == []


@pytest.mark.parametrize("name", ["../../escaped", "../escaped", "ABSOLUTE"])
def test_download_refuses_a_name_that_is_not_one_path_component(work, tmp_path, served, name):
    name = str(tmp_path / "escaped") if name == "ABSOLUTE" else name
    before = everything(tmp_path)
    (work / "list.csv").write_text(f"notebook,name\n{served}/remote.ipynb,{name}\n")
    res = run_kagg("batch", "list.csv", "--operation", "download", "-o", str(work / "dl"), cwd=work)
    refused(res, "2", name)
    assert everything(tmp_path) == before | {"work/list.csv"}


def test_download_refuses_a_url_whose_last_part_is_dot_dot(work, tmp_path, served):
    (work / "list.csv").write_text(f"notebook\n{served}/remote.ipynb\n{served}/nbs/..\n")
    res = run_kagg("batch", "list.csv", "--operation", "download", "-o", str(work / "dl"), cwd=work)
    refused(res, "3", "..")
    assert not (work / "dl").exists()


def test_download_writes_plain_names_and_refuses_a_file_that_links_outside(work, tmp_path, served):
    outside = tmp_path / "outside.ipynb"
    outside.write_text("{}")
    (work / "dl").mkdir()
    (work / "dl" / "linked.ipynb").symlink_to(outside)
    (work / "list.csv").write_text(f"notebook,name\n{served}/remote.ipynb,fine\n{served}/remote.ipynb,linked\n")
    res = run_kagg("batch", "list.csv", "--operation", "download", "-o", str(work / "dl"), "--json", cwd=work)
    assert res.returncode == 1, (res.stdout, res.stderr)
    items = {i["name"]: i for i in json.loads(res.stdout)["items"]}
    assert items["fine"]["status"] == "ok" and (work / "dl" / "fine.ipynb").is_file()
    assert items["linked"]["status"] == "failed" and "outside" in items["linked"]["error"]
    assert outside.read_text() == "{}"


@pytest.mark.parametrize("name, ok", [
    ("model", True), ("my-model_2.v1", True), ("résumé", True), ("nb.ipynb?raw=true", True),
    ("", False), (".", False), ("..", False), ("a/b", False), ("a\\b", False), ("C:x", False),
    ("/abs", False), ("tab\there", False), (" padded ", False), ("x" * 256, False),
])
def test_component_problem(name, ok):
    from kagg.atomic import component_problem

    assert (component_problem(name) is None) == ok
