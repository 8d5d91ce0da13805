"""Decide the calls of a deploy from what exists: a pure function, after AWS Chalice's planner.

:func:`plan_calls` compares the artifact and the settings with a
:class:`~kagg.providers.aws.remote.RemoteState` and lists, in order, the
mutating calls that bring the account to the settings (with the waits between
them). No boto3, no I/O: the same inputs give the same list, and a test needs
no AWS stand-in. ``apply`` replays exactly this list, so ``--dry-run`` shows
what a real deploy does.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any, Optional

import kagg
from kagg.errors import BadInput
from kagg.model import Artifact, PlanStep
from kagg.providers.aws.remote import RemoteState
from kagg.providers.base import OWNER_TAG
from kagg.providers.aws.settings import (BASIC_POLICY, DEFAULT_ARCH, ROLE_NAME, SID_INVOKE, SID_URL, TAG,
                                         TRUST_POLICY, Settings, human)

#: stands for the zip's bytes, read only when a call needs them
ZIP = "<zip>"
#: stands for the ARN of the role that CreateRole makes
ROLE_ARN = "<role_arn>"


@dataclass(frozen=True)
class ArtifactInfo:
    """What the planner needs to know of an artifact."""

    function_name: str
    sha256: str  # hex, as in the artifact's file name
    size: int  # bytes, zipped

    @property
    def code_sha256(self) -> str:
        """The sha256 as Lambda reports ``CodeSha256``: base64 of the raw digest."""
        return base64.b64encode(bytes.fromhex(self.sha256)).decode("ascii")

    @classmethod
    def of(cls, artifact: Artifact, function_name: str) -> "ArtifactInfo":
        return cls(function_name, artifact.sha256, artifact.size)


@dataclass
class Call:
    """One AWS call of a plan; ``apply`` makes them in order. Placeholders (:data:`ZIP`,
    :data:`ROLE_ARN`) stand for values known only then."""

    service: str
    operation: str  # AWS's name: "CreateFunction"
    kwargs: dict[str, Any]
    description: str
    mutating: bool = True
    waiter: Optional[str] = None

    @property
    def action(self) -> str:
        return f"{self.service}:{self.operation}"

    def step(self) -> PlanStep:
        return PlanStep(self.action, self.description, self.mutating)


def plan_calls(artifact: ArtifactInfo, s: Settings, remote: RemoteState) -> list[Call]:
    """The calls, in order, that make the deployed function match ``artifact`` and ``s``."""
    calls: list[Call] = []
    name = artifact.function_name
    code, code_desc = _code(artifact, s, remote, calls)
    role_arn = _role(s, remote, calls)
    desired = s.function_config(name, role_arn)
    deployed = remote.function
    summary = f"{s.runtime}, {s.arch}, {s.memory} MB, {s.timeout} s"
    if deployed is None:
        calls.append(Call("lambda", "CreateFunction", {
            **desired, "Code": code, "Architectures": [s.arch], "Publish": False, "Tags": tags(name, s)},
            f"create function {name} ({summary}) from {code_desc}"))
        calls.append(wait("function_active_v2", name, "until the function is Active"))
    else:
        if s.owner is not None and remote.tags.get(OWNER_TAG) != s.owner:  # adopted, or made before owner tags
            calls.append(Call("lambda", "TagResource", {"Resource": deployed["FunctionArn"], "Tags": tags(name, s)},
                              f"tag {name} as this registry entry's ({OWNER_TAG}={s.owner})"))
        same_code = deployed.get("CodeSha256") == artifact.code_sha256
        if s.force or not same_code or deployed.get("Architectures", [DEFAULT_ARCH]) != [s.arch]:
            reason = "forced" if s.force and same_code else "changed"
            calls.append(Call("lambda", "UpdateFunctionCode",
                              {"FunctionName": name, **code, "Architectures": [s.arch], "Publish": False},
                              f"upload new code to {name} ({reason}; {code_desc})"))
            calls.append(wait("function_updated_v2", name, "until the code update is done"))
        changes = config_changes(deployed, desired)
        if changes:
            calls.append(Call("lambda", "UpdateFunctionConfiguration", desired,
                              f"update configuration of {name}: {', '.join(changes)}"))
            calls.append(wait("function_updated_v2", name, "until the configuration update is done"))
    _url(name, s, remote, calls)
    return calls


def tags(name: str, s: Settings) -> dict[str, str]:
    """The tags kagg keeps on a function: its endpoint, kagg's version, and the entry that owns it."""
    out = {TAG: name, "kagg:version": kagg.__version__}
    if s.owner is not None:
        out[OWNER_TAG] = s.owner
    return out


def is_unchanged(calls: list[Call], remote: RemoteState) -> bool:
    """True when the function exists and nothing would be changed."""
    return remote.function is not None and not any(c.mutating for c in calls)


def role_arn(s: Settings, remote: RemoteState) -> Optional[str]:
    """The execution role's ARN, or None when the plan creates it."""
    if s.role:
        return s.role
    return remote.role.arn if remote.role is not None else None


def code_location(artifact: ArtifactInfo, s: Settings, remote: RemoteState) -> Optional[dict[str, str]]:
    if artifact.size <= s.max_zip_bytes or remote.store is None:
        return None
    return {"bucket": remote.store.bucket, "key": remote.store.key}


def config_changes(deployed: dict, desired: dict) -> list[str]:
    """Names of the configuration fields whose deployed value differs from the desired one."""
    changes = []
    for key in ("Runtime", "Handler", "Role", "MemorySize", "Timeout"):
        if deployed.get(key) != desired[key] and not (key == "Role" and desired[key] == ROLE_ARN):
            changes.append(key)
    if (deployed.get("Environment") or {}).get("Variables", {}) != desired["Environment"]["Variables"]:
        changes.append("Environment")
    return changes


def wait(waiter: str, name: str, why: str) -> Call:
    return Call("lambda", "GetFunction", {"FunctionName": name}, f"wait {why} ({waiter})",
                mutating=False, waiter=waiter)


def _code(artifact: ArtifactInfo, s: Settings, remote: RemoteState, calls: list[Call]) -> tuple[dict, str]:
    """Inline zip, or (over the direct-upload limit) an S3 object in a bucket kagg may create."""
    size = f"{human(artifact.size)} zip"
    if artifact.size <= s.max_zip_bytes:
        return {"ZipFile": ZIP}, size
    store = remote.store
    if store is None:
        raise ValueError("a zip over the direct-upload limit needs the S3 store's state")
    bucket, key = store.bucket, store.key
    if not store.bucket_exists:
        if s.bucket is not None:
            raise BadInput(f"S3 bucket {bucket} (--bucket) does not exist; create it in {s.region} "
                           f"or leave out --bucket to let kagg create one")
        create: dict[str, Any] = {"Bucket": bucket}
        if s.region != "us-east-1":
            create["CreateBucketConfiguration"] = {"LocationConstraint": s.region}
        calls.append(Call("s3", "CreateBucket", create, f"create bucket {bucket} for large artifacts"))
        calls.append(Call("s3", "PutPublicAccessBlock", {
            "Bucket": bucket, "PublicAccessBlockConfiguration": {
                "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True,
                "RestrictPublicBuckets": True}}, f"block public access to {bucket}"))
    if not store.object_exists:
        calls.append(Call("s3", "PutObject", {"Bucket": bucket, "Key": key, "Body": ZIP},
                          f"upload the {size} to s3://{bucket}/{key} (over the "
                          f"{human(s.max_zip_bytes)} direct-upload limit)"))
    return {"S3Bucket": bucket, "S3Key": key}, f"{size} in s3://{bucket}/{key}"


def _role(s: Settings, remote: RemoteState, calls: list[Call]) -> str:
    if s.role:
        return s.role
    basic = BASIC_POLICY.format(partition=remote.partition)
    attach = Call("iam", "AttachRolePolicy", {"RoleName": ROLE_NAME, "PolicyArn": basic},
                  f"let {ROLE_NAME} write CloudWatch logs (AWSLambdaBasicExecutionRole)")
    if remote.role is None:
        calls.append(Call("iam", "CreateRole", {
            "RoleName": ROLE_NAME, "AssumeRolePolicyDocument": json.dumps(TRUST_POLICY),
            "Description": "Execution role of the Lambda functions deployed by kagg"},
            f"create the execution role {ROLE_NAME} (shared by kagg's functions)"))
        calls.append(attach)
        return ROLE_ARN
    if basic not in remote.role.policies:
        calls.append(attach)
    return remote.role.arn


def _url(name: str, s: Settings, remote: RemoteState, calls: list[Call]) -> None:
    url = remote.url if remote.function is not None else None
    if url is None:
        calls.append(Call("lambda", "CreateFunctionUrlConfig", {"FunctionName": name, "AuthType": s.auth_type},
                          f"create the function URL ({_auth_words(s.auth_type)})"))
    elif url.get("AuthType") != s.auth_type:
        calls.append(Call("lambda", "UpdateFunctionUrlConfig", {"FunctionName": name, "AuthType": s.auth_type},
                          f"make the function URL {_auth_words(s.auth_type)}"))
    sids = remote.policy_sids if remote.function is not None else frozenset()
    if s.public:
        if SID_URL not in sids:
            calls.append(Call("lambda", "AddPermission", {
                "FunctionName": name, "StatementId": SID_URL, "Action": "lambda:InvokeFunctionUrl",
                "Principal": "*", "FunctionUrlAuthType": "NONE"},
                "allow anyone to call the function URL (lambda:InvokeFunctionUrl)"))
        if SID_INVOKE not in sids:
            calls.append(Call("lambda", "AddPermission", {
                "FunctionName": name, "StatementId": SID_INVOKE, "Action": "lambda:InvokeFunction",
                "Principal": "*", "InvokedViaFunctionUrl": True},
                "allow invocations through the function URL (lambda:InvokeFunction)"))
    else:
        for sid in sorted(sids & {SID_URL, SID_INVOKE}):
            calls.append(Call("lambda", "RemovePermission", {"FunctionName": name, "StatementId": sid},
                              f"withdraw public permission {sid}"))


def _auth_words(auth_type: str) -> str:
    return "public, no authentication" if auth_type == "NONE" else "private, AWS_IAM: callers sign with SigV4"
