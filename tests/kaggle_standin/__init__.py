"""A Kaggle stand-in for tests: a local HTTP server that speaks Kaggle's real wire protocol
(``../shared/notes/kaggle-api.md``) and runs every pushed kernel for real in a subprocess.

    with KaggleStandIn() as kaggle:
        env = kaggle.env()          # KAGG_KAGGLE_API_URL, KAGGLE_USERNAME, KAGGLE_KEY
        ...                         # push with kagg / KaggleApi / kagglesdk
        kaggle.wait("my-slug")      # the latest version, once its session ended

Test code only (not shipped). The pytest fixtures are in tests/kaggle_fixtures.py.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Optional

from loopback import QuietHTTPServer

from .api import Api
from .model import (CANCEL_ACKNOWLEDGED, COMPLETE, ERROR, QUEUED, RUNNING, Call, Fault, LogEntry, StandInKernel,
                    Version, kaggle_log)
from .runner import Session, kill_tree, make_writable, write_blocker
from .server import make_handler, output_names

__all__ = ["KaggleStandIn", "StandInKernel", "Version", "Call", "Fault", "LogEntry", "kaggle_log",
           "QUEUED", "RUNNING", "COMPLETE", "ERROR", "CANCEL_ACKNOWLEDGED"]


class _Server(QuietHTTPServer):
    request_queue_size = 128  # many parallel downloads connect at once (the default backlog is 5)


class KaggleStandIn:
    """Kaggle on 127.0.0.1: kernels, versions and sessions that really run, faults on demand.

    Knobs (plain attributes, change them at any time): ``gpu_cap`` (GPU sessions at once, then
    SaveKernel answers 200 with "Maximum batch GPU session count of N reached"), ``page_size``
    (the most files one ListKernelSessionOutput page holds), ``latency_s`` (added to every
    request), ``default_timeout_s`` (a session's limit when the push sets none), ``queued_s``
    (how long a session stays QUEUED), ``gpu_quota_s`` / ``gpu_used_s`` (the weekly GPU quota),
    ``live_log_in_output`` (ListKernelSessionOutput also returns the log of a running session;
    Kaggle returns it once the session is over).
    """

    def __init__(self, user: str = "standin-user", key: Optional[str] = None, *, folder: Optional[Path] = None,
                 gpu_cap: int = 2, page_size: int = 100, latency_s: float = 0.0,
                 default_timeout_s: float = 300.0, queued_s: float = 0.0):
        self.user = user
        self.key = key or secrets.token_hex(16)
        self.gpu_cap = gpu_cap
        self.page_size = page_size
        self.latency_s = latency_s
        self.default_timeout_s = default_timeout_s
        self.queued_s = queued_s
        self.gpu_quota_s = 30 * 3600.0
        self.gpu_used_s = 0.0
        self.live_log_in_output = False
        self.calls: list[Call] = []
        self.kernels: dict[tuple[str, str], StandInKernel] = {}
        self.datasets: dict[str, Path] = {}
        self.competitions: dict[str, Path] = {}
        self.sessions: dict[tuple[str, str, int], Session] = {}
        self.faults: list[Fault] = []
        self.next_id = 1000
        self.lock = threading.RLock()
        self.closing = False
        self.closed = threading.Event()
        self._stuck: list[Optional[str]] = []
        self._own_folder = folder is None
        self.folder = Path(folder or tempfile.mkdtemp(prefix="kaggle-standin-"))
        self.runs = self.folder / "runs"
        self.runs.mkdir(parents=True, exist_ok=True)
        self.blocker_dir = write_blocker(self.folder / "no-kagg")
        self.api = Api(self)
        self._server: Optional[_Server] = None
        self.url = ""

    # -- lifecycle ---------------------------------------------------------------------------------
    def start(self) -> "KaggleStandIn":
        self._server = _Server(("127.0.0.1", 0), make_handler(self))
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="kaggle-standin",
                         daemon=True).start()
        return self

    def close(self) -> None:
        """Stop every session (no kernel process outlives the stand-in), the server, the files."""
        self.closing = True
        self.closed.set()
        for session in list(self.sessions.values()):
            session.stop()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._own_folder:
            make_writable(self.runs)
            shutil.rmtree(self.folder, ignore_errors=True)
        else:
            make_writable(self.runs)

    def __enter__(self) -> "KaggleStandIn":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def web_url(self) -> str:
        return self.url

    def env(self) -> dict[str, str]:
        """What a kagg process needs to use this stand-in with legacy credentials."""
        return {"KAGG_KAGGLE_API_URL": self.url, "KAGGLE_USERNAME": self.user, "KAGGLE_KEY": self.key}

    # -- content -----------------------------------------------------------------------------------
    def add_dataset(self, ref: str, folder: Path) -> None:
        """A dataset ``owner/slug`` whose files a kernel sees under input/<slug>/."""
        self.datasets[ref] = Path(folder)

    def add_competition(self, slug: str, folder: Path) -> None:
        self.competitions[slug] = Path(folder)

    def add_kernel(self, ref: str, text: str, title: Optional[str] = None, *, language: str = "python",
                   kernel_type: str = "notebook", is_private: bool = False,
                   outputs: Optional[dict[str, "bytes | int"]] = None) -> StandInKernel:
        """A kernel saved earlier, its one version COMPLETE without running: for ``kaggle kernels
        pull`` / ``kagg deploy OWNER/SLUG``, and (``outputs``: name -> bytes, or a size for random
        bytes) for download benchmarks without a real run."""
        owner, _, slug = ref.partition("/")
        with self.lock:
            self.next_id += 1
            kernel = StandInKernel(owner=owner, slug=slug, title=title or slug.replace("-", " ").title(),
                                   id=self.next_id, language=language, kernel_type=kernel_type, is_private=is_private)
            version = Version(number=1, text=text, request={"language": language, "kernelType": kernel_type},
                              gpu=False, timeout_s=0, folder=self.run_folder(kernel, 1), status=COMPLETE, run=False)
            version.working.mkdir(parents=True)
            for name, content in (outputs or {}).items():
                path = version.working / name
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(content if isinstance(content, bytes) else os.urandom(content))
            version.ended = time.time()
            kernel.versions.append(version)
            self.kernels[(owner, slug)] = kernel
            return kernel

    # -- faults ------------------------------------------------------------------------------------
    def fail(self, method: str = "SaveKernel", status: int = 500, html: bool = False, times: int = 1,
             accept_first: bool = False, drop: bool = False, retry_after: Optional[int] = None,
             delay_s: float = 0.0) -> Fault:
        """Answer the next ``times`` calls of ``method`` (a service method name, "output-file",
        "logs-stream" or "*") with ``status`` (JSON body, or an HTML page), or drop the connection.
        ``accept_first``: do the real work first (the push IS accepted), then answer the error.
        ``delay_s``: hang that long before answering (the stand-in closing cuts it short)."""
        fault = Fault(method, status, html, times, accept_first, drop, retry_after, delay_s)
        with self.lock:
            self.faults.append(fault)
        return fault

    def take_fault(self, method: str) -> Optional[Fault]:
        with self.lock:
            for fault in self.faults:
                if fault.times > 0 and fault.method in (method, "*"):
                    fault.times -= 1
                    if fault.times == 0:
                        self.faults.remove(fault)
                    return fault
        return None

    def make_stuck(self, slug: Optional[str] = None) -> None:
        """The next session of ``slug`` (of any kernel when None) stays RUNNING forever and runs
        nothing, like a crashed Kaggle session (kaggle-cli #473). Only DeleteKernel ends it."""
        with self.lock:
            self._stuck.append(slug)

    def take_stuck(self, slug: str) -> bool:
        for i, wanted in enumerate(self._stuck):
            if wanted in (None, slug):
                del self._stuck[i]
                return True
        return False

    # -- looking inside ----------------------------------------------------------------------------
    def kernel(self, slug: str, owner: Optional[str] = None) -> StandInKernel:
        """The kernel ``slug`` (also "owner/slug"); KeyError if there is none (or it was deleted)."""
        if "/" in slug:
            owner, _, slug = slug.partition("/")
        with self.lock:
            return self.kernels[(owner or self.user, slug)]

    def only_kernel(self) -> StandInKernel:
        """The one kernel pushed so far (for tests where kagg chose the slug)."""
        with self.lock:
            pushed = [k for k in self.kernels.values() if k.versions and k.versions[0].run]
        assert len(pushed) == 1, f"expected one pushed kernel, found {[k.ref for k in pushed]}"
        return pushed[0]

    def calls_to(self, service_method: str) -> list[Call]:
        with self.lock:
            return [c for c in self.calls if c.service_method == service_method]

    def wait(self, slug: str, version: Optional[int] = None, timeout: float = 60) -> Version:
        """Block until that version's session (the latest when None) has ended; return it."""
        kernel = self.kernel(slug)
        v = kernel.latest if version is None else next(x for x in kernel.versions if x.number == version)
        deadline = time.monotonic() + timeout
        with v.changed:
            while not v.finished:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"the session of {kernel.ref}/{v.label} did not end in {timeout} s "
                                         f"(status {v.status})")
                v.changed.wait(timeout=min(left, 0.5))
        return v

    def run_folder(self, kernel: StandInKernel, number: int) -> Path:
        """Where version ``number`` runs (by id: a slug deleted and pushed again is a new kernel)."""
        return self.runs / kernel.owner / f"{kernel.slug}.{kernel.id}" / f"v{number}"

    def output_names(self, version: Version) -> list[str]:
        return output_names(version.working)

    def running_pids(self) -> list[int]:
        """Processes of sessions still running (papermill and the kernels under it)."""
        from .runner import descendants

        pids = []
        for session in self.sessions.values():
            proc = session.proc
            if proc is not None and proc.poll() is None:
                pids += [proc.pid, *descendants(proc.pid)]
        return pids

    def stop_sessions(self, kernel: StandInKernel) -> None:
        """Kill every session of ``kernel`` (DeleteKernel: Kaggle's only working stop)."""
        for (owner, slug, _), session in list(self.sessions.items()):
            if (owner, slug) == (kernel.owner, kernel.slug):
                session.stopped.set()
                proc = session.proc
                if proc is not None and proc.poll() is None:
                    kill_tree(proc.pid)
                if session.version.stuck or session.version.status == QUEUED:
                    session.version.status = CANCEL_ACKNOWLEDGED
                    session.version.ended = time.time()
                    session.version.notify()
