"""Which AWS errors kagg retries, and how it words the others (kagg/providers/aws/retry.py)."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError, ConnectionClosedError, EndpointConnectionError, ReadTimeoutError

from kagg.providers.aws.retry import AWSCallFailed, RetryPolicy, call, describe_failure, is_transient


def client_error(code: str, message: str = "m", status: int = 400, operation: str = "CreateFunction") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message},
                        "ResponseMetadata": {"HTTPStatusCode": status}}, operation)


@pytest.mark.parametrize("exc", [
    client_error("TooManyRequestsException", status=429),
    client_error("ThrottlingException"),
    client_error("Throttling"),
    client_error("ServiceException", status=500),
    client_error("Whatever", status=503),
    client_error("ResourceConflictException", "The operation cannot be performed at this time. "
                 "An update is in progress for resource", 409),
    client_error("InvalidParameterValueException", "The role defined for the function cannot be assumed by Lambda."),
    EndpointConnectionError(endpoint_url="https://lambda.us-east-1.amazonaws.com"),
    ConnectionClosedError(endpoint_url="https://lambda.us-east-1.amazonaws.com"),
    ReadTimeoutError(endpoint_url="https://lambda.us-east-1.amazonaws.com"),
])
def test_transient(exc):
    assert is_transient(exc)


@pytest.mark.parametrize("exc", [
    client_error("AccessDeniedException", status=403),
    client_error("InvalidParameterValueException", "Unzipped size must be smaller than 262144000 bytes"),
    client_error("ResourceConflictException", "Function already exist: f", 409),
    client_error("ResourceNotFoundException", status=404),
    client_error("ValidationException"),
    ValueError("not an AWS error"),
])
def test_permanent(exc):
    assert not is_transient(exc)


def test_access_denied_names_the_permission_from_the_message():
    exc = client_error("AccessDeniedException", "User: arn:aws:iam::1:user/u is not authorized to perform: "
                       "iam:PassRole on resource: arn:aws:iam::1:role/r", 403)
    failure = describe_failure(exc, "CreateFunction", "lambda")
    assert "iam:PassRole" in str(failure) and failure.code == "AccessDeniedException"


def test_access_denied_without_details_names_the_operation():
    failure = describe_failure(client_error("AccessDenied", "Access Denied", 403), "PutObject", "s3")
    assert "s3:PutObject" in str(failure)


def test_expired_credentials_say_how_to_refresh():
    failure = describe_failure(client_error("ExpiredTokenException", "The security token included in the "
                                            "request is expired", 403), "GetFunction", "lambda")
    assert "aws sso login" in str(failure) and "permission" not in str(failure)


def test_messages_are_one_line():
    failure = describe_failure(client_error("ValidationException", "line one\nline two"), "CreateFunction", "lambda")
    assert "\n" not in str(failure) and "line one line two" in str(failure)


class FakeClient:
    """Enough of a boto3 client for ``call``: a method bound to an object with ``meta``."""

    class meta:  # noqa: N801 - mirrors boto3's attribute name
        method_to_api_mapping = {"create_function": "CreateFunction"}

        class service_model:  # noqa: N801
            signing_name = "lambda"
            endpoint_prefix = "lambda"

    def __init__(self, errors):
        self.errors = list(errors)
        self.calls = 0

    def create_function(self, **kwargs):
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return {"ok": kwargs}


FAST = RetryPolicy(attempts=4, max_seconds=10, base=0.001, cap=0.01)


def test_call_retries_transient_then_succeeds():
    client = FakeClient([client_error("ThrottlingException"), ConnectionClosedError(endpoint_url="u")])
    assert call(client.create_function, FAST, FunctionName="f") == {"ok": {"FunctionName": "f"}}
    assert client.calls == 3


def test_call_gives_up_after_the_attempts_and_marks_transient():
    client = FakeClient([client_error("ThrottlingException")] * 10)
    with pytest.raises(AWSCallFailed) as info:
        call(client.create_function, FAST, FunctionName="f")
    assert client.calls == 4 and info.value.transient and "after 4 attempts" in str(info.value)


def test_call_does_not_retry_permanent_errors():
    client = FakeClient([client_error("AccessDeniedException", status=403)])
    with pytest.raises(AWSCallFailed) as info:
        call(client.create_function, FAST)
    assert client.calls == 1 and "lambda:CreateFunction" in str(info.value) and not info.value.transient


def test_call_missing_ok_gives_none():
    client = FakeClient([client_error("ResourceNotFoundException", status=404)])
    assert call(client.create_function, FAST, missing_ok=True) is None


def test_time_bound_stops_before_the_attempts():
    client = FakeClient([client_error("ThrottlingException")] * 100)
    policy = RetryPolicy(attempts=100, max_seconds=0.2, base=0.05, cap=0.05)
    with pytest.raises(AWSCallFailed):
        call(client.create_function, policy)
    assert client.calls < 100


def test_policy_from_extra():
    policy = RetryPolicy.from_extra({"retry_attempts": "3", "retry_base": 0.1, "waiter_delay": 5})
    assert (policy.attempts, policy.base, policy.waiter_delay, policy.cap) == (3, 0.1, 5, RetryPolicy.cap)


def test_a_lost_reply_is_read_back_before_the_call_is_repeated():
    client = FakeClient([ReadTimeoutError(endpoint_url="u")])
    asked = []
    result = call(client.create_function, FAST, recover=lambda: asked.append(1) or {"found": True})
    assert result == {"found": True} and client.calls == 1 and asked == [1]


def test_a_lost_reply_with_nothing_made_is_repeated():
    client = FakeClient([ConnectionClosedError(endpoint_url="u")])
    assert call(client.create_function, FAST, recover=lambda: None, FunctionName="f") == {"ok": {"FunctionName": "f"}}
    assert client.calls == 2


def test_a_request_never_sent_is_repeated_without_reading():
    client = FakeClient([EndpointConnectionError(endpoint_url="u")])
    asked = []
    call(client.create_function, FAST, recover=lambda: asked.append(1))
    assert client.calls == 2 and asked == []


def test_already_exists_with_the_thing_there_is_success():
    client = FakeClient([client_error("EntityAlreadyExists", "Role with name r already exists.", 409)])
    assert call(client.create_function, FAST, recover=lambda: {"Role": {"Arn": "a"}}) == {"Role": {"Arn": "a"}}


def test_already_exists_without_recovery_stays_an_error():
    client = FakeClient([client_error("ResourceConflictException", "Function already exist: f", 409)])
    with pytest.raises(AWSCallFailed, match="already exist"):
        call(client.create_function, FAST, recover=lambda: None)
    assert client.calls == 1
