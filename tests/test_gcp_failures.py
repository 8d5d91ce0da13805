"""One-line messages for Google's errors, from the exception objects google-api-core makes.

The CLI tests meet these through the stand-in; here the less common shapes
(no ErrorInfo, a message without ERROR lines, a timeout) are checked directly.
"""

from __future__ import annotations

import pytest
from google.api_core import exceptions as gexc

from kagg.providers.gcp.failures import describe, operation_failure
from kagg.providers.gcp.retry import GCPCallFailed, RetryPolicy, call, is_transient


def test_disabled_api_found_from_the_message_alone():
    exc = gexc.PermissionDenied("Cloud Run Admin API has not been used in project 42 before or it is disabled. "
                                "Enable it by visiting https://console.developers.google.com/apis/api/"
                                "run.googleapis.com/overview?project=42 then retry.")
    text = describe(exc, "read the IAM policy of f", "proj-123456").message
    assert "the run.googleapis.com API is not enabled in project proj-123456" in text
    assert "gcloud services enable run.googleapis.com cloudfunctions.googleapis.com" in text


def test_permission_from_the_message_when_no_metadata():
    exc = gexc.Forbidden("Caller is missing permission 'iam.serviceaccounts.actAs' on service account x; "
                         "Permission 'iam.serviceAccounts.actAs' denied on service account x")
    assert "lack the permission iam.serviceAccounts.actAs" in describe(exc, "create function f", "p").message


def test_other_errors_keep_googles_words():
    exc = gexc.InvalidArgument("Invalid value for service_config.available_memory: 3Gi")
    text = describe(exc, "update function f", "p").message
    assert text.startswith("Google Cloud rejected update function f") and "3Gi" in text


def test_a_build_failure_without_error_lines_shows_googles_message_and_the_url():
    message = ("Build failed with status: TIMEOUT. For more details see the logs at "
               "https://console.cloud.google.com/cloud-build/builds;region=us-central1/abc?project=42.")
    failure = operation_failure("the deploy of function f", "f", 3, message, "us-central1", "p")
    assert failure.status == "BUILD_FAILED" and "Build failed with status: TIMEOUT" in failure.message
    assert "(build log: https://console.cloud.google.com/cloud-build/builds;region=us-central1/abc?project=42)" \
        in failure.message


def test_an_unknown_operation_error_is_said_with_its_code():
    failure = operation_failure("the update of function f", "f", 9, "Precondition failed", "r", "p")
    assert failure.message == "the update of function f failed (code 9): Precondition failed"


@pytest.mark.parametrize("exc,transient", [
    (gexc.TooManyRequests("quota"), True), (gexc.ServiceUnavailable("down"), True),
    (gexc.InternalServerError("oops"), True), (gexc.NotFound("x"), False), (gexc.PermissionDenied("x"), False),
])
def test_what_is_transient(exc, transient):
    assert is_transient(exc) is transient


def test_call_retries_then_gives_up_with_the_count():
    tries = []

    def flaky(**kwargs):
        tries.append(kwargs)
        raise gexc.ServiceUnavailable("The service is currently unavailable.")

    policy = RetryPolicy(attempts=3, base=0.001, cap=0.002, call_timeout=5)
    with pytest.raises(GCPCallFailed) as info:
        call(flaky, policy, "get function f", project="p", name="n")
    assert len(tries) == 3 and tries[0] == {"name": "n", "retry": None, "timeout": 5}
    assert "still failing after 3 attempts" in info.value.message and info.value.transient


def test_missing_ok_turns_404_into_none():
    def gone(**kwargs):
        raise gexc.NotFound("Resource 'x' was not found")

    assert call(gone, RetryPolicy(), "get function f", missing_ok=True) is None
