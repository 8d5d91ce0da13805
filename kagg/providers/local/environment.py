"""Where a local endpoint's code runs: kagg's own Python, or a virtual environment of its own.

A local deploy runs the notebook in the environment kagg is installed in, so a requirement
that environment lacks (``%pip install lightgbm==4.5.0``) would only show up as a
ModuleNotFoundError at start. :func:`missing_requirements` finds those before anything
starts; ``--venv`` serves the endpoint from a virtual environment made from its
requirements instead, cached by their hash in ``~/.cache/kagg/venvs`` so a redeploy with the
same requirements reuses it.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Callable, Optional

from kagg.errors import OperationFailed


def missing_requirements(requirements: list[str]) -> list[str]:
    """The requirements that the running interpreter's environment does not satisfy."""
    from importlib import metadata

    from packaging.requirements import InvalidRequirement, Requirement

    missing = []
    for line in requirements:
        text = line.split("#", 1)[0].strip()
        if not text or text.startswith("-"):
            continue  # pip options (--extra-index-url ...) are not requirements
        try:
            req = Requirement(text)
        except InvalidRequirement:
            continue  # a URL or a path: pip's business
        if req.marker is not None and not req.marker.evaluate():
            continue
        try:
            installed = metadata.version(req.name)
        except metadata.PackageNotFoundError:
            missing.append(text)
            continue
        if req.specifier and not req.specifier.contains(installed, prereleases=True):
            missing.append(f"{text} (installed: {installed})")
    return missing


def install_hint(missing: list[str]) -> str:
    """The command that installs ``missing`` into kagg's environment."""
    names = [m.split(" (installed", 1)[0] for m in missing]
    return f"{shlex.quote(sys.executable)} -m pip install " + " ".join(shlex.quote(n) for n in names)


def cache_root() -> Path:
    from kagg.cache import cache_dir

    return cache_dir() / "venvs"


def venv_key(requirements: list[str]) -> str:
    """What identifies a venv: the requirements (sorted) and the Python that makes it."""
    text = "\n".join(sorted(r.strip() for r in requirements if r.strip()))
    return hashlib.sha256(f"{sys.version}\n{sys.executable}\n{text}".encode()).hexdigest()[:16]


def venv_python(folder: Path) -> Path:
    return folder / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def ensure_venv(requirements: list[str], say: Callable[[str], None]) -> Path:
    """The python of a venv that has ``requirements`` (made and installed on first use).

    The venv sees kagg's own packages beneath its own (``--system-site-packages``): the server
    (functions-framework, gunicorn) comes from there, and the notebook's requirements are
    installed into the venv at the versions it asks for, which take precedence.
    """
    from filelock import FileLock

    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    folder = root / venv_key(requirements)
    ready = folder / ".kagg-ready"
    with FileLock(str(folder) + ".lock"):
        if ready.exists():
            say(f"using the virtual environment {folder} (same requirements as before)")
            return venv_python(folder)
        say(f"making a virtual environment for the endpoint in {folder}")
        _run([sys.executable, "-m", "venv", "--system-site-packages", str(folder)], "make the virtual environment")
        reqs = [r for r in requirements if r.strip() and not r.strip().startswith("#")]
        if reqs:
            say(f"installing {len(reqs)} requirement(s) into it: {', '.join(reqs)[:200]}")
            req_file = folder / "requirements.txt"
            req_file.write_text("\n".join(reqs) + "\n", encoding="utf-8")
            _run([str(venv_python(folder)), "-m", "pip", "install", "--disable-pip-version-check", "-q",
                  "-r", str(req_file)], "install the notebook's requirements into the virtual environment")
        ready.write_text("ok\n")
    return venv_python(folder)


def _run(cmd: list[str], what: str) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        lines = [ln for ln in (proc.stderr or proc.stdout).splitlines() if ln.strip()]
        last: Optional[str] = lines[-1].strip() if lines else f"exit code {proc.returncode}"
        raise OperationFailed(f"could not {what}: {last}")
