"""The .pyc in the Lambda zip (kagg/packaging/builder.py, used by the AWS provider's build).

Lambda's code folder is read-only, so a zip without bytecode compiles every
module at every cold start. When the building interpreter is the runtime's
Python, the zip carries unchecked-hash .pyc; they must keep the zip
byte-identical across builds and processes, and be what Python loads.
"""

from __future__ import annotations

import importlib.util
import json
import marshal
import os
import py_compile
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from aws_fixtures import FAST, hello_function
from conftest import ROOT
from kagg.model import DeployOptions
from kagg.packaging.builder import build_artifact, bytecode_matches, compile_pyc, pyc_path
from kagg.providers.aws import AWSProvider
from kagg.providers.aws.deps import RUNTIMES

TAG = sys.implementation.cache_tag
HERE = "%d.%d" % sys.version_info[:2]
OWN_MODULES = ("kagg_notebook.py", "kagg_runtime.py", "lambda_function.py")


def build(tmp_path: Path, out: str = "out", **kwargs):
    return build_artifact(hello_function("greet"), provider="aws", shims=("lambda",), out_dir=tmp_path / out,
                          bytecode=True, bytecode_cache=tmp_path / "pyc-cache", **kwargs)


def names(artifact) -> list[str]:
    return zipfile.ZipFile(artifact.path).namelist()


def test_each_module_gets_its_pyc(tmp_path):
    listed = names(build(tmp_path))
    for module in OWN_MODULES:
        assert f"__pycache__/{module[:-3]}.{TAG}.pyc" in listed
    assert f"__pycache__/kagg_request.{TAG}.pyc" not in listed  # script mode's cells are compiled by the runtime
    plain = build_artifact(hello_function("greet"), provider="aws", shims=("lambda",), out_dir=tmp_path / "plain")
    assert not any(n.endswith(".pyc") for n in names(plain))


def test_two_builds_are_byte_identical_in_one_process_and_across_processes(tmp_path):
    first = build(tmp_path, "one")
    second = build(tmp_path, "two")  # from the pyc cache
    fresh = build_artifact(hello_function("greet"), provider="aws", shims=("lambda",), out_dir=tmp_path / "three",
                           bytecode=True)  # compiled again, in a process that has compiled them before
    assert first.path.read_bytes() == second.path.read_bytes() == fresh.path.read_bytes()
    code = ("import sys, json, boto3, botocore.session; sys.path[:0] = [sys.argv[1], sys.argv[2]]; "
            "from aws_fixtures import hello_function; from kagg.packaging.builder import build_artifact; "
            "print(build_artifact(hello_function('greet'), provider='aws', shims=('lambda',), "
            "out_dir=sys.argv[3], bytecode=True).sha256)")
    for seed in ("0", "12345"):  # another process, other hashes, other modules loaded
        out = subprocess.run([sys.executable, "-c", code, str(ROOT), str(ROOT / "tests"), str(tmp_path / seed)],
                             capture_output=True, text=True, env={**os.environ, "PYTHONHASHSEED": seed}, timeout=120)
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == first.sha256


def test_pyc_is_what_py_compile_writes_up_to_the_marshal_format(tmp_path):
    source = (ROOT / "kagg" / "packaging" / "runtime" / "kagg_runtime.py").read_bytes()
    (tmp_path / "kagg_runtime.py").write_bytes(source)
    reference = py_compile.compile(str(tmp_path / "kagg_runtime.py"), cfile=str(tmp_path / "ref.pyc"),
                                   dfile="kagg_runtime.py", doraise=True,
                                   invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
    ours = compile_pyc(source, "kagg_runtime.py")
    theirs = Path(reference).read_bytes()
    assert ours[:16] == theirs[:16]  # magic, "unchecked hash" flags, the source's hash
    assert marshal.loads(ours[16:]) == marshal.loads(theirs[16:])
    assert marshal.loads(ours[16:]).co_filename == "kagg_runtime.py"  # not this machine's path
    assert compile_pyc(b"def broken(:\n", "x.py") is None


def lambda_health(root: Path) -> subprocess.CompletedProcess:
    """``GET /health`` through ``lambda_function.handler`` in a ``-B`` process that sees only ``root``."""
    event = {"version": "2.0", "rawPath": "/health", "rawQueryString": "", "headers": {},
             "requestContext": {"http": {"method": "GET", "path": "/health"}}}
    code = ("import json, sys; sys.path.insert(0, sys.argv[1]); import lambda_function, kagg_runtime; "
            "r = lambda_function.handler(json.loads(sys.argv[2]), None); "
            "print(r['statusCode'], kagg_runtime.__spec__.cached)")
    return subprocess.run([sys.executable, "-I", "-B", "-c", code, str(root), json.dumps(event)],
                          capture_output=True, text=True, cwd=root, timeout=60)


def test_python_loads_the_shipped_pyc(tmp_path):
    """The sources are replaced by code that cannot run: the modules still load, from the .pyc alone."""
    root = tmp_path / "task"
    zipfile.ZipFile(build(tmp_path).path).extractall(root)
    for module in OWN_MODULES:
        (root / module).write_text("raise SystemExit('compiled from source')\n")
    before = sorted(root.rglob("*"))
    result = lambda_health(root)
    assert result.returncode == 0, result.stderr
    status, cached = result.stdout.split()
    assert status == "200" and cached == str(root / pyc_path("kagg_runtime.py"))
    assert sorted(root.rglob("*")) == before  # -B: nothing was written


def test_vendored_modules_get_pyc_unless_over_the_size_budget(tmp_path):
    vendor = tmp_path / "site"
    (vendor / "pkg").mkdir(parents=True)
    (vendor / "pkg" / "__init__.py").write_text("VALUE = 42\n")
    (vendor / "pkg" / "__pycache__").mkdir()
    (vendor / "pkg" / "__pycache__" / "__init__.cpython-311.pyc").write_bytes(b"stale, with an mtime")
    with zipfile.ZipFile(build(tmp_path, "a", vendor_dir=vendor).path) as zf:
        shipped = zf.read(f"pkg/__pycache__/__init__.{TAG}.pyc")
    assert shipped == compile_pyc(b"VALUE = 42\n", "pkg/__init__.py")  # kagg's, not the tree's stale one
    own_only = build(tmp_path, "b", vendor_dir=vendor, bytecode_budget=1)
    listed = names(own_only)
    assert not any(n.startswith("pkg/__pycache__") for n in listed)
    assert f"__pycache__/kagg_runtime.{TAG}.pyc" in listed  # kagg's own are always kept


@pytest.mark.parametrize("runtime", sorted(RUNTIMES))
def test_the_aws_artifact_has_pyc_only_when_this_python_is_the_runtime(tmp_path, runtime):
    provider = AWSProvider(state_dir=tmp_path / ".kagg")
    opts = DeployOptions(runtime=runtime, extra={**FAST, "cache_dir": str(tmp_path / "cache")})
    artifact = provider.build(hello_function("greet"), opts)
    has_pyc = any(n.endswith(f".{TAG}.pyc") for n in names(artifact))
    assert has_pyc == bytecode_matches(RUNTIMES[runtime]) == (RUNTIMES[runtime] == HERE)
    if has_pyc:
        assert provider.build(hello_function("greet"), opts).sha256 == artifact.sha256


def test_bytecode_matches_only_this_interpreter():
    assert bytecode_matches(HERE) == (sys.implementation.name == "cpython")
    assert not bytecode_matches("3.%d" % (sys.version_info[1] + 1))
    assert importlib.util.MAGIC_NUMBER == compile_pyc(b"", "x.py")[:4]
