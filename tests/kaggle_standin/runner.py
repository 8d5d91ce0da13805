"""Runs one pushed version for real, the way a Kaggle batch session does: the notebook goes through
papermill in a subprocess with its root mapped to a temporary folder (``KAGG_KAGGLE_ROOT``), the
sources mounted under ``root/input/<slug>/``, cwd ``root/working``; stdout and stderr become the
session's log; QUEUED -> RUNNING -> COMPLETE / ERROR; the session timeout kills it.

kagg is not importable inside (a blocker package shadows it), and no Kaggle credential or kagg
setting leaks into the kernel's environment: a kernel that needs either would fail on Kaggle too.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Optional

from .model import COMPLETE, ERROR, RUNNING, LogEntry, Version

TIMEOUT_MESSAGE = "Your notebook was stopped because it exceeded the max allowed execution duration of {} seconds."
BLOCKER = 'raise ImportError("kagg is not installed on Kaggle: a kernel must not import kagg")\n'
_SECRET_VARS = ("KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_API_TOKEN", "KAGGLE_CONFIG_DIR")


def kernel_env(root: Path, blocker_dir: Path) -> dict[str, str]:
    """The environment a kernel sees: this machine's, minus credentials and kagg's settings."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("KAGG_") and k not in _SECRET_VARS and not k.startswith("AWS_")}
    env["PYTHONPATH"] = str(blocker_dir)
    env["KAGG_KAGGLE_ROOT"] = str(root)
    env["KAGGLE_KERNEL_RUN_TYPE"] = "Batch"
    env["PYTHONUNBUFFERED"] = "1"
    return env


def write_blocker(folder: Path) -> Path:
    (folder / "kagg").mkdir(parents=True, exist_ok=True)
    (folder / "kagg" / "__init__.py").write_text(BLOCKER)
    return folder


def mount_sources(version: Version, sources: dict[str, Path]) -> None:
    """Copy each source folder to root/input/<slug>/ and make the copy read-only, as Kaggle
    mounts them (root ignores the mode bits; the copy still keeps the original untouched)."""
    for slug, folder in sources.items():
        target = version.root / "input" / slug
        shutil.copytree(folder, target, symlinks=False)
        for path in sorted(target.rglob("*"), reverse=True):
            path.chmod(path.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
        target.chmod(0o555)


def make_writable(folder: Path) -> None:
    """Undo mount_sources' modes so the run folder can be removed."""
    if not folder.exists():
        return
    for path in [folder, *folder.rglob("*")]:
        if not path.is_symlink():
            path.chmod(path.stat().st_mode | stat.S_IWUSR)


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (the ipykernel papermill starts lives in its own session)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            text = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(text.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _die_with_parent() -> None:
    """preexec: the session dies if the stand-in's process dies (a killed pytest leaves none behind)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def kill_tree(pid: int) -> None:
    for target in [pid, *descendants(pid)]:
        try:
            os.kill(target, signal.SIGKILL)
        except ProcessLookupError:
            pass


class Session:
    """The subprocess of one version, from start to end (run in its own thread)."""

    def __init__(self, version: Version, sources: dict[str, Path], blocker_dir: Path, queued_s: float = 0.0):
        self.version = version
        self.sources = sources
        self.blocker_dir = blocker_dir
        self.queued_s = queued_s
        self.proc: Optional[subprocess.Popen] = None
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"kaggle-session-{version.folder.name}", daemon=True)

    def start(self) -> "Session":
        self.thread.start()
        return self

    def stop(self) -> None:
        """Kill the session (DeleteKernel, or the stand-in closing)."""
        self.stopped.set()
        proc = self.proc
        if proc is not None and proc.poll() is None:
            kill_tree(proc.pid)
        self.thread.join(timeout=10)

    # -- the run -----------------------------------------------------------------------------------
    def _command(self) -> list[str]:
        v = self.version
        if v.request.get("kernelType", "notebook") == "script":
            return [sys.executable, "-u", str(v.folder / "script.py")]
        return [sys.executable, "-m", "papermill", str(v.folder / "in.ipynb"), str(v.folder / "out.ipynb"),
                "--cwd", str(v.working), "--stdout-file", "-", "--stderr-file", "/dev/stderr",
                "--no-progress-bar", "--log-level", "WARNING"]

    def _run(self) -> None:
        v = self.version
        if self.stopped.wait(self.queued_s):
            return
        v.working.mkdir(parents=True, exist_ok=True)
        (v.root / "input").mkdir(parents=True, exist_ok=True)
        mount_sources(v, self.sources)
        name = "script.py" if v.request.get("kernelType") == "script" else "in.ipynb"
        (v.folder / name).write_text(v.text, encoding="utf-8")
        v.started = time.time()
        v.status = RUNNING
        v.notify()
        if v.stuck:
            return  # a crashed session that Kaggle keeps reporting as RUNNING
        if v.request.get("language", "python") != "python":
            self._finish(ERROR, 1, f"the stand-in runs Python kernels only, not {v.request.get('language')!r}")
            return
        self.proc = subprocess.Popen(self._command(), cwd=v.working, env=kernel_env(v.root, self.blocker_dir),
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     start_new_session=True, preexec_fn=_die_with_parent)
        v.pid = self.proc.pid
        if self.stopped.is_set():  # deleted while starting
            kill_tree(self.proc.pid)
        readers = [threading.Thread(target=self._read, args=(pipe, name), daemon=True)
                   for pipe, name in ((self.proc.stdout, "stdout"), (self.proc.stderr, "stderr"))]
        for reader in readers:
            reader.start()
        timed_out = False
        try:
            self.proc.wait(timeout=v.timeout_s)
        except subprocess.TimeoutExpired:
            timed_out = True
            kill_tree(self.proc.pid)
            self.proc.wait()
        for reader in readers:
            reader.join(timeout=5)
        code = self.proc.returncode
        if timed_out:
            self._finish(ERROR, code, TIMEOUT_MESSAGE.format(int(v.timeout_s)))
        elif self.stopped.is_set():
            self._finish(ERROR, code, "The session was stopped: the notebook was deleted.")
        elif code == 0:
            self._finish(COMPLETE, code, "")
        else:
            self._finish(ERROR, code, self._failure())

    def _read(self, pipe, stream_name: str) -> None:
        v = self.version
        for raw in iter(pipe.readline, b""):
            entry = LogEntry(stream_name, time.time() - (v.started or time.time()), raw.decode("utf-8", "replace"))
            with v.changed:
                v.log.append(entry)
                v.changed.notify_all()
        pipe.close()

    def _failure(self) -> str:
        """The failing cell's error (``ename: evalue``) from papermill's output notebook, else the
        last line the session wrote to stderr."""
        out = self.version.folder / "out.ipynb"
        try:
            cells = json.loads(out.read_text(encoding="utf-8")).get("cells", [])
        except (OSError, ValueError):
            cells = []
        for cell in cells:
            for output in cell.get("outputs", []):
                if output.get("output_type") == "error":
                    return f"{output.get('ename')}: {output.get('evalue')}"
        lines = [e.data.strip() for e in self.version.log if e.stream_name == "stderr" and e.data.strip()]
        return lines[-1] if lines else f"the kernel exited with code {self.proc.returncode if self.proc else '?'}"

    def _finish(self, status: str, code: Optional[int], message: str) -> None:
        v = self.version
        v.returncode = code
        v.failure_message = message
        v.ended = time.time()
        v.status = status
        v.notify()
