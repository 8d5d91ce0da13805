"""``kagg delete``: the function URL, the function, its S3 object, and on request kagg's role.

IAM roles are global (one per account and partition) while functions live in
regions: before ``--purge-role`` deletes kagg's shared role it lists the
functions of every region the session knows for Lambda, and keeps the role if
any function still uses it, or if a region could not be checked. Regions not
enabled for the account answer with a credentials error: they hold no function.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any, Optional

from kagg.providers.aws.remote import ClientFor
from kagg.providers.aws.retry import CREDENTIAL_CODES, AWSCallFailed, RetryPolicy, call
from kagg.providers.aws.settings import ROLE_NAME
from kagg.providers.base import OWNER_TAG

#: how many regions are listed at once
SCAN_THREADS = 8
#: what a region that is not enabled for the account answers
_NOT_ENABLED = CREDENTIAL_CODES | {"AuthFailure", "OptInRequired"}


def delete_function(client: ClientFor, region: str, data: dict, name: str, policy: RetryPolicy,
                    owner: Optional[str] = None) -> list[str]:
    """Remove the URL, the function and (for big zips) its S3 object; warnings for what was gone.

    An entry that knows its ``owner`` deletes only a function carrying that owner tag: a function
    of the same name made since by another registry (a stale entry) is left alone.
    """
    lam = client("lambda", region)
    warnings: list[str] = []
    if owner is not None:
        found = call(lam.get_function, policy, missing_ok=True, FunctionName=name)
        theirs = (found.get("Tags") or {}).get(OWNER_TAG) if found is not None else owner
        if theirs != owner:
            made_by = f"another kagg endpoint (owner {theirs})" if theirs else "someone else (no kagg-owner tag)"
            return [f"Lambda function {name} in {region} was made by {made_by}, not by this entry; "
                    f"left it in place and removed the entry"]
    call(lam.delete_function_url_config, policy, missing_ok=True, FunctionName=name)
    if call(lam.delete_function, policy, missing_ok=True, FunctionName=name) is None:
        warnings.append(f"Lambda function {name} was already gone from {region}; removed it from the registry")
    location = data.get("code_location")
    if location:
        s3 = client("s3", region)
        call(s3.delete_object, policy, missing_ok=True, Bucket=location["bucket"], Key=location["key"])
    return warnings


def purge_role(client: ClientFor, regions: list[str], home: str, data: dict, policy: RetryPolicy) -> list[str]:
    """Delete kagg's role unless a function in any of ``regions`` uses it; warnings say why not."""
    if not data.get("role_created_by_kagg", True):
        return [f"role {data.get('role_arn')} was given with --role; kagg leaves it in place"]
    users, unchecked = role_users(client, sorted(set(regions) | {home}), policy)
    if users:
        return [f"role {ROLE_NAME} kept: still used by {', '.join(users)}"]
    if unchecked:
        return [f"role {ROLE_NAME} kept: could not list the functions of {'; '.join(unchecked)}; "
                f"run the delete again later with --purge-role"]
    iam = client("iam", home)
    attached = call(iam.list_attached_role_policies, policy, missing_ok=True, RoleName=ROLE_NAME)
    if attached is None:
        return [f"role {ROLE_NAME} was already gone"]
    for p in attached.get("AttachedPolicies", []):
        call(iam.detach_role_policy, policy, missing_ok=True, RoleName=ROLE_NAME, PolicyArn=p["PolicyArn"])
    call(iam.delete_role, policy, missing_ok=True, RoleName=ROLE_NAME)
    return []


def role_users(client: ClientFor, regions: list[str], policy: RetryPolicy) -> tuple[list[str], list[str]]:
    """("NAME (REGION)" of each function using kagg's role, "REGION (why)" of each region not checked)."""
    scan_policy = replace(policy, attempts=min(policy.attempts, 3), max_seconds=min(policy.max_seconds, 30.0))
    with ThreadPoolExecutor(min(SCAN_THREADS, len(regions))) as pool:
        results = list(pool.map(lambda r: _users_in(client("lambda", r), scan_policy), regions))
    users, unchecked = [], []
    for region, (names, error) in zip(regions, results):
        users += [f"{n} ({region})" for n in names]
        if error is not None:
            unchecked.append(f"{region} ({error})")
    return sorted(users), unchecked


def _users_in(lam: Any, policy: RetryPolicy) -> tuple[list[str], Optional[str]]:
    names: list[str] = []
    kwargs: dict[str, Any] = {}
    try:
        while True:
            page = call(lam.list_functions, policy, **kwargs)
            names += [f["FunctionName"] for f in page.get("Functions", [])
                      if f.get("Role", "").endswith(f":role/{ROLE_NAME}")]
            if not page.get("NextMarker"):
                return names, None
            kwargs["Marker"] = page["NextMarker"]
    except AWSCallFailed as exc:
        if exc.code in _NOT_ENABLED:
            return [], None  # a region not enabled for this account has no functions
        return names, exc.code or str(exc)
