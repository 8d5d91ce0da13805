"""The read-only half of a deploy: what already exists in the account, as plain data.

Every call here is a read (GetRole, ListAttachedRolePolicies, GetFunction,
GetFunctionUrlConfig, GetPolicy, and for big zips GetCallerIdentity,
HeadBucket, HeadObject). What they find is a :class:`RemoteState`, which the
planner turns into calls without any I/O of its own: tests can hand the
planner a made-up state instead of an account.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Optional

from kagg.errors import BadInput
from kagg.providers.aws.retry import AWSCallFailed, RetryPolicy, call
from kagg.providers.aws.settings import ROLE_NAME, Settings, code_key, default_bucket

if TYPE_CHECKING:
    from kagg.providers.aws.planner import ArtifactInfo

#: ``client(service, region)``: a boto3 client (the provider's, cached)
ClientFor = Callable[[str, str], Any]


@dataclass(frozen=True)
class RoleState:
    """kagg's shared execution role as IAM has it."""

    arn: str
    policies: frozenset[str] = frozenset()  # ARNs of the attached managed policies


@dataclass(frozen=True)
class CodeStore:
    """Where a zip over the direct-upload limit goes, and what is there already."""

    bucket: str
    key: str
    bucket_exists: bool
    object_exists: bool = False


@dataclass
class RemoteState:
    """What the read-only calls found; ``None`` fields mean "does not exist"."""

    partition: str = "aws"
    #: kagg's role; None when it does not exist (or was not read because ``--role`` was given)
    role: Optional[RoleState] = None
    #: GetFunction's ``Configuration``
    function: Optional[dict[str, Any]] = None
    tags: dict[str, str] = field(default_factory=dict)
    #: GetFunctionUrlConfig's answer
    url: Optional[dict[str, Any]] = None
    #: statement ids of the function's resource policy
    policy_sids: frozenset[str] = frozenset()
    #: set only for zips over the direct-upload limit
    store: Optional[CodeStore] = None


def read_state(client: ClientFor, partition: str, s: Settings, function_name: str,
               artifact: "ArtifactInfo", policy: RetryPolicy) -> RemoteState:
    """Make the read-only calls a plan needs (and no other)."""
    state = RemoteState(partition=partition)
    if artifact.size > s.max_zip_bytes:
        state.store = read_store(client, s, function_name, artifact.sha256, policy)
    if not s.role:
        state.role = read_role(client("iam", s.region), policy)
    lam = client("lambda", s.region)
    found = call(lam.get_function, policy, missing_ok=True, FunctionName=function_name)
    if found is None:
        return state
    state.function = found["Configuration"]
    state.tags = dict(found.get("Tags") or {})
    state.url = call(lam.get_function_url_config, policy, missing_ok=True, FunctionName=function_name)
    state.policy_sids = policy_sids(call(lam.get_policy, policy, missing_ok=True, FunctionName=function_name))
    return state


def read_role(iam: Any, policy: RetryPolicy) -> Optional[RoleState]:
    found = call(iam.get_role, policy, missing_ok=True, RoleName=ROLE_NAME)
    if found is None:
        return None
    attached = call(iam.list_attached_role_policies, policy, RoleName=ROLE_NAME)
    return RoleState(found["Role"]["Arn"], frozenset(p["PolicyArn"] for p in attached.get("AttachedPolicies", [])))


def read_store(client: ClientFor, s: Settings, function_name: str, sha256: str, policy: RetryPolicy) -> CodeStore:
    """The bucket (``--bucket`` or kagg's per account and region) and whether this zip is in it."""
    s3 = client("s3", s.region)
    bucket = s.bucket
    if bucket is None:
        account = call(client("sts", s.region).get_caller_identity, policy)["Account"]
        bucket = default_bucket(account, s.region)
    key = code_key(function_name, sha256)
    try:
        exists = call(s3.head_bucket, policy, missing_ok=True, Bucket=bucket) is not None
    except AWSCallFailed as exc:
        if exc.code in ("403", "AccessDenied"):
            raise BadInput(f"S3 bucket {bucket} exists but this account cannot use it; pass --bucket "
                           f"with a bucket in {s.region} that you own") from exc
        raise
    found = exists and call(s3.head_object, policy, missing_ok=True, Bucket=bucket, Key=key) is not None
    return CodeStore(bucket, key, exists, found)


def policy_sids(response: Optional[dict]) -> frozenset[str]:
    if not response:
        return frozenset()
    return frozenset(st.get("Sid") for st in json.loads(response["Policy"]).get("Statement", []) if st.get("Sid"))
