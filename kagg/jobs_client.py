"""The client side of an endpoint's ``/jobs`` (docs/jobs.md): start, status, logs, list, output, stop.

Every call goes through :func:`kagg.invoke.call`, so a private endpoint is signed by its provider
exactly like ``kagg invoke``. ``start`` sends an ``Idempotency-Key`` (one per start, reused on
the retries a 503 invites), so a retry never starts a second kernel. Outputs are downloaded from
the short-lived URLs Kaggle gives (no credentials: they are Kaggle's links), in parallel and
checked against the sizes the kernel's manifest lists.
"""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from kagg.errors import BadInput, OperationFailed
from kagg.registry import Registry

FINISHED = ("complete", "error", "stopped")
_ID = re.compile(r"^[A-Za-z0-9_-]{4,300}$")


@dataclass
class JobStatus:
    """``GET /jobs/ID`` as the contract gives it."""

    id: str
    status: str
    failure: Optional[str] = None
    started_at: Optional[str] = None
    finished_at: Optional[str] = None
    outputs: list[dict] = field(default_factory=list)
    result: Optional[dict] = None

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    @classmethod
    def from_dict(cls, data: dict) -> "JobStatus":
        return cls(**{k: data.get(k) for k in ("id", "status", "failure", "started_at", "finished_at", "result")},
                   outputs=list(data.get("outputs") or []))


def parse_params(pairs: Sequence[str]) -> dict[str, Any]:
    """``-p name=value``: JSON when the value parses as JSON (3, 0.1, true, [1]), else the text."""
    import json

    out: dict[str, Any] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise BadInput(f"-p {pair!r} is not NAME=VALUE, e.g. -p lr=0.01")
        try:
            out[name.strip()] = json.loads(value)
        except ValueError:
            out[name.strip()] = value
    return out


def check_id(job_id: str) -> str:
    if not _ID.match(job_id or ""):
        raise BadInput(f"{job_id!r} is not a job id; `kagg jobs list NAME` lists them")
    return job_id


class JobsClient:
    """The ``/jobs`` of one endpoint (registry name or URL)."""

    def __init__(self, target: str, registry: Optional[Registry] = None, timeout: float = 60.0,
                 retry_s: float = 120.0, sleep: Callable[[float], None] = time.sleep):
        self.target = target
        self.registry = registry
        self.timeout = timeout
        self.retry_s = retry_s  # how long 429/503 answers (with Retry-After) are waited out
        self.sleep = sleep

    def _call(self, method: str, path: str, payload: Any = None, headers: Optional[dict[str, str]] = None,
              query: Sequence[tuple[str, str]] = (), wait_busy: bool = True) -> Any:
        from kagg.invoke import call

        started = time.monotonic()
        while True:
            result = call(self.target, self.registry, payload=payload, method=method, path=path, query=query,
                          timeout=self.timeout, raise_for_status=False, headers=headers)
            if result.ok:
                return result.data
            wait = _retry_after(result.headers.get("retry-after"))
            if (wait is None or not wait_busy or result.status not in (429, 503)
                    or time.monotonic() - started + wait > self.retry_s):
                raise _failure(result)
            self.sleep(wait)

    # -- the calls -------------------------------------------------------------------------
    def start(self, parameters: Optional[dict] = None, key: Optional[str] = None,
              wait_busy: bool = True) -> dict:
        """``POST /jobs``: ``{"id", "status", "status_url"}``. ``key``: the Idempotency-Key
        (default: a fresh one, reused while a busy answer is waited out)."""
        key = key or f"kagg-{secrets.token_hex(12)}"
        return self._call("POST", "/jobs", parameters or {}, {"Idempotency-Key": key}, wait_busy=wait_busy)

    def status(self, job_id: str) -> JobStatus:
        return JobStatus.from_dict(self._call("GET", f"/jobs/{check_id(job_id)}"))

    def logs(self, job_id: str) -> dict:
        return self._call("GET", f"/jobs/{check_id(job_id)}/logs")

    def list(self, limit: int = 20) -> list[dict]:
        if not 1 <= limit <= 100:
            raise BadInput(f"--limit {limit}: give 1 to 100")
        return list((self._call("GET", "/jobs", query=[("limit", str(limit))]) or {}).get("jobs") or [])

    def stop(self, job_id: str) -> dict:
        return self._call("DELETE", f"/jobs/{check_id(job_id)}")

    def wait(self, job_id: str, on_status: Optional[Callable[[JobStatus], None]] = None,
             first_s: float = 5.0, most_s: float = 60.0, timeout_s: Optional[float] = None) -> JobStatus:
        """Poll ``GET /jobs/ID`` (backing off from ``first_s`` to ``most_s``) until the job ends."""
        started, wait, last = time.monotonic(), first_s, None
        while True:
            state = self.status(job_id)
            if on_status is not None and state.status != last:
                on_status(state)
            last = state.status
            if state.finished:
                return state
            if timeout_s is not None and time.monotonic() - started + wait > timeout_s:
                raise OperationFailed(f"job {job_id} is still {state.status} after {timeout_s:g} s; "
                                      f"follow it with `kagg jobs status {self.target} {job_id}`")
            self.sleep(wait)
            wait = min(most_s, wait * 1.5)

    def follow_logs(self, job_id: str, on_text: Callable[[str], None], first_s: float = 5.0,
                    most_s: float = 30.0) -> str:
        """Print the log as it grows until the job ends; returns the final status."""
        shown, wait = 0, first_s
        while True:
            data = self.logs(job_id)
            text = data.get("log") or ""
            if len(text) > shown:
                on_text(text[shown:])
                shown, wait = len(text), first_s
            if data.get("status") in FINISHED:
                return str(data.get("status"))
            self.sleep(wait)
            wait = min(most_s, wait * 1.5)

    def download(self, job_id: str, dest: Path) -> list[Any]:
        """The job's outputs into ``dest`` (from Kaggle's links, sizes checked); the files written."""
        from kagg.kaggle.download import Expected, download_files

        state = self.status(job_id)
        if not state.finished:
            raise BadInput(f"job {job_id} is {state.status}: its outputs exist once it has ended "
                           f"(`kagg jobs start ... --wait`, or `kagg jobs status {self.target} {job_id}`)")
        files = [(o["name"], o["url"]) for o in state.outputs if o.get("name") and o.get("url")]
        expected = {o["name"]: Expected(size=o.get("size")) for o in state.outputs if o.get("size") is not None}
        return download_files(files, Path(dest), expected)


def _retry_after(value: Optional[str]) -> Optional[float]:
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def _failure(result: Any) -> Exception:
    message = f"{result.url} answered {result.status}: {result.error_message()}"
    if result.status == 400:
        return BadInput(message)
    return OperationFailed(message)
