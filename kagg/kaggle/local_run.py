"""Run a built kernel on this machine, for real, under a ``/kaggle``-like root (``kagg run NB``).

The same kernel text that would be pushed runs in a subprocess with ``KAGG_KAGGLE_ROOT=root``
and its working folder ``root/working``, so a user checks a kernel (cells, outputs, manifest,
checkpoints) before spending GPU time. Cells run in one Python process, in order, stopping at
the first error, as papermill does on Kaggle (:mod:`kagg.kaggle.kernel_runtime.kagg_driver`):
no Jupyter kernel is needed.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from kagg.errors import BadInput, OperationFailed
from kagg.kaggle.kernel import KernelBundle
from kagg.kaggle.kernel_notebook import DRIVER_PATH
from kagg.kaggle.manifest import RESULT_FILE, KernelResult, markers_in, read_result

#: returncode of a run stopped by ``timeout_s``
TIMED_OUT = 124


@dataclass
class LocalRun:
    returncode: int  # 0: every cell ran; 1: a cell failed; 124: timed out
    log: str
    result: Optional[KernelResult]
    root: Path

    @property
    def working(self) -> Path:
        return self.root / "working"

    @property
    def ok(self) -> bool:
        """Every cell ran: exit 0, the end marker printed and the manifest says ``complete``."""
        return (self.returncode == 0 and markers_in(self.log)[1] and self.result is not None
                and self.result.status == "complete")


def prepare_root(root: Path, sources: Optional[dict[str, Path]] = None) -> None:
    """``root/input/<slug>`` for each source (a link to the folder, a copy where links fail),
    an empty ``root/working`` (a stale manifest from an earlier run would mislead) and ``root/tmp``."""
    root = Path(root)
    for name in ("input", "working", "tmp", "src"):
        (root / name).mkdir(parents=True, exist_ok=True)
    stale = root / "working" / RESULT_FILE
    stale.unlink(missing_ok=True)
    for slug, folder in (sources or {}).items():
        folder = Path(folder)
        if not folder.is_dir():
            raise BadInput(f"the source {slug} is mapped to {folder}, which is not a folder")
        target = root / "input" / slug.split("/")[-1]
        if target.is_symlink() or target.is_file():
            target.unlink()
        elif target.is_dir():
            shutil.rmtree(target)
        try:
            target.symlink_to(folder.resolve(), target_is_directory=True)
        except OSError:
            shutil.copytree(folder, target)


def run_locally(bundle: KernelBundle, root: Path, sources: Optional[dict[str, Path]] = None,
                on_line: Optional[Callable[[str], None]] = None, timeout_s: Optional[float] = None) -> LocalRun:
    """Run ``bundle``'s cells in a subprocess; every line it prints goes to ``on_line`` as it comes."""
    root = Path(root).resolve()
    prepare_root(root, sources)
    notebook = bundle.write(root / "src")
    driver = root / "src" / DRIVER_PATH.name
    shutil.copyfile(DRIVER_PATH, driver)
    env = dict(os.environ, KAGG_KAGGLE_ROOT=str(root), TMPDIR=str(root / "tmp"), PYTHONUNBUFFERED="1",
               IPYTHONDIR=str(root / "tmp" / "ipython"), MPLBACKEND=os.environ.get("MPLBACKEND", "Agg"))
    lines: list[str] = []
    try:
        proc = subprocess.Popen([sys.executable, "-u", str(driver), str(notebook)], cwd=root / "working", env=env,
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, encoding="utf-8", errors="replace", bufsize=1, start_new_session=True)
    except OSError as exc:
        raise OperationFailed(f"cannot start {sys.executable}: {exc.strerror or exc}") from None
    timer = _Watchdog(proc, timeout_s)
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.rstrip("\n")
            lines.append(line)
            if on_line is not None:
                on_line(line)
        returncode = proc.wait()
    except BaseException:  # Ctrl-C or a failing on_line: the kernel must not outlive us
        _kill(proc)
        raise
    finally:
        timer.cancel()
        shutil.rmtree(root / "tmp" / "ipython", ignore_errors=True)
    if timer.fired:
        returncode = TIMED_OUT
        message = f"[kagg] the kernel ran past the {timeout_s:g} s timeout and was stopped"
        lines.append(message)
        if on_line is not None:
            on_line(message)
    manifest = root / "working" / RESULT_FILE
    result = read_result(manifest) if manifest.is_file() else None
    return LocalRun(returncode=returncode, log="\n".join(lines) + ("\n" if lines else ""), result=result, root=root)


class _Watchdog:
    """Stops the process group after ``timeout_s`` (None: never)."""

    def __init__(self, proc: subprocess.Popen, timeout_s: Optional[float]):
        self.fired = False
        self._proc = proc
        self._timer = threading.Timer(timeout_s, self._fire) if timeout_s else None
        if self._timer is not None:
            self._timer.daemon = True
            self._timer.start()

    def _fire(self) -> None:
        self.fired = True
        _kill(self._proc)

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()


def _kill(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()
    proc.wait()
