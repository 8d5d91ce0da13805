"""Calling Google: which errors are worth retrying, bounded in attempts and in time.

The SDK's own retries are switched off (``retry=None`` on every call) so that
one policy, this one, decides: 429 (quota), 503 (unavailable), ABORTED
(a concurrent change, e.g. an IAM policy's etag) and dropped connections are
retried with tenacity — exponential backoff with full jitter, bounded in
attempts and in seconds; anything else stops at once and becomes a
:class:`GCPCallFailed` whose message is one line (see :mod:`.failures`).
Every call also has its own deadline (``policy.call_timeout``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable

from tenacity import Retrying, retry_if_exception, stop_after_attempt, stop_after_delay, wait_random_exponential

from kagg.errors import OperationFailed
from kagg.providers.retry_policy import Backoff

log = logging.getLogger("kagg.gcp")
#: ``attempts=3 base=0.1 cap=1 max_seconds=20 poll=0.05`` (commas or spaces): the policy's values here
RETRY_ENV = "KAGG_GCP_RETRY"

#: HTTP statuses and google.rpc status names worth another try
TRANSIENT_STATUS = frozenset({429, 500, 502, 503, 504})
TRANSIENT_NAMES = frozenset({"RESOURCE_EXHAUSTED", "UNAVAILABLE", "ABORTED", "INTERNAL", "DEADLINE_EXCEEDED"})


@dataclass(frozen=True)
class RetryPolicy(Backoff):
    """How hard to try; ``poll`` is the wait between polls of a long-running operation."""

    ENV = RETRY_ENV

    call_timeout: float = 60.0
    poll: float = 2.0
    operation_seconds: float = 1800.0  # a build of big requirements takes minutes


class GCPCallFailed(OperationFailed):
    """A Google call that failed for good; ``status`` is the google.rpc status name (or the HTTP code)."""

    def __init__(self, message: str, status: str = "", transient: bool = False):
        super().__init__(message)
        self.status = status
        #: True when retries ran out on a transient error: ``kagg batch`` may try the item again
        self.transient = transient


def status_name(exc: BaseException) -> str:
    """google.rpc's status name of an API error ("NOT_FOUND", "ABORTED"), or ""."""
    response = getattr(exc, "response", None)
    try:
        return str(response.json()["error"].get("status") or "")  # type: ignore[union-attr]
    except Exception:  # noqa: BLE001 - not a JSON error body
        grpc = getattr(exc, "grpc_status_code", None)
        return getattr(grpc, "name", "") or ""


def http_code(exc: BaseException) -> int:
    code = getattr(exc, "code", None)
    return code if isinstance(code, int) else 0


def is_transient(exc: BaseException) -> bool:
    """True for errors another try may not meet: quota, unavailable, aborted, a dropped connection."""
    import requests
    from google.api_core import exceptions as gexc
    from google.auth import exceptions as auth_exc

    if isinstance(exc, (requests.ConnectionError, requests.Timeout)):
        return True
    if isinstance(exc, auth_exc.TransportError):
        return True
    if isinstance(exc, gexc.GoogleAPICallError):
        return http_code(exc) in TRANSIENT_STATUS or status_name(exc) in TRANSIENT_NAMES
    return False


def is_missing(exc: BaseException) -> bool:
    from google.api_core import exceptions as gexc

    return isinstance(exc, gexc.NotFound)


def call(fn: Callable[..., Any], policy: RetryPolicy, what: str, *, missing_ok: bool = False,
         project: str = "", sdk: bool = True, **kwargs: Any) -> Any:
    """``fn(**kwargs, retry=None, timeout=…)`` (an SDK method), retrying transient errors.

    ``what`` names the call in messages ("create function f"); ``missing_ok`` turns a 404 into None.
    ``sdk=False``: ``fn(**kwargs)`` as it is (a read-modify-write of several calls, each with its own
    deadline, retried as a whole).
    """
    from kagg.providers.gcp.failures import describe

    def before_sleep(state: Any) -> None:
        exc = state.outcome.exception() if state.outcome is not None else None
        wait = state.next_action.sleep if state.next_action is not None else 0.0
        log.warning("retrying %s in %.1f s (%s)", what, wait, _short(exc))

    retrying = Retrying(stop=stop_after_attempt(policy.attempts) | stop_after_delay(policy.max_seconds),
                        wait=wait_random_exponential(multiplier=policy.base, max=policy.cap),
                        retry=retry_if_exception(is_transient), before_sleep=before_sleep, reraise=True)
    attempts = 0
    try:
        for attempt in retrying:
            with attempt:
                attempts = attempt.retry_state.attempt_number
                return fn(**kwargs, retry=None, timeout=policy.call_timeout) if sdk else fn(**kwargs)
    except Exception as exc:  # noqa: BLE001 - every failure becomes one line below
        if missing_ok and is_missing(exc):
            return None
        failure = describe(exc, what, project, attempts=attempts, gave_up=is_transient(exc))
        if failure is None:
            raise
        raise failure from exc
    return None  # pragma: no cover - tenacity either returns or raises


def _short(exc: Any) -> str:
    text = " ".join(str(exc).split())
    return text[:200]
