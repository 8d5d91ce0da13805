"""Shared helpers for the benchmark scripts: timing, peer virtualenvs, printing tables."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
import venv
from pathlib import Path
from typing import Callable, Sequence

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def median_seconds(fn: Callable[[], object], repeat: int) -> float:
    """Median wall time of ``repeat`` calls of ``fn`` (after one warm-up call)."""
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def run(cmd: Sequence[str], **kwargs) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.update(kwargs.pop("env", {}))
    return subprocess.run(list(cmd), capture_output=True, text=True, check=True, env=env, **kwargs)


def peer_venv(name: str, packages: Sequence[str]) -> Path:
    """A virtual environment under benchmarks/ holding a peer tool; made once, reused after."""
    path = HERE / f".venv-{name}"
    python = path / "bin" / "python"
    marker = path / ".installed"
    wanted = " ".join(packages)
    if not (marker.exists() and marker.read_text() == wanted):
        venv.EnvBuilder(with_pip=True, clear=True).create(path)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *packages], check=True)
        marker.write_text(wanted)
    return path


def print_table(title: str, header: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    print(f"\n{title}")
    print("  ".join(str(h).ljust(w) for h, w in zip(header, widths)))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths)))
    sys.stdout.flush()
