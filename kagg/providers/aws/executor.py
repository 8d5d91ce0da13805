"""The mutating half of a deploy: replay a plan's calls in order, and wait where it says so.

The executor decides nothing: it fills the placeholders (the zip's bytes,
the ARN of a role made a moment ago), makes each call through the retry
policy, and runs botocore's waiters for the "(read)" steps. What the calls
return that the registry needs (role and function ARNs, the URL) comes back
as an :class:`Outcome`.

A create whose answer was lost, or that meets "already exists" (a parallel
batch on a fresh account: every item planned CreateRole), is not an error
when what it would have made is there: :func:`recovery` reads it back.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable, Optional

from kagg.errors import OperationFailed
from kagg.providers.aws.planner import ROLE_ARN, ZIP, Call
from kagg.providers.aws.remote import ClientFor, policy_sids
from kagg.providers.aws.retry import AWSCallFailed, RetryPolicy, call

log = logging.getLogger("kagg.aws")


@dataclass
class Outcome:
    """What the calls told us; fields stay as planned when no call changed them."""

    role_arn: Optional[str]
    function_arn: Optional[str]
    url: Optional[str]


def execute(calls: list[Call], client: ClientFor, region: str, policy: RetryPolicy,
            read_zip: Callable[[], bytes], outcome: Outcome, code_sha256: str) -> Outcome:
    """Make ``calls`` in order; ``outcome`` starts with what the plan already knew.

    ``code_sha256`` (Lambda's spelling of the zip's sha256) tells a function this
    deploy created from one someone else did.
    """
    values: dict[str, Any] = {ROLE_ARN: outcome.role_arn}
    for c in calls:
        api = client(c.service, region)
        if c.waiter:
            wait(c, api, policy)
            continue
        if ZIP in placeholders(c.kwargs) and ZIP not in values:
            values[ZIP] = read_zip()
        kwargs = fill(c.kwargs, values)
        result = call(getattr(api, snake(c.operation)), policy, recover=recovery(c, api, policy, code_sha256),
                      **kwargs)
        log.info("aws: %s done", c.action)
        if c.operation == "CreateRole":
            values[ROLE_ARN] = outcome.role_arn = result["Role"]["Arn"]
        elif c.operation in ("CreateFunction", "UpdateFunctionCode", "UpdateFunctionConfiguration"):
            outcome.function_arn = result.get("FunctionArn") or outcome.function_arn
        elif c.operation in ("CreateFunctionUrlConfig", "UpdateFunctionUrlConfig"):
            outcome.url = result.get("FunctionUrl") or outcome.url
    return outcome


def recovery(c: Call, api: Any, policy: RetryPolicy, code_sha256: str) -> Optional[Callable[[], Any]]:
    """For a create, a read that returns what the create would have returned if its effect is
    there (and None if not); None for calls that are safe to repeat as they are."""
    kw = c.kwargs
    if c.operation == "CreateRole":
        return lambda: call(api.get_role, policy, missing_ok=True, RoleName=kw["RoleName"])

    if c.operation == "CreateFunction":
        def function() -> Optional[dict]:
            found = call(api.get_function, policy, missing_ok=True, FunctionName=kw["FunctionName"])
            if found is None or found["Configuration"].get("CodeSha256") != code_sha256:
                return None
            wanted = kw.get("Tags") or {}
            tags = found.get("Tags") or {}
            return found["Configuration"] if all(tags.get(k) == v for k, v in wanted.items()) else None
        return function

    if c.operation == "CreateFunctionUrlConfig":
        def url() -> Optional[dict]:
            found = call(api.get_function_url_config, policy, missing_ok=True, FunctionName=kw["FunctionName"])
            return found if found is not None and found.get("AuthType") == kw["AuthType"] else None
        return url

    if c.operation == "AddPermission":
        def permission() -> Optional[dict]:
            found = call(api.get_policy, policy, missing_ok=True, FunctionName=kw["FunctionName"])
            return {"Statement": kw["StatementId"]} if kw["StatementId"] in policy_sids(found) else None
        return permission

    if c.operation == "CreateBucket":
        return lambda: call(api.head_bucket, policy, missing_ok=True, Bucket=kw["Bucket"])
    return None


def wait(c: Call, client: Any, policy: RetryPolicy) -> None:
    """A botocore waiter, started again if its polling call meets a transient error."""
    from botocore.exceptions import WaiterError

    waiter = client.get_waiter(c.waiter)

    def wait_once() -> None:
        waiter.wait(**c.kwargs, WaiterConfig={"Delay": policy.waiter_delay, "MaxAttempts": policy.waiter_attempts})

    wait_once.__name__ = f"GetFunction (waiting for {c.waiter})"  # how a failure will name the call
    try:
        call(wait_once, policy)
    except AWSCallFailed as failure:
        exc = failure.__cause__
        if not isinstance(exc, WaiterError) or "Error" in (exc.last_response or {}):
            raise
        config = (exc.last_response or {}).get("Configuration", {})
        reason = config.get("StateReason") or config.get("LastUpdateStatusReason") or exc.kwargs.get("reason")
        raise OperationFailed(f"Lambda function {c.kwargs.get('FunctionName')} did not become ready "
                              f"({c.waiter}): {reason}; see its CloudWatch logs or the Lambda console") from exc


def placeholders(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set().union(*(placeholders(v) for v in value.values())) if value else set()
    return {value} if isinstance(value, str) and value.startswith("<") and value.endswith(">") else set()


def fill(value: Any, values: dict[str, Any]) -> Any:
    if isinstance(value, dict):
        return {k: fill(v, values) for k, v in value.items()}
    if isinstance(value, str) and value in values:
        return values[value]
    return value


def snake(operation: str) -> str:
    """boto3's method name for an operation: "CreateFunction" -> "create_function"."""
    from botocore import xform_name

    return xform_name(operation)
