"""The local server process: functions-framework's app under a supervisor that restarts it.

``python -m kagg.providers.local.server --source DIR/main.py --port P`` is what a local
endpoint (and ``kagg serve``) runs. It is two processes:

- the *supervisor* (this module's main): starts the server, and when the server dies —
  a notebook that calls ``os._exit(3)`` makes gunicorn's master halt with "Worker failed to
  boot" — starts it again with a growing pause, writing a line to the endpoint's log and a
  count to ``server-status.json`` beside the app folder, so ``kagg logs`` and
  ``kagg endpoints list`` can say so. SIGTERM/SIGINT stop both.
- the *server* (``--serve``, this file run as a script by ``--python``, kagg's own Python or an
  endpoint's virtual environment, so it imports nothing of kagg): functions-framework's Flask app (``create_app``, GCF's own
  runtime) on gunicorn's threaded worker, with enough threads that slow clients cannot take
  them all, and a deadline on reading a request's headers so that a client sending them a
  byte at a time is cut off instead of holding a thread for as long as it likes.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Optional

#: worker threads: a request each; slow or idle clients beyond this wait in the accept queue
THREADS = int(os.environ.get("KAGG_LOCAL_THREADS", "64"))
#: seconds a client may take to send a request's line and headers
HEADER_SECONDS = float(os.environ.get("KAGG_LOCAL_HEADER_SECONDS", "10"))
#: pauses between restarts of a server that keeps dying (seconds), the last one repeated
RESTART_PAUSES = (0.5, 1, 2, 5, 10, 30)
STATUS_FILE = "server-status.json"
SERVER_MODULE = "kagg.providers.local.server"


# -- the server ------------------------------------------------------------------------------------
class _HeaderDeadlines:
    """One thread that cuts off connections whose request headers are late (one timer for all)."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self._deadlines: dict[socket.socket, float] = {}
        self._lock = threading.Lock()
        self._pid: Optional[int] = None  # the thread is started in the worker, after gunicorn forks

    def watch(self, sock: socket.socket) -> None:
        with self._lock:
            if self._pid != os.getpid():
                self._pid = os.getpid()
                threading.Thread(target=self._run, name="kagg-header-deadlines", daemon=True).start()
            self._deadlines[sock] = time.monotonic() + self.seconds

    def forget(self, sock: socket.socket) -> None:
        with self._lock:
            self._deadlines.pop(sock, None)

    def _run(self) -> None:
        while True:
            time.sleep(0.25)
            now = time.monotonic()
            with self._lock:
                late = [s for s, deadline in self._deadlines.items() if deadline <= now]
                for sock in late:
                    del self._deadlines[sock]
            for sock in late:
                try:
                    sock.shutdown(socket.SHUT_RDWR)  # the blocked read returns: gunicorn closes it
                except OSError:
                    pass


_classes: dict[str, type] = {}


def _worker_class():
    if "worker" in _classes:
        return _classes["worker"]
    from gunicorn.workers.gthread import ThreadWorker

    deadlines = _HeaderDeadlines(HEADER_SECONDS)

    class KaggThreadWorker(ThreadWorker):
        """gunicorn's threaded worker with a deadline on each request's headers."""

        def handle(self, conn):
            deadlines.watch(conn.sock)
            try:
                return super().handle(conn)
            finally:
                deadlines.forget(conn.sock)

        def handle_request(self, req, conn):
            deadlines.forget(conn.sock)  # the headers are in: the handler may take its time
            return super().handle_request(req, conn)

    _classes["worker"] = KaggThreadWorker
    return KaggThreadWorker


def serve(source: str, target: str, host: str, port: int) -> None:
    """Run functions-framework's app for ``source`` on gunicorn, in this process."""
    from functions_framework import create_app
    from functions_framework._http.gunicorn import GunicornApplication

    app = create_app(target, source)
    GunicornApplication(app, host, port, False, threads=THREADS, worker_class=_worker_class()).run()


# -- the supervisor -----------------------------------------------------------------------------------
def _write_status(app_dir: Path, restarts: int, exit_code: Optional[int]) -> None:
    from kagg.model import utc_now

    path = app_dir.parent / STATUS_FILE
    data = {"app_dir": str(app_dir), "restarts": restarts, "last_exit_code": exit_code, "at": utc_now()}
    tmp = path.with_name(f".{STATUS_FILE}.{os.getpid()}")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh)
        os.replace(tmp, path)
    except OSError:
        pass


def read_status(app_dir: Path) -> dict:
    """What the supervisor of ``app_dir`` last wrote (restarts, last exit code), or {}."""
    try:
        data = json.loads((Path(app_dir).parent / STATUS_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) and data.get("app_dir") == str(app_dir) else {}


def _wait_listening(proc: subprocess.Popen, port: int) -> bool:
    """Wait until the server accepts connections on ``port`` (True) or exits first (False)."""
    while proc.poll() is None:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.1)
    return False


def supervise(argv: list[str], app_dir: Path, port: int, python: str = sys.executable) -> int:
    """Run the server; start it again whenever it dies, until told to stop."""
    from kagg.model import utc_now

    stopping = threading.Event()
    child: dict[str, Optional[subprocess.Popen]] = {"proc": None}

    def stop(signum, _frame) -> None:
        stopping.set()
        proc = child["proc"]
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    restarts = 0
    while True:
        # the server runs this file as a script, so a virtual environment without kagg can run it
        proc = subprocess.Popen([python, str(Path(__file__).resolve()), "--serve", *argv])
        child["proc"] = proc
        served = _wait_listening(proc, port)
        code = proc.wait()
        if stopping.is_set():
            return 0
        if not served:  # it never started: a broken notebook, not a crash to recover from
            return code or 1
        pause = RESTART_PAUSES[min(restarts, len(RESTART_PAUSES) - 1)]
        restarts += 1
        print(f"--- {utc_now()} the server exited (code {code}); kagg restarts it in {pause:g} s "
              f"(restart {restarts})", flush=True)
        _write_status(app_dir, restarts, code)
        if stopping.wait(pause):
            return 0


def main(args: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kagg.providers.local.server")
    parser.add_argument("--serve", action="store_true", help="be the server, not its supervisor")
    parser.add_argument("--source", required=True)
    parser.add_argument("--target", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--python", default=sys.executable, help="the interpreter that runs the server")
    ns = parser.parse_args(args)
    if ns.serve:
        serve(ns.source, ns.target, ns.host, ns.port)
        return 0
    argv = ["--source", ns.source, "--target", ns.target, "--host", ns.host, "--port", str(ns.port)]
    return supervise(argv, Path(ns.source).parent, ns.port, ns.python)


if __name__ == "__main__":
    sys.exit(main())
