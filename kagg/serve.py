"""``kagg serve``: one notebook in the foreground for development, reloaded when it changes.

The function runs in a functions-framework child process (the same runtime
as a local deploy); the parent watches the notebook's modification time and,
when it changes and still converts, restarts the child on the same port.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Callable, Optional

from kagg.errors import BadInput, KaggError
from kagg.providers.local.process import HOST, health, pick_free_port, port_is_free, server_command

Say = Callable[[str], None]


def _build_tree(source: str, entry: Optional[str], allow_secrets: bool, dest: Path) -> str:
    """Convert the notebook into ``dest``; returns the notebook's sha256."""
    from kagg.deploy import convert_checked
    from kagg.packaging.builder import write_tree

    function = convert_checked(source, entry, allow_secrets=allow_secrets)
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    write_tree(function, ("gcf",), dest)
    return function.source.sha256


def _signature(path: Path) -> Optional[tuple[int, int, int]]:
    """What identifies one saved version: mtime alone misses a truncate and a write that
    land in the same coarse kernel tick, so size and inode (atomic renames) count too."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


def _start(app_dir: Path, port: int) -> subprocess.Popen:
    return subprocess.Popen(server_command(app_dir, port), cwd=app_dir, env=dict(os.environ, PYTHONUNBUFFERED="1"))


def _wait_ready(proc: subprocess.Popen, url: str, sha: str, timeout: float = 120.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        doc = health(url, timeout=1.0)
        if doc and doc.get("source_sha256") == sha:
            return True
        time.sleep(0.05)
    return False


def _stop(proc: Optional[subprocess.Popen]) -> None:
    if proc and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def serve(source: str, port: Optional[int] = None, entry: Optional[str] = None, allow_secrets: bool = False,
          say: Say = print, poll_interval: float = 0.5, max_seconds: Optional[float] = None) -> None:
    """Serve ``source`` on 127.0.0.1 until interrupted (or ``max_seconds``), reloading on change."""
    path = Path(source)
    if not path.is_file():
        raise BadInput(f"kagg serve needs a local notebook file; {source} is not one")
    if port is not None and not port_is_free(port):
        raise BadInput(f"port {port} is already in use; choose another with --port or leave it out")
    port = port or pick_free_port()
    url = f"http://{HOST}:{port}/"
    work = Path(tempfile.mkdtemp(prefix="kagg-serve-"))
    proc: Optional[subprocess.Popen] = None
    generation = 0
    try:
        seen = _signature(path)  # before reading: an edit made while it starts is a change
        sha = _build_tree(source, entry, allow_secrets, work / "app0")
        proc = _start(work / "app0", port)
        if not _wait_ready(proc, url, sha):
            raise KaggError("the notebook failed to start; see the error above")
        say(f"Serving {path.name} on {url} (Ctrl-C to stop; edits to the notebook reload it)")
        started = time.monotonic()
        while max_seconds is None or time.monotonic() - started < max_seconds:
            time.sleep(poll_interval)
            now = _signature(path)
            if now is None or now == seen:
                continue  # unchanged (or crashed and not yet edited): wait for the next save
            seen = now
            generation += 1
            app = work / f"app{generation}"
            try:
                sha = _build_tree(source, entry, allow_secrets, app)
            except KaggError as exc:
                say(f"Not reloaded: {exc.message}")
                continue
            say(f"Reloading {path.name} (changed)")
            _stop(proc)
            proc = _start(app, port)
            if _wait_ready(proc, url, sha):
                say(f"Reloaded {path.name}")
            else:
                say("The changed notebook failed to start; see the error above. Fix it and save again.")
    finally:
        _stop(proc)
        shutil.rmtree(work, ignore_errors=True)
