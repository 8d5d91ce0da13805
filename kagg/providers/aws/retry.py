"""Calling AWS: which errors are worth retrying, and one-line messages for the rest.

botocore's own retries are switched off in kagg's clients (see ``client_config``)
so that a single policy, this one, decides: transient errors (throttling, 5xx,
dropped connections, an update still in progress, a role IAM has not yet
propagated to Lambda) are retried with tenacity — exponential backoff with
full jitter, bounded in attempts and in time; anything else stops at once and
becomes an :class:`AWSCallFailed` whose message is one line naming the missing
permission or the rejected value.

A mutating call whose reply was lost (a read timeout, a connection dropped
after the request went out) may have been made: before repeating it, the
caller's ``recover`` reads whether it was, so a create is not sent twice and
"already exists" is not taken for a failure.

Each retry is said as it happens (a warning of the ``kagg.aws`` logger, which
reaches stderr when nothing else is configured), and a failure to reach AWS
at all is named as such, not as throttling.
"""

from __future__ import annotations

import logging
import os
import re
import urllib.parse
from dataclasses import dataclass
from typing import Any, Callable, Optional

from tenacity import (Retrying, retry_if_exception, stop_after_attempt, stop_after_delay,
                      wait_random_exponential)

from kagg.errors import TRANSIENT_CODES, OperationFailed
from kagg.providers.retry_policy import Backoff

log = logging.getLogger("kagg.aws")
#: ``attempts=3 base=0.1 cap=1 max_seconds=20`` (commas or spaces): the retry policy's defaults here
RETRY_ENV = "KAGG_AWS_RETRY"

#: codes that mean "it is not there"; callers may ask for None instead of an error
MISSING_CODES = frozenset({
    "ResourceNotFoundException", "NoSuchEntity", "NoSuchEntityException", "NoSuchBucket",
    "NoSuchKey", "404", "NotFound",
})

ACCESS_CODES = frozenset({
    "AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "AuthorizationError", "403",
})

#: codes that mean the credentials themselves are wrong, not their permissions
CREDENTIAL_CODES = frozenset({
    "UnrecognizedClientException", "InvalidClientTokenId", "ExpiredToken", "ExpiredTokenException",
    "SignatureDoesNotMatch", "InvalidSignatureException", "InvalidAccessKeyId",
})

#: IAM takes a few seconds to show a new role to Lambda; AWS says so with this message
_ROLE_NOT_READY = re.compile(r"cannot be assumed by Lambda|role defined for the function|"
                             r"execution role does not have permissions", re.I)
_PERMISSION = re.compile(r"not authorized to perform:?\s*([A-Za-z0-9-]+:[A-Za-z0-9*]+)")


@dataclass(frozen=True)
class RetryPolicy(Backoff):
    """How hard to try (see :class:`Backoff`), and how boto3's waiters poll."""

    ENV = RETRY_ENV
    KEYS = {"attempts": "retry_attempts", "max_seconds": "retry_max_seconds", "base": "retry_base",
            "cap": "retry_cap", "waiter_delay": "waiter_delay", "waiter_attempts": "waiter_attempts"}

    waiter_delay: int = 2
    waiter_attempts: int = 150


class AWSCallFailed(OperationFailed):
    """An AWS call that failed for good; ``code`` is AWS's error code (or the exception's name)."""

    def __init__(self, message: str, code: str = "", operation: str = "", transient: bool = False):
        super().__init__(message)
        self.code = code
        self.operation = operation
        #: True when retries ran out on a transient error: ``kagg batch`` may try the item again
        self.transient = transient


def error_code(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        if code:
            return str(code)
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if status:
            return str(status)
    return type(exc).__name__


def _status(exc: BaseException) -> int:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return int(response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    return 0


def _message(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        err = response.get("Error", {})
        msg = err.get("Message") or err.get("message")
        if msg:
            return " ".join(str(msg).split())
    return " ".join(str(exc).split())


def is_transient(exc: BaseException) -> bool:
    """True for errors that another try may not meet."""
    from botocore.exceptions import ClientError, ConnectionError, HTTPClientError, WaiterError

    if isinstance(exc, (HTTPClientError, ConnectionError)):
        return True  # connection reset or refused, read timeout, endpoint unreachable
    if isinstance(exc, WaiterError):  # a waiter stops at the first error of its polling call
        last = exc.last_response or {}
        if "Error" not in last:
            return False  # it timed out or saw a failed state: waiting again will not help
        exc = ClientError(last, "Wait")
    if not isinstance(exc, ClientError):
        return False
    code, message = error_code(exc), _message(exc)
    if code == "ResourceConflictException":
        return "exist" not in message.lower()  # "already exists" will not change by waiting
    if code in TRANSIENT_CODES:
        return True
    if code in ("InvalidParameterValueException", "InvalidParameterValue") and _ROLE_NOT_READY.search(message):
        return True
    status = _status(exc)
    return status == 429 or status >= 500


def connection_problem(exc: BaseException) -> Optional[str]:
    """What went wrong on the way to AWS ("cannot connect to http://…"), or None for AWS's own answers."""
    from botocore.exceptions import (ConnectionClosedError, ConnectTimeoutError, EndpointConnectionError,
                                     HTTPClientError, ProxyConnectionError, ReadTimeoutError, SSLError)

    kwargs = getattr(exc, "kwargs", None) or {}
    url = _origin(str(kwargs.get("endpoint_url") or ""))
    if isinstance(exc, ProxyConnectionError):
        return f"cannot connect to the proxy {_origin(str(kwargs.get('proxy_url') or ''))}"
    if isinstance(exc, SSLError):
        return f"TLS failed with {url}"
    if isinstance(exc, ConnectTimeoutError):
        return f"timed out connecting to {url}"
    if isinstance(exc, EndpointConnectionError):
        return f"cannot connect to {url}"
    if isinstance(exc, ReadTimeoutError):
        return f"no answer from {url} in time"
    if isinstance(exc, ConnectionClosedError):
        return f"the connection to {url} closed before an answer"
    if isinstance(exc, HTTPClientError):
        return f"the connection to {url} failed"
    return None


def _origin(url: str) -> str:
    """``http://127.0.0.1:9/2015-03-31/functions`` -> ``http://127.0.0.1:9``."""
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else (url or "AWS")


def _network_hint(service: str) -> str:
    for var in (f"AWS_ENDPOINT_URL_{service.upper()}", "AWS_ENDPOINT_URL"):
        if os.environ.get(var):
            return f"check that something answers there ({var} is {os.environ[var]})"
    return "check the network connection and any proxy (HTTPS_PROXY)"


def reason(exc: BaseException) -> str:
    """A few words on why a call failed, for the retry notices."""
    return connection_problem(exc) or f"{error_code(exc)}: {_message(exc)}"


def describe_failure(exc: BaseException, operation: str, service: str, gave_up: bool = False,
                     attempts: int = 0) -> AWSCallFailed:
    """The one-line error for a failed call: which permission is missing, or what AWS refused."""
    code, message = error_code(exc), _message(exc)
    problem = connection_problem(exc)
    if problem is not None:
        problem = problem.replace("cannot connect to ", "cannot connect to the endpoint URL ", 1)
        tries = f" after {attempts} attempts" if attempts > 1 else ""
        text = f"AWS {operation} failed{tries}: {problem}; {_network_hint(service)}"
    elif gave_up:
        text = (f"AWS {operation} still failing after {attempts} attempts ({code}: {message}); "
                f"AWS may be throttling or unavailable, try again in a few minutes")
    elif code in ACCESS_CODES:
        found = _PERMISSION.search(message)
        permission = found.group(1) if found else f"{service}:{operation}"
        text = (f"AWS refused {operation}: your credentials lack the permission {permission} ({code}); "
                f"grant it to your IAM user or role, or use a profile that has it")
    elif code in CREDENTIAL_CODES:
        text = (f"AWS did not accept your credentials for {operation} ({code}: {message}); "
                f"refresh them (`aws sso login`, `aws configure`) or check AWS_PROFILE")
    elif code in MISSING_CODES:
        text = f"AWS {operation}: not found ({code}: {message})"
    else:
        text = f"AWS rejected {operation} ({code}): {message}"
    return AWSCallFailed(text, code=code, operation=operation, transient=gave_up)


def is_ambiguous(exc: BaseException) -> bool:
    """True when the request may have reached AWS but its answer did not come back.

    A read timeout or a connection dropped mid-call; not a connection that was
    never made (refused, unreachable, a connect timeout), which sent nothing.
    """
    from botocore.exceptions import ConnectionError, HTTPClientError

    return isinstance(exc, HTTPClientError) and not isinstance(exc, ConnectionError)


def already_exists(exc: BaseException) -> bool:
    """AWS's "it is there already", in its several spellings."""
    code = error_code(exc)
    if code in ("EntityAlreadyExists", "BucketAlreadyOwnedByYou", "ResourceAlreadyExistsException"):
        return True
    return code == "ResourceConflictException" and "exist" in _message(exc).lower()


def call(fn: Callable[..., Any], policy: RetryPolicy, *, missing_ok: bool = False,
         on_retry: Optional[Callable[[BaseException], None]] = None,
         recover: Optional[Callable[[], Any]] = None, **kwargs: Any) -> Any:
    """Call ``fn(**kwargs)`` (a boto3 client method), retrying transient errors.

    ``missing_ok`` turns "not found" into ``None``, for the read-only look-ups of
    a plan and for deletes of things that may already be gone.

    ``recover`` (for mutating calls) reads whether the call's effect is already
    there, returning what the call would have returned, or None. It is asked
    before a call whose answer was lost is repeated, and when the call fails with
    "already exists" (another process made it first, or an earlier attempt did):
    a non-None answer is the call's result.
    """
    operation, service = _names(fn)
    attempts = 0
    target = kwargs.get("FunctionName") or kwargs.get("RoleName") or kwargs.get("Bucket")
    what = f"{operation} of {target}" if target else operation

    def before_sleep(state: Any) -> None:
        if state.outcome is None:
            return
        exc = state.outcome.exception()
        wait = state.next_action.sleep if state.next_action is not None else 0.0
        log.warning("retrying %s in %.1f s (%s)", what, wait, reason(exc))
        if on_retry is not None:
            on_retry(exc)

    def attempt_once() -> Any:
        try:
            return fn(**kwargs)
        except Exception as exc:  # noqa: BLE001 - only asked whether the effect is there
            if recover is not None and (is_ambiguous(exc) or already_exists(exc)):
                found = recover()
                if found is not None:
                    return found
            raise

    retrying = Retrying(
        stop=stop_after_attempt(policy.attempts) | stop_after_delay(policy.max_seconds),
        wait=wait_random_exponential(multiplier=policy.base, max=policy.cap),
        retry=retry_if_exception(is_transient),
        before_sleep=before_sleep,
        reraise=True,
    )
    try:
        for attempt in retrying:
            with attempt:
                attempts = attempt.retry_state.attempt_number
                return attempt_once()
    except Exception as exc:  # noqa: BLE001 - every failure becomes one line below
        from botocore.exceptions import BotoCoreError, ClientError

        if missing_ok and error_code(exc) in MISSING_CODES:
            return None
        if not isinstance(exc, (ClientError, BotoCoreError)):
            raise
        raise describe_failure(exc, operation, service, gave_up=is_transient(exc), attempts=attempts) from exc
    return None  # pragma: no cover - tenacity either returns or raises


def _names(fn: Callable[..., Any]) -> tuple[str, str]:
    """("CreateFunction", "lambda") for ``lambda_client.create_function``."""
    client = getattr(fn, "__self__", None)
    meta = getattr(client, "meta", None)
    py_name = getattr(fn, "__name__", "call")
    if meta is None:
        return py_name, "aws"
    operation = meta.method_to_api_mapping.get(py_name, py_name)
    service = meta.service_model.signing_name or meta.service_model.endpoint_prefix
    return operation, service


def client_config(user_agent: str = "kagg") -> Any:
    """A botocore Config with botocore's retries off (this module retries) and sane timeouts."""
    from botocore.config import Config

    return Config(retries={"total_max_attempts": 1, "mode": "standard"}, connect_timeout=10,
                  read_timeout=120, user_agent_extra=user_agent)
