"""Atomic writes leave the permissions a plain write would (kagg.atomic.write_bytes_atomic).

An existing file keeps its mode (a notebook rewritten by ``kagg preprocess -o`` stays 0644,
or 0640); a new file gets ``0666 & ~umask``; a caller that asks for a mode (a file holding
secrets: 0600) gets exactly that.
"""

from __future__ import annotations

import json
import os
import stat
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest

from conftest import run_kagg, serve_folder
from kagg.atomic import write_bytes_atomic
from notebooks import notebook


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@contextmanager
def umask(value: int) -> Iterator[None]:
    """The process umask (inherited by the ``kagg`` subprocesses the test starts)."""
    old = os.umask(value)
    try:
        yield
    finally:
        os.umask(old)


@pytest.fixture
def nb(tmp_path: Path) -> Path:
    path = tmp_path / "nb.ipynb"
    path.write_text(json.dumps(notebook("def handler():\n    return 1")))
    return path


@pytest.mark.parametrize("existing", [0o644, 0o640, 0o600, 0o664])
def test_preprocess_output_keeps_the_mode_of_the_file_it_replaces(nb, tmp_path, existing):
    out = tmp_path / "clean.ipynb"
    out.write_text("{}")
    out.chmod(existing)
    with umask(0o022):
        res = run_kagg("preprocess", str(nb), "--strip-outputs", "-o", str(out))
    assert res.returncode == 0, res.stderr
    assert "".join(json.loads(out.read_text())["cells"][0]["source"]).startswith("def handler")
    assert mode_of(out) == existing


@pytest.mark.parametrize("mask, expected", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600), (0o027, 0o640)])
def test_preprocess_new_output_gets_the_umask_default(nb, tmp_path, mask, expected):
    out = tmp_path / "new" / "clean.ipynb"
    with umask(mask):
        res = run_kagg("preprocess", str(nb), "--clean-metadata", "-o", str(out))
    assert res.returncode == 0, res.stderr
    assert mode_of(out) == expected


def test_batch_download_writes_files_with_the_umask_default(tmp_path, registry_path, monkeypatch):
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    served = tmp_path / "served"
    served.mkdir()
    (served / "remote.ipynb").write_text(json.dumps(notebook("def handler():\n    return 1")))

    with serve_folder(served) as base:
        (tmp_path / "urls.txt").write_text(f"{base}/remote.ipynb\n")
        with umask(0o022):
            res = run_kagg("batch", "urls.txt", "--operation", "download", "-o", "dl", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert mode_of(tmp_path / "dl" / "remote.ipynb") == 0o644


def test_an_explicit_mode_is_set_exactly(tmp_path):
    path = tmp_path / "secret.env"
    path.write_text("old")
    path.chmod(0o644)
    write_bytes_atomic(path, b"TOKEN=x\n", mode=0o600)
    assert mode_of(path) == 0o600 and path.read_bytes() == b"TOKEN=x\n"
    with umask(0o077):
        write_bytes_atomic(tmp_path / "shared.txt", b"x", mode=0o640)
    assert mode_of(tmp_path / "shared.txt") == 0o640


def test_no_temporary_file_is_left_behind(tmp_path):
    path = tmp_path / "state.json"
    for i in range(3):
        write_bytes_atomic(path, str(i).encode(), durable_rename=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"] and path.read_text() == "2"
