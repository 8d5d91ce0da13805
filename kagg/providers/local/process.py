"""The local server processes: ports, starting functions-framework, finding and stopping it.

Shared by the local provider (detached servers that outlive the CLI) and ``kagg serve``
(a child in the foreground). functions-framework is Google Cloud Functions' own runtime,
so a local endpoint behaves as the GCF one will.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

HOST = "127.0.0.1"
TARGET = "kagg_http"


def port_is_free(port: int) -> bool:
    """True if nothing listens on 127.0.0.1:``port`` and we may bind it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


#: ports this process handed out, and when: a port is free again as soon as the probe closes,
#: so the system may hand it to the next probe before the first server binds it (a batch plans
#: the next items while earlier ones start)
_handed_out: dict[int, float] = {}
_handed_out_lock = threading.Lock()
_HOLD_SECONDS = 600.0


def pick_free_port() -> int:
    """A port nothing listens on, and not one this process handed out in the last 10 minutes."""
    with _handed_out_lock:
        now = time.monotonic()
        for port, at in list(_handed_out.items()):
            if now - at > _HOLD_SECONDS:
                del _handed_out[port]
        for _ in range(100):
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                s.bind((HOST, 0))
                port = s.getsockname()[1]
            if port not in _handed_out:
                break
        _handed_out[port] = now
        return port


@dataclass(frozen=True)
class Server:
    """What identifies one local server: a pid alone is reused after an exit or a reboot.

    ``started`` is the process's start time (clock ticks since boot, from /proc/PID/stat) and
    ``app_dir`` the unpacked artifact it serves (its name is the artifact's sha256 prefix); a
    process is this server only if all three match.
    """

    pid: int
    started: Optional[int]
    app_dir: str

    def to_data(self) -> dict:
        return {"pid": self.pid, "proc_started": self.started, "app_dir": self.app_dir}

    @classmethod
    def from_data(cls, data: dict) -> Optional["Server"]:
        """The server an entry's ``provider_data`` names, or None if it names none."""
        pid, app_dir = data.get("pid"), data.get("app_dir")
        if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0 or not isinstance(app_dir, str):
            return None
        started = data.get("proc_started")
        return cls(pid, started if isinstance(started, int) else None, app_dir)


def _proc_info(pid: int) -> Optional[tuple[int, list[str], int]]:
    """(start time, argv, process group) of a live, non-zombie process, or None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[-1].split()
    if not fields or fields[0] in ("Z", "X"):  # zombie or dead: exited, not yet reaped
        return None
    return int(fields[19]), [a.decode("utf-8", "replace") for a in argv if a], int(fields[2])


def _served_dir(argv: list[str]) -> Optional[str]:
    """The app folder a kagg server command line serves (``--source DIR/main.py``); None for
    anything else, the server child of a supervisor included."""
    if argv[1:3] != ["-m", SERVER_MODULE] or "--serve" in argv or "--source" not in argv:
        return None
    i = argv.index("--source")
    return str(Path(argv[i + 1]).parent) if i + 1 < len(argv) else None


def identify(pid: int) -> Optional[Server]:
    """The server running as ``pid`` right now (None if it is not a functions-framework server)."""
    info = _proc_info(pid)
    if info is None:
        return None
    app_dir = _served_dir(info[1])
    return Server(pid, info[0], app_dir) if app_dir else None


def is_running(server: Optional[Server]) -> bool:
    """True only if the process ``server`` names is alive and still that server: same start
    time (when recorded) and serving the same app folder. A reused pid is never it."""
    if server is None:
        return False
    now = identify(server.pid)
    if now is None or now.app_dir != server.app_dir:
        return False
    return server.started is None or now.started == server.started


def servers_under(folder: Path) -> list[Server]:
    """Every functions-framework server of this user serving an app folder inside ``folder``
    (how kagg finds a server that an interrupted deploy started but never recorded). Only the
    leader of each server's process group counts: gunicorn's workers share its command line."""
    root = str(folder.resolve())
    found = []
    for entry in Path("/proc").iterdir() if Path("/proc").is_dir() else ():
        if not entry.name.isdigit():
            continue
        info = _proc_info(int(entry.name))
        if info is None or info[2] != int(entry.name):
            continue
        server = identify(int(entry.name))
        if server and (server.app_dir == root or server.app_dir.startswith(root + os.sep)):
            found.append(server)
    return found


def stop_server(server: Optional[Server], grace: float = 5.0) -> bool:
    """Stop ``server``'s process group if it is still that server; True if it was running.

    Nothing is signalled unless :func:`is_running` holds, so a stale entry cannot kill
    someone else's process.
    """
    if not is_running(server):
        return False
    assert server is not None
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 2.0)):
        try:
            os.killpg(server.pid, sig)
        except ProcessLookupError:
            return True
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            try:
                done, _ = os.waitpid(server.pid, os.WNOHANG)  # reap if it is our child
            except ChildProcessError:
                done = 0
            if done or not is_running(server):
                return True
            time.sleep(0.05)
    return True


def health(url: str, timeout: float = 2.0) -> Optional[dict]:
    """The endpoint's ``/health`` document, or None if it does not answer."""
    try:
        with urllib.request.urlopen(url.rstrip("/") + "/health", timeout=timeout) as resp:
            return json.loads(resp.read())
    except (OSError, ValueError):
        return None


def last_error_line(log_text: str) -> str:
    """The line of a Python traceback that says what went wrong (``ValueError: ...``)."""
    lines = [ln.rstrip() for ln in log_text.splitlines() if ln.strip()]
    for line in reversed(lines):
        head = line.split(":", 1)[0].strip()
        if (":" in line and not line.startswith(" ") and head.replace(".", "").replace("_", "").isalnum()
                and (head.endswith(("Error", "Exception", "Exit", "Interrupt")) or "." in head)):
            return line.strip()
    return lines[-1].strip() if lines else "the server exited without a message"


#: what runs a local server: functions-framework's app under kagg's supervisor (see that module)
SERVER_MODULE = "kagg.providers.local.server"


def server_command(app_dir: Path, port: int, python: Optional[str] = None) -> list[str]:
    """The command line that serves an unpacked artifact on 127.0.0.1:``port``, the server run
    by ``python`` (default: kagg's own); :func:`identify` reads the app folder back from it."""
    return [sys.executable, "-m", SERVER_MODULE, "--target", TARGET,
            "--source", str(app_dir.resolve() / "main.py"), "--host", HOST, "--port", str(port),
            "--python", python or sys.executable]
