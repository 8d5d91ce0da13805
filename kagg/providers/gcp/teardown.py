"""``kagg delete``: the function (its Cloud Run service goes with it), waiting for the deletion.

An entry that knows its owner deletes only a function carrying that owner's
label: a function of the same name made since by another registry is left
alone. A function already gone is a warning, not an error.
"""

from __future__ import annotations

import time
from typing import Any, Optional

from kagg.providers.base import OWNER_TAG
from kagg.providers.gcp.failures import operation_failure
from kagg.providers.gcp.remote import read_function
from kagg.providers.gcp.retry import GCPCallFailed, RetryPolicy, call
from kagg.providers.gcp.settings import Settings, label_value


def delete_function(clients: Any, s: Settings, function_id: str, policy: RetryPolicy,
                    owner: Optional[str]) -> list[str]:
    """Delete the function and wait until it is gone; warnings for what was not there or not ours."""
    where = f"{function_id} in {s.project}/{s.region}"
    if owner is not None:
        found = read_function(clients, s, function_id, policy)
        if found is None:
            return [f"Cloud Function {where} was already gone; removed it from the registry"]
        theirs = (found.get("labels") or {}).get(OWNER_TAG)
        if theirs != label_value(owner):
            made_by = f"another kagg endpoint (owner {theirs})" if theirs else f"someone else (no {OWNER_TAG} label)"
            return [f"Cloud Function {where} was made by {made_by}, not by this entry; "
                    f"left it in place and removed the entry"]
    operation = call(clients.functions.delete_function, policy, f"delete function {function_id}", missing_ok=True,
                     project=s.project, request={"name": s.function_path(function_id)})
    if operation is None:
        return [f"Cloud Function {where} was already gone; removed it from the registry"]
    raw = operation.operation
    started = time.monotonic()
    while not raw.done:
        if time.monotonic() - started > policy.operation_seconds:
            raise GCPCallFailed(f"the deletion of {where} did not finish within {policy.operation_seconds:g} s; "
                                f"run `kagg delete` again later", "TIMEOUT")
        time.sleep(policy.poll)
        raw = call(clients.functions.get_operation, policy, f"follow the deletion of {function_id}",
                   project=s.project, request={"name": raw.name})
    if raw.HasField("error"):
        raise operation_failure(f"the deletion of function {function_id}", function_id, raw.error.code,
                                raw.error.message, s.region, s.project)
    return []
