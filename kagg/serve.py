"""``kagg serve``: one notebook in the foreground for development, reloaded when it changes.

The function runs in a child process (the same server as a local deploy); the parent
watches the notebook and, when a saved version converts, restarts the child on the same
port. A version that fails to start is reported as the notebook's cell and line, and the
last good version is brought back, so the port keeps answering while the user fixes it.
Every way of ending ``kagg serve`` (Ctrl-C, SIGTERM, SIGHUP) stops the child and removes
its temporary folder.
"""

from __future__ import annotations

import collections
import os
import shutil
import signal
import subprocess
import sys
import threading
import tempfile
import time
from pathlib import Path
from typing import Callable, Optional

from kagg.errors import BadInput, KaggError
from kagg.providers.local.process import (HOST, health, last_error_line, pick_free_port, port_is_free,
                                          server_command)

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


class _Child:
    """One server process, its output passed through (tracebacks annotated with cells) and the
    last lines kept, to say why it failed."""

    def __init__(self, app_dir: Path, port: int):
        from kagg.notebook.linemap import LineMap

        self.app_dir = app_dir
        self.lines = LineMap(app_dir)
        self.tail: collections.deque[str] = collections.deque(maxlen=300)
        self.proc = subprocess.Popen(server_command(app_dir, port), cwd=app_dir,
                                     env=dict(os.environ, PYTHONUNBUFFERED="1"), stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, errors="replace")
        self._pump = threading.Thread(target=self._pass_output, daemon=True)
        self._pump.start()

    def _pass_output(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.tail.append(line)
            sys.stderr.write(self.lines.annotate(line))
            sys.stderr.flush()

    def wait_ready(self, url: str, sha: str, timeout: float = 120.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.proc.poll() is None:
            doc = health(url, timeout=1.0)
            if doc and doc.get("source_sha256") == sha:
                return True
            time.sleep(0.05)
        return False

    def why(self) -> str:
        self._pump.join(timeout=2)
        return self.lines.summary(self.tail) or last_error_line("".join(self.tail))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class _Stop(BaseException):
    """SIGTERM or SIGHUP arrived: end as Ctrl-C does."""


def _raise_stop(signum, _frame) -> None:
    raise _Stop(signum)


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
    child: Optional[_Child] = None
    previous = {sig: signal.signal(sig, _raise_stop) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        seen = _signature(path)  # before reading: an edit made while it starts is a change
        good = (work / "app0", _build_tree(source, entry, allow_secrets, work / "app0"), time.strftime("%H:%M:%S"))
        child = _Child(good[0], port)
        if not child.wait_ready(url, good[1]):
            raise KaggError(f"the notebook failed to start: {child.why()}")
        say(f"Serving {path.name} on {url} (Ctrl-C to stop; edits to the notebook reload it)")
        started = time.monotonic()
        generation = 0
        while max_seconds is None or time.monotonic() - started < max_seconds:
            time.sleep(poll_interval)
            now = _signature(path)
            if now is None or now == seen:
                continue  # unchanged: wait for the next save
            seen = now
            generation += 1
            app = work / f"app{generation}"
            try:
                sha = _build_tree(source, entry, allow_secrets, app)
            except KaggError as exc:
                say(f"Not reloaded: {exc.message}")
                continue
            say(f"Reloading {path.name} (changed)")
            child.stop()
            child = _Child(app, port)
            if child.wait_ready(url, sha):
                good = (app, sha, time.strftime("%H:%M:%S"))
                say(f"Reloaded {path.name}")
                continue
            reason = child.why()
            child.stop()
            child = _Child(good[0], port)
            kept = child.wait_ready(url, good[1])
            say(f"The edited notebook failed to start: {reason}. "
                + (f"Still serving the last good version (saved {good[2]}); fix it and save again."
                   if kept else "The last good version did not start again either; fix it and save again."))
    except _Stop:
        say("Stopped.")
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if child is not None:
            child.stop()
        shutil.rmtree(work, ignore_errors=True)
