"""The import -> distribution cache of requirements inference (kagg.notebook.requirements).

Answers are kept in ``$KAGG_CACHE_DIR/distributions-<env>.json`` and used while the
environment is unchanged; installing, upgrading or removing a distribution on ``sys.path``
changes the stamp and starts afresh. A cache that cannot be written, or that does not
parse, is no error.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
from pathlib import Path

import pytest

from conftest import run_kagg
from notebooks import write

HANDLER = "def handler():\n    return 1"


def convert(nb: Path, cache: str, extra_path: Path | None = None) -> dict:
    env = {"KAGG_CACHE_DIR": cache}
    if extra_path is not None:
        env["PYTHONPATH"] = str(extra_path) + os.pathsep + os.environ.get("PYTHONPATH", "")
    res = run_kagg("convert", str(nb), "--json", env=env)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def cache_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("distributions-*.json")) if folder.is_dir() else []


def install_fake(site: Path, name: str = "fake_kagg_pkg", version: str = "1.0") -> None:
    """A distribution as pip leaves it: the package and its .dist-info."""
    (site / name).mkdir(parents=True)
    (site / name / "__init__.py").write_text("")
    info = site / f"{name}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name.replace('_', '-')}\nVersion: {version}\n")
    (info / "top_level.txt").write_text(name + "\n")
    (info / "RECORD").write_text(f"{name}/__init__.py,,\n{info.name}/METADATA,,\n")


def test_answers_are_cached_and_used(tmp_path):
    nb = write(tmp_path / "nb.ipynb", "import yaml\nimport click\n" + HANDLER)
    cache = tmp_path / "cache"
    first = convert(nb, str(cache))
    expected = sorted([f"click=={importlib.metadata.version('click')}",
                       f"PyYAML=={importlib.metadata.version('PyYAML')}"], key=str.lower)
    assert first["requirements"] == expected
    [path] = cache_files(cache)
    doc = json.loads(path.read_text())
    assert doc["distributions"]["yaml"] == ["PyYAML"] and doc["versions"]["PyYAML"]

    doc["versions"]["PyYAML"] = "0.0.0+from-the-cache"  # only the cache can say this
    path.write_text(json.dumps(doc))
    again = convert(nb, str(cache))
    assert "PyYAML==0.0.0+from-the-cache" in again["requirements"]


def test_installing_a_distribution_starts_afresh(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    nb = write(tmp_path / "nb.ipynb", "import fake_kagg_pkg\n" + HANDLER)
    cache = tmp_path / "cache"
    before = convert(nb, str(cache), site)
    assert before["requirements"] == []
    assert any("import `fake_kagg_pkg` is not installed here" in n for n in before["notes"])

    install_fake(site)
    after = convert(nb, str(cache), site)
    assert after["requirements"] == ["fake-kagg-pkg==1.0"], after

    (site / "fake_kagg_pkg-1.0.dist-info").rename(site / "fake_kagg_pkg-2.0.dist-info")  # an upgrade
    meta = site / "fake_kagg_pkg-2.0.dist-info" / "METADATA"
    meta.write_text(meta.read_text().replace("Version: 1.0", "Version: 2.0"))
    assert convert(nb, str(cache), site)["requirements"] == ["fake-kagg-pkg==2.0"]


def test_without_kagg_cache_dir_the_xdg_cache_folder_is_used(tmp_path, monkeypatch):
    monkeypatch.delenv("KAGG_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    nb = write(tmp_path / "nb.ipynb", "import click\n" + HANDLER)
    res = run_kagg("convert", str(nb), "--json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["requirements"] == [f"click=={importlib.metadata.version('click')}"]
    assert len(cache_files(tmp_path / "xdg" / "kagg")) == 1


def test_a_cache_that_cannot_be_written_is_no_error(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    nb = write(tmp_path / "nb.ipynb", "import click\n" + HANDLER)
    assert convert(nb, str(blocker / "cache"))["requirements"] == [f"click=={importlib.metadata.version('click')}"]


@pytest.mark.parametrize("garbage", ["", "{", "[]", '{"version": 1, "stamp": 3}'])
def test_a_damaged_cache_is_ignored(tmp_path, garbage):
    nb = write(tmp_path / "nb.ipynb", "import click\n" + HANDLER)
    cache = tmp_path / "cache"
    convert(nb, str(cache))
    [path] = cache_files(cache)
    path.write_text(garbage)
    assert convert(nb, str(cache))["requirements"] == [f"click=={importlib.metadata.version('click')}"]
    assert json.loads(path.read_text())["distributions"]["click"] == ["click"]  # rewritten whole
