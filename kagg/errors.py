"""Errors that reach the user as one line, with the exit code they imply.

Every error kagg raises on purpose is a :class:`KaggError`; the CLI prints
``Error: <message>`` and exits with ``exit_code``. Anything else is a bug and
only shows a traceback with ``--debug``.
"""

from __future__ import annotations


#: error codes clouds use for "slow down" or "try again" (boto3's ClientError codes and kin):
#: the one list that both the providers' retries and ``kagg batch``'s item retries read
TRANSIENT_CODES = frozenset({
    "Throttling", "ThrottlingException", "ThrottledException", "TooManyRequestsException",
    "RequestLimitExceeded", "RequestThrottled", "RequestThrottledException", "SlowDown",
    "ProvisionedThroughputExceededException", "ServiceUnavailable", "ServiceUnavailableException",
    "ServiceException", "InternalFailure", "InternalError", "InternalServerError",
    "InternalServiceError", "RequestTimeout", "RequestTimeoutException", "PriorRequestNotComplete",
    "ResourceNotReadyException", "ResourceConflictException", "EC2ThrottledException",
})


class KaggError(Exception):
    """Base of kagg's own errors: a one-line message for the user."""

    exit_code = 1

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class BadInput(KaggError):
    """The user asked for something invalid (exit code 2). Nothing was changed."""

    exit_code = 2


class OperationFailed(KaggError):
    """A valid request could not be carried out (exit code 1).

    Raised by a provider's ``apply``, ``endpoint`` and ``nothing_left`` tell kagg.deploy what to
    record (see :class:`DeployFailed`); by default the entry stays ``pending``.
    """

    exit_code = 1
    endpoint = None
    nothing_left = False


class DeployFailed(OperationFailed):
    """A provider's ``apply`` failed; says what the registry should now record.

    ``endpoint``: what is serving now (e.g. the previous version, restarted) — recorded as is.
    ``nothing_left``: the provider removed everything this attempt made — the previous entry
    (or none) is put back. Neither: the entry stays ``pending`` and `kagg delete` or a
    redeploy finishes the job.
    """

    def __init__(self, message: str, endpoint=None, nothing_left: bool = False):
        super().__init__(message)
        self.endpoint = endpoint
        self.nothing_left = nothing_left


class RegistryError(BadInput):
    """The registry file cannot be used (it does not parse, or has the wrong shape)."""


class NotFound(BadInput):
    """A named thing (endpoint, provider) does not exist."""


class TransientError(OperationFailed):
    """A failure that may pass if the same request is made again (throttling, 5xx, a reset).

    ``kagg batch`` retries an item whose error has ``transient = True``; providers
    raise this (or set the attribute on their own error) after their own retries ran out.
    """

    transient = True
