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
import time
import urllib.request
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


def pick_free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def process_alive(pid: Optional[int]) -> bool:
    """True if ``pid`` is a running functions-framework server (not a reused pid)."""
    if not pid:
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        try:
            os.kill(pid, 0)
        except (ProcessLookupError, PermissionError):
            return False
        return True
    stat = Path(f"/proc/{pid}/stat").read_text()
    if stat.rsplit(")", 1)[-1].split()[0] == "Z":  # zombie: exited, not yet reaped
        return False
    return b"functions_framework" in cmdline


def stop_process(pid: Optional[int], grace: float = 5.0) -> bool:
    """Stop the server's whole process group; True if something was running."""
    if not process_alive(pid):
        return False
    assert pid is not None
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 2.0)):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return True
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)  # reap if it is our child
            except ChildProcessError:
                done = 0
            if done or not process_alive(pid):
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


def server_command(app_dir: Path, port: int) -> list[str]:
    """The functions-framework command line that serves an unpacked artifact on 127.0.0.1:``port``."""
    return [sys.executable, "-m", "functions_framework", "--target", TARGET,
            "--source", str(app_dir / "main.py"), "--host", HOST, "--port", str(port)]
