"""Install a notebook's requirements for Lambda's platform, not the machine kagg runs on.

After AWS Chalice's packager: pip is asked for manylinux wheels of the runtime's
Python (``--platform … --only-binary=:all: --python-version --implementation cp``),
so a Mac or a Python 3.11 laptop still produces a zip that imports on Lambda.
A requirement with no such wheel gets a second chance: its sdist is built into
a wheel here, and kept only if that wheel is pure Python (``py3-none-any``);
otherwise the build stops with an error naming the package. Installed trees are
cached by (requirements, runtime, arch), so a rebuild costs nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from email.parser import HeaderParser
from pathlib import Path
from typing import Optional, Sequence

from filelock import FileLock

from kagg.errors import BadInput, OperationFailed

#: bump when the layout of a cached tree changes, so old caches are not reused
CACHE_FORMAT = 1
RUNTIMES = {"python3.12": "3.12", "python3.13": "3.13"}
ARCHES = {"x86_64": "x86_64", "arm64": "aarch64"}
#: Lambda's python3.12 and python3.13 run on Amazon Linux 2023, glibc 2.34
LAMBDA_GLIBC_MINOR = 34

_NO_MATCH = re.compile(r"No matching distribution found for (\S+)")
_NO_VERSION = re.compile(r"Could not find a version that satisfies the requirement (\S+)")


@dataclass(frozen=True)
class Platform:
    """The Lambda platform a tree is built for."""

    runtime: str = "python3.12"
    arch: str = "x86_64"

    @property
    def python_version(self) -> str:
        return RUNTIMES[self.runtime]

    @property
    def abi(self) -> str:
        return "cp" + self.python_version.replace(".", "")

    @property
    def machine(self) -> str:
        return ARCHES[self.arch]

    def pip_platforms(self) -> list[str]:
        """Every manylinux tag Lambda's glibc accepts, newest first (pip does not expand them itself)."""
        m = self.machine
        tags = [f"manylinux_2_{minor}_{m}" for minor in range(LAMBDA_GLIBC_MINOR, 16, -1)]
        tags.append(f"manylinux2014_{m}")
        if m == "x86_64":
            tags += [f"manylinux_2_{minor}_{m}" for minor in range(16, 4, -1)]
            tags += [f"manylinux2010_{m}", f"manylinux1_{m}"]
        return tags

    def describe(self) -> str:
        return f"Lambda {self.runtime} on {self.arch} (manylinux, glibc 2.{LAMBDA_GLIBC_MINOR})"


@dataclass
class Vendored:
    """An installed dependency tree, ready to be copied into the artifact."""

    path: Path
    size: int  # bytes on disk, unzipped
    packages: list[tuple[str, int]] = field(default_factory=list)  # (distribution, bytes), largest first
    cached: bool = False


def default_cache_root() -> Path:
    """kagg's cache folder (:func:`kagg.cache.cache_dir`)."""
    from kagg.cache import cache_dir

    return cache_dir()


def cache_key(requirements: Sequence[str], platform: Platform, pip_args: Sequence[str] = ()) -> str:
    data = {"format": CACHE_FORMAT, "requirements": [r.strip() for r in requirements if r.strip()],
            "runtime": platform.runtime, "arch": platform.arch, "pip_args": list(pip_args)}
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:20]


def vendor(requirements: Sequence[str], platform: Platform, cache_root: Optional[Path] = None,
           pip_args: Sequence[str] = ()) -> Vendored:
    """The requirements installed for ``platform``, from the cache when they were built before."""
    reqs = [r.strip() for r in requirements if r.strip() and not r.strip().startswith("#")]
    root = Path(cache_root or default_cache_root()) / "aws-deps"
    root.mkdir(parents=True, exist_ok=True)
    key = cache_key(reqs, platform, pip_args)
    final = root / f"{platform.runtime}-{platform.arch}-{key}"
    with FileLock(str(final) + ".lock"):
        if (final / ".kagg-complete").exists():
            return _measure(final, cached=True)
        if final.exists():
            shutil.rmtree(final)  # left by a build that was killed
        tmp = Path(tempfile.mkdtemp(prefix=final.name + ".", dir=root))
        try:
            _install(reqs, platform, tmp / "site", root / "pure-wheels", list(pip_args))
            _tidy(tmp / "site")
            (tmp / "site" / ".kagg-complete").write_text(json.dumps(reqs) + "\n")
            os.replace(tmp / "site", final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return _measure(final, cached=False)


def _pip(*args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "pip", *args, "--disable-pip-version-check", "--no-input"]
    return subprocess.run(cmd, capture_output=True, text=True)


def _install(reqs: list[str], platform: Platform, target: Path, wheelhouse: Path, pip_args: list[str]) -> None:
    """``pip install --platform …`` into ``target``; sdists that build pure wheels are let in one by one."""
    req_file = target.parent / "requirements.txt"
    req_file.write_text("\n".join(reqs) + "\n")
    wheelhouse.mkdir(parents=True, exist_ok=True)
    platform_args = [arg for tag in platform.pip_platforms() for arg in ("--platform", tag)]
    tried: set[str] = set()
    while True:
        if target.exists():
            shutil.rmtree(target)
        proc = _pip("install", "--target", str(target), "--no-compile", "--no-warn-script-location",
                    "--only-binary=:all:", "--implementation", "cp", "--python-version",
                    platform.python_version, "--abi", platform.abi, *platform_args,
                    "--find-links", str(wheelhouse), *pip_args, "-r", str(req_file))
        if proc.returncode == 0:
            return
        missing = _missing_requirement(proc.stderr + proc.stdout)
        if missing is None:
            raise OperationFailed(f"pip could not install the requirements for {platform.describe()}: "
                                  f"{_last_error(proc)}")
        if missing in tried:
            raise BadInput(f"{missing} has no wheel for {platform.describe()}; pin a version that ships "
                           f"manylinux wheels or remove it from the requirements")
        tried.add(missing)
        _build_pure_wheel(missing, platform, wheelhouse, pip_args)


def _missing_requirement(output: str) -> Optional[str]:
    found = _NO_MATCH.search(output) or _NO_VERSION.search(output)
    return found.group(1) if found else None


def _last_error(proc: subprocess.CompletedProcess) -> str:
    lines = [ln.strip() for ln in (proc.stderr + "\n" + proc.stdout).splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("ERROR")]
    return (errors or lines or ["pip failed without a message"])[-1]


def _build_pure_wheel(requirement: str, platform: Platform, wheelhouse: Path, pip_args: list[str]) -> None:
    """Build ``requirement`` from its sdist; keep the wheel only if it is pure Python."""
    name = re.split(r"[\s<>=!~;\[(]", requirement, maxsplit=1)[0]
    with tempfile.TemporaryDirectory(prefix="kagg-sdist-") as out:
        proc = _pip("wheel", "--no-deps", "--no-binary", name, "--wheel-dir", out, *pip_args, requirement)
        wheels = sorted(Path(out).glob("*.whl"))
        if proc.returncode != 0 or not wheels:
            raise BadInput(f"{requirement} has no wheel for {platform.describe()} and no source "
                           f"distribution that builds here; pin a version that ships manylinux wheels")
        wheel = wheels[0]
        if not wheel.name.endswith("-none-any.whl"):
            raise BadInput(f"{requirement} has no wheel for {platform.describe()} and its source "
                           f"distribution is not pure Python ({wheel.name}); pin a version that ships "
                           f"manylinux wheels or remove it from the requirements")
        shutil.copy2(wheel, wheelhouse / wheel.name)


def _tidy(target: Path) -> None:
    """Drop what Lambda cannot use and what would make the zip differ between machines."""
    shutil.rmtree(target / "bin", ignore_errors=True)  # console scripts carry this machine's python path
    for cache in sorted(target.rglob("__pycache__"), reverse=True):
        shutil.rmtree(cache, ignore_errors=True)
    for pyc in target.rglob("*.pyc"):
        pyc.unlink()


def _measure(path: Path, cached: bool) -> Vendored:
    sizes = package_sizes(path)
    return Vendored(path=path, size=sum(s for _, s in sizes), packages=sizes, cached=cached)


def package_sizes(tree: Path) -> list[tuple[str, int]]:
    """Bytes per installed distribution (from each ``*.dist-info/RECORD``), largest first.

    Files no RECORD claims are counted under their top-level folder's name.
    """
    tree = Path(tree)
    owner: dict[Path, str] = {}
    for record in sorted(tree.glob("*.dist-info/RECORD")):
        dist = _dist_name(record.parent)
        for line in record.read_text(encoding="utf-8", errors="replace").splitlines():
            rel = line.split(",", 1)[0].strip()
            if rel:
                owner[(tree / rel).resolve()] = dist
    totals: dict[str, int] = {}
    for file in tree.rglob("*"):
        if not file.is_file() or file.name == ".kagg-complete":
            continue
        dist = owner.get(file.resolve()) or file.relative_to(tree).parts[0]
        totals[dist] = totals.get(dist, 0) + file.stat().st_size
    return sorted(totals.items(), key=lambda item: (-item[1], item[0]))


def _dist_name(dist_info: Path) -> str:
    metadata = dist_info / "METADATA"
    if metadata.exists():
        name = HeaderParser().parsestr(metadata.read_text(encoding="utf-8", errors="replace")).get("Name")
        if name:
            return name
    return dist_info.name.split("-")[0]


def largest(packages: Sequence[tuple[str, int]], count: int = 5) -> str:
    """"torch 180.2 MB, numpy 35.0 MB, …" for error messages."""
    def human(size: int) -> str:
        return f"{size / 2**20:.1f} MB" if size >= 2**20 else f"{size / 2**10:.1f} kB"  # AWS's MB are MiB

    return ", ".join(f"{name} {human(size)}" for name, size in list(packages)[:count])
