"""Dependencies installed for Lambda's platform (kagg/providers/aws/deps.py).

One test installs a real wheel (six) through pip, as a user's build would; the
sdist paths use packages the test builds itself, offered with ``--no-index
--find-links`` so that no package index is asked about made-up names.
"""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from aws_fixtures import FAST, deps_cache, hello_function  # noqa: F401
from kagg.errors import BadInput
from kagg.model import DeployOptions
from kagg.packaging.builder import bytecode_matches
from kagg.providers.aws import deps as aws_deps
from kagg.providers.aws import AWSProvider
from kagg.providers.aws.deps import Platform, package_sizes, vendor

USES_SIX = '''\
import six


def handler():
    return {"six": six.__version__, "where": six.__file__}
'''


def lambda_get(root: Path, path: str = "/") -> dict:
    """Call ``lambda_function.handler`` with a payload-2.0 GET in a subprocess that sees only ``root``."""
    event = {"version": "2.0", "routeKey": "$default", "rawPath": path, "rawQueryString": "",
             "headers": {"host": "x.lambda-url.us-east-1.on.aws"},
             "requestContext": {"http": {"method": "GET", "path": path, "protocol": "HTTP/1.1",
                                         "sourceIp": "127.0.0.1", "userAgent": "t"},
                                "requestId": "r", "accountId": "123456789012", "timeEpoch": 0},
             "isBase64Encoded": False}
    code = ("import json, sys, lambda_function; "
            "print(json.dumps(lambda_function.handler(json.loads(sys.argv[1]), None)))")
    proc = subprocess.run([sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {str(root)!r}); " + code,
                           json.dumps(event)], capture_output=True, text=True, cwd=root, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_requirement_is_vendored_for_lambda_and_cached(deps_cache, tmp_path, monkeypatch):
    monkeypatch.setenv("KAGG_CACHE_DIR", str(deps_cache))
    provider = AWSProvider(state_dir=tmp_path / "state")
    function = hello_function("six-user", source=USES_SIX, requirements=["six==1.17.0"])
    artifact = provider.build(function, DeployOptions(extra=FAST))
    assert "six.py" in artifact.files and "six-1.17.0.dist-info/METADATA" in artifact.files
    assert not any(f.startswith("bin/") for f in artifact.files)
    pycs = [f for f in artifact.files if f.endswith(".pyc")]  # only kagg's, for the runtime's Python
    assert all("__pycache__/" in f and f.endswith(f".{sys.implementation.cache_tag}.pyc") for f in pycs)
    assert bool(pycs) == bytecode_matches("3.12")
    again = vendor(["six==1.17.0"], Platform(), cache_root=deps_cache)
    assert again.cached and again.packages[0][0] == "six"
    rebuilt = AWSProvider(state_dir=tmp_path / "other").build(function, DeployOptions(extra=FAST))
    assert rebuilt.sha256 == artifact.sha256  # deterministic, vendored files included
    unpacked = tmp_path / "unpacked"
    zipfile.ZipFile(artifact.path).extractall(unpacked)
    response = lambda_get(unpacked)
    assert response["statusCode"] == 200, response
    body = json.loads(response["body"])
    assert body["six"] == "1.17.0" and body["where"].startswith(str(unpacked))


def test_too_big_unzipped_is_refused_naming_the_largest_packages(deps_cache, tmp_path, monkeypatch):
    monkeypatch.setenv("KAGG_CACHE_DIR", str(deps_cache))
    provider = AWSProvider(state_dir=tmp_path)
    function = hello_function("big", source=USES_SIX, requirements=["six==1.17.0"])
    with pytest.raises(BadInput) as info:
        provider.build(function, DeployOptions(extra={"max_unzipped_bytes": 20_000}))
    message = str(info.value)
    assert "over the 19.5 kB limit" in message and "largest packages: six" in message
    assert not list((tmp_path / "artifacts").rglob("*.zip"))  # refused before the zip was written


# -- sdists, with packages made here --------------------------------------------------------------------
SETUP_PURE = """\
from setuptools import setup
setup(name="{name}", version="0.1", py_modules=["{name}"])
"""
SETUP_BINARY = """\
from setuptools import setup
from setuptools.dist import Distribution


class BinaryDistribution(Distribution):
    def has_ext_modules(self):
        return True  # a platform wheel, as a package with C code would give


setup(name="{name}", version="0.1", py_modules=["{name}"], distclass=BinaryDistribution)
"""


def make_sdist(where: Path, name: str, setup_py: str) -> Path:
    src = where / f"src-{name}"
    src.mkdir(parents=True)
    (src / "setup.py").write_text(setup_py.format(name=name))
    (src / f"{name}.py").write_text("VALUE = 42\n")
    dist = where / "dist"
    subprocess.run([sys.executable, "setup.py", "-q", "sdist", "-d", str(dist)], cwd=src, check=True,
                   capture_output=True)
    return dist


def offline(dist: Path) -> list[str]:
    return ["--no-index", "--find-links", str(dist), "--no-build-isolation"]


def test_pure_python_sdist_is_built_and_vendored(tmp_path):
    dist = make_sdist(tmp_path, "kaggpuresdist", SETUP_PURE)
    result = vendor(["kaggpuresdist==0.1"], Platform(arch="arm64"), cache_root=tmp_path / "cache",
                    pip_args=offline(dist))
    assert (result.path / "kaggpuresdist.py").read_text() == "VALUE = 42\n"
    assert [name for name, _ in result.packages] == ["kaggpuresdist"]


def test_sdist_that_is_not_pure_python_is_refused_by_name(tmp_path):
    dist = make_sdist(tmp_path, "kaggnativesdist", SETUP_BINARY)
    with pytest.raises(BadInput, match=r"kaggnativesdist==0.1 has no wheel for Lambda python3.12 on "
                                       r"x86_64 .* not pure Python"):
        vendor(["kaggnativesdist==0.1"], Platform(), cache_root=tmp_path / "cache", pip_args=offline(dist))


def test_package_that_does_not_exist_is_refused_by_name(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(BadInput, match=r"kaggabsentpkg==1.0 has no wheel for Lambda"):
        vendor(["kaggabsentpkg==1.0"], Platform(), cache_root=tmp_path / "cache",
               pip_args=offline(tmp_path / "empty"))


# -- what pip is asked ----------------------------------------------------------------------------------
def test_pip_is_asked_for_lambdas_platform(tmp_path, monkeypatch):
    calls: list[tuple[str, ...]] = []

    def fake_pip(*args: str) -> subprocess.CompletedProcess:
        calls.append(args)
        target = Path(args[args.index("--target") + 1])
        (target / "pkg").mkdir(parents=True)
        (target / "pkg" / "__init__.py").write_text("")
        (target / "bin").mkdir()
        (target / "bin" / "tool").write_text("#!/usr/bin/python3.11\n")
        return subprocess.CompletedProcess(args, 0, "", "")

    monkeypatch.setattr(aws_deps, "_pip", fake_pip)
    result = vendor(["pkg==1"], Platform("python3.13", "arm64"), cache_root=tmp_path)
    args = calls[0]
    assert args[0] == "install" and "--only-binary=:all:" in args and "--no-compile" in args
    assert args[args.index("--python-version") + 1] == "3.13" and args[args.index("--abi") + 1] == "cp313"
    assert args[args.index("--implementation") + 1] == "cp"
    platforms = [args[i + 1] for i, a in enumerate(args) if a == "--platform"]
    assert platforms[0] == "manylinux_2_34_aarch64" and "manylinux_2_28_aarch64" in platforms
    assert "manylinux2014_aarch64" in platforms and not any("x86_64" in p for p in platforms)
    assert not (result.path / "bin").exists()  # scripts carry this machine's interpreter path
    vendor(["pkg==1"], Platform("python3.13", "arm64"), cache_root=tmp_path)
    assert len(calls) == 1  # the second time comes from the cache
    vendor(["pkg==1"], Platform("python3.13", "x86_64"), cache_root=tmp_path)
    assert len(calls) == 2  # another architecture is another tree


def test_x86_64_accepts_old_manylinux_tags():
    tags = Platform().pip_platforms()
    assert tags[0] == "manylinux_2_34_x86_64" and "manylinux2014_x86_64" in tags and "manylinux1_x86_64" in tags


def test_package_sizes_follow_dist_info_records(tmp_path):
    (tmp_path / "big").mkdir()
    (tmp_path / "big" / "data.bin").write_bytes(b"x" * 5000)
    (tmp_path / "big.libs").mkdir()
    (tmp_path / "big.libs" / "lib.so").write_bytes(b"x" * 3000)
    info = tmp_path / "big_pkg-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: big-pkg\nVersion: 1.0\n")
    (info / "RECORD").write_text("big/data.bin,,\nbig.libs/lib.so,,\nbig_pkg-1.0.dist-info/METADATA,,\n"
                                 "big_pkg-1.0.dist-info/RECORD,,\n")
    (tmp_path / "loose.py").write_text("y" * 100)
    sizes = dict(package_sizes(tmp_path))
    assert sizes["big-pkg"] >= 8000 and sizes["loose.py"] == 100
    assert aws_deps.largest(package_sizes(tmp_path)).startswith("big-pkg 8.")
