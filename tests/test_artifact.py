"""The deterministic artifact: same inputs, same bytes; the layout of docs/architecture.md, "Artifact"."""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import pytest

import kagg
from functions import handler_function, script_function
from kagg.packaging.builder import (SHIMS, artifact_files, build_artifact, runtime_source,
                                    write_tree)


def build(tmp_path: Path, function=None, provider="gcf", shims=("gcf",), out="out", vendor=None):
    return build_artifact(function or handler_function(), provider=provider, shims=shims,
                          out_dir=tmp_path / out, vendor_dir=vendor)


def test_layout_handler_mode(tmp_path):
    fn = handler_function()
    art = build(tmp_path, fn)
    with zipfile.ZipFile(art.path) as zf:
        names = zf.namelist()
        assert names == sorted(names) == art.files
        assert names == ["kagg.json", "kagg_notebook.py", "kagg_runtime.py", "main.py", "requirements.txt"]
        assert zf.read("kagg_notebook.py").decode() == fn.module_source
        assert json.loads(zf.read("kagg.json")) == fn.manifest(kagg.__version__)
        assert zf.read("kagg_runtime.py") == runtime_source()
        assert zf.read("requirements.txt") == b"numpy\npandas\n"
        for info in zf.infolist():
            assert info.date_time == (1980, 1, 1, 0, 0, 0)
            assert info.external_attr >> 16 == 0o100644
            assert info.compress_type == zipfile.ZIP_DEFLATED
            assert info.extra == b"" and info.create_system == 3
    assert art.provider == "gcf" and art.function is fn
    assert art.path.name == f"{art.sha256}.zip" and art.size == art.path.stat().st_size
    assert art.unzipped_size == sum(len(d) for d in artifact_files(fn, ["gcf"]).values())


def test_manifest_keys_sorted(tmp_path):
    text = artifact_files(handler_function(), ["gcf"])["kagg.json"].decode()
    data = json.loads(text)
    assert text == json.dumps(data, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def test_layout_script_mode_and_shims(tmp_path):
    files = artifact_files(script_function(), ["lambda", "azure"])
    assert set(files) == {"kagg.json", "kagg_notebook.py", "kagg_request.py", "kagg_runtime.py",
                          "lambda_function.py", "function_app.py", "host.json", "requirements.txt"}
    assert files["kagg_request.py"].decode() == script_function().request_source
    assert files["requirements.txt"] == b"azure-functions\n"  # the azure shim's own requirement
    host = json.loads(files["host.json"])
    assert host["version"] == "2.0" and host["extensions"]["http"]["routePrefix"] == ""
    assert "kagg_request.py" not in artifact_files(handler_function(), ["gcf"])


def test_unknown_shim_is_refused():
    with pytest.raises(ValueError, match="unknown shim"):
        artifact_files(handler_function(), ["heroku"])
    assert set(SHIMS) == {"gcf", "lambda", "azure"}


def test_builds_are_byte_identical(tmp_path):
    one = build(tmp_path, out="a")
    two = build(tmp_path, out="b")
    assert one.sha256 == two.sha256
    assert one.path.read_bytes() == two.path.read_bytes()


def test_rebuild_reuses_the_file(tmp_path):
    one = build(tmp_path)
    mtime = one.path.stat().st_mtime_ns
    two = build(tmp_path)
    assert two.path == one.path and two.path.stat().st_mtime_ns == mtime
    assert [p.name for p in (tmp_path / "out").iterdir()] == [one.path.name]  # no temp files left


def test_mtimes_and_modes_do_not_matter(tmp_path):
    vendor = tmp_path / "vendor"
    (vendor / "pkg" / "__pycache__").mkdir(parents=True)
    (vendor / "pkg" / "__init__.py").write_text("VALUE = 1\n")
    (vendor / "pkg" / "data.bin").write_bytes(bytes(range(256)))
    (vendor / "pkg" / "__pycache__" / "__init__.cpython-311.pyc").write_bytes(b"cache")
    (vendor / "top.py").write_text("")
    first = build(tmp_path, out="a", vendor=vendor)
    for path in vendor.rglob("*"):
        os.utime(path, (1_000_000_000, 1_000_000_000))
    os.chmod(vendor / "top.py", 0o755)
    (vendor / "pkg" / "__pycache__" / "__init__.cpython-311.pyc").write_bytes(b"other cache")
    second = build(tmp_path, out="b", vendor=vendor)
    assert first.path.read_bytes() == second.path.read_bytes()
    assert "pkg/__init__.py" in first.files and "pkg/data.bin" in first.files and "top.py" in first.files
    assert not any("__pycache__" in f for f in first.files)
    with zipfile.ZipFile(first.path) as zf:
        assert zf.read("pkg/data.bin") == bytes(range(256))


def test_vendored_file_cannot_replace_kagg_files(tmp_path):
    vendor = tmp_path / "vendor"
    vendor.mkdir()
    (vendor / "kagg_runtime.py").write_text("evil = True\n")
    with pytest.raises(ValueError, match="kagg_runtime.py"):
        build(tmp_path, vendor=vendor)


def test_different_inputs_differ(tmp_path):
    base = build(tmp_path)
    changed_code = handler_function()
    changed_code.module_source += "\n# changed\n"
    changed_reqs = handler_function()
    changed_reqs.requirements = ["numpy==2.0"]
    shas = {base.sha256, build(tmp_path, changed_code).sha256, build(tmp_path, changed_reqs).sha256,
            build(tmp_path, shims=("lambda",)).sha256, build(tmp_path, script_function()).sha256}
    assert len(shas) == 5


def test_write_tree_matches_zip(tmp_path):
    fn = script_function()
    written = write_tree(fn, ("azure",), tmp_path / "tree")
    art = build(tmp_path, fn, provider="azure", shims=("azure",))
    assert written == art.files
    with zipfile.ZipFile(art.path) as zf:
        for name in written:
            assert (tmp_path / "tree" / name).read_bytes() == zf.read(name)


def test_runtime_uses_only_the_standard_library():
    import ast
    import sys

    tree = ast.parse(runtime_source())
    modules = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
               for alias in node.names}
    modules |= {node.module.split(".")[0] for node in ast.walk(tree)
                if isinstance(node, ast.ImportFrom) and node.module and node.level == 0}
    # kagg_jobs: the artifact's own /jobs module beside it (tests/test_jobs_template.py checks it), imported lazily
    assert modules - {"__future__", "kagg_jobs"} <= set(sys.stdlib_module_names), modules


def test_builtin_shims_match_the_provider_classes():
    """``kagg convert`` reads the built-in providers' shims from a table: it must be their classes'."""
    from kagg.providers import BUILTIN_SHIMS, provider_class

    for name, shims in BUILTIN_SHIMS.items():
        assert tuple(provider_class(name).shims) == shims
