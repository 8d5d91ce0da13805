"""The mutating half of a deploy: replay a plan's calls in order, and wait on the operations.

The executor decides nothing: it uploads the zip where ``generateUploadUrl``
says (a signed URL: only ``content-type``, no Authorization, as gcloud does;
a 403 is retried because new permissions propagate slowly), creates or
patches the function with the plan's update mask, polls the long-running
operation (each poll with its own deadline, the whole wait bounded), and
changes the Cloud Run service's IAM policy for ``--public``. What the calls
return that the registry needs (the URL, the Cloud Run service) comes back as
an :class:`Outcome`.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from kagg.errors import OperationFailed
from kagg.providers.gcp.failures import operation_failure
from kagg.providers.gcp.planner import FAILED, Call
from kagg.providers.gcp.remote import EVERYONE, INVOKER, function_dict
from kagg.providers.gcp.retry import GCPCallFailed, RetryPolicy, call
from kagg.providers.gcp.settings import Settings

log = logging.getLogger("kagg.gcp")
#: how often a signed upload URL that answers 403 is tried again (IAM propagation, per gcloud)
UPLOAD_403_TRIES = 3
ACTIVE = 1  # Function.State.ACTIVE


@dataclass
class Outcome:
    """What the calls told us; fields stay as planned when no call changed them."""

    uri: Optional[str]
    service: Optional[str]
    function: dict[str, Any] = field(default_factory=dict)


@dataclass
class Context:
    """What every step needs: the clients, the settings, the retry policy, where to say progress."""

    clients: Any
    s: Settings
    policy: RetryPolicy
    function_id: str
    progress: Callable[[str], None] = lambda message: None
    #: set once Google accepted a call that changes the function or its access: from then on a
    #: failure may have left something, before it nothing this deploy made remains
    changed: bool = False


def execute(calls: list[Call], ctx: Context, desired: dict[str, Any], read_zip: Callable[[], bytes],
            outcome: Outcome) -> Outcome:
    """Make ``calls`` in order; ``outcome`` starts with what the plan already knew."""
    from google.cloud import functions_v2
    from google.protobuf import field_mask_pb2

    fid, s = ctx.function_id, ctx.s
    operation: Any = None
    verb = "update"  # what the operation waited on does, for messages
    for c in calls:
        if c.kind == "upload":
            desired["build_config"]["source"] = {"storage_source": upload(ctx, read_zip())}
        elif c.kind == "create":
            request = {"parent": s.parent, "function": functions_v2.Function(desired), "function_id": fid}
            verb = "deploy"
            try:
                operation = changing(ctx, lambda: call(ctx.clients.functions.create_function, ctx.policy,
                                                       f"create function {fid}", project=s.project, request=request))
            except GCPCallFailed as exc:
                if exc.status != "ALREADY_EXISTS":
                    raise
                operation = None  # an earlier attempt made it and its answer was lost: it is ours if labelled so
                outcome.function = adopt_lost_create(ctx, desired, exc)
        elif c.kind == "update":
            request = {"function": functions_v2.Function(desired),
                       "update_mask": field_mask_pb2.FieldMask(paths=c.mask)}
            operation = changing(ctx, lambda: call(ctx.clients.functions.update_function, ctx.policy,
                                                   f"update function {fid}", project=s.project, request=request))
        elif c.kind == "wait":
            if operation is not None:
                found = wait(ctx, operation.operation, verb)
                outcome.function = function_dict(found)
            config = outcome.function.get("service_config") or {}
            outcome.uri = config.get("uri") or outcome.uri
            outcome.service = config.get("service") or outcome.service
        elif c.kind in ("set_public", "set_private"):
            if not outcome.service:
                raise OperationFailed(f"function {fid} has no Cloud Run service to change the access of; "
                                      f"see it in the Google Cloud console")
            changing(ctx, lambda: set_public(ctx, outcome.service, c.kind == "set_public"))
        else:
            raise ValueError(f"unknown step {c.kind!r}")
        log.info("gcp: %s done", c.action)
    return outcome


def adopt_lost_create(ctx: Context, desired: dict[str, Any], exc: GCPCallFailed) -> dict[str, Any]:
    """After "already exists" on a create: the function, once deployed, if it carries this deploy's
    labels (an earlier attempt whose answer was lost made it); else the refusal, as it is."""
    from kagg.providers.gcp.remote import read_function

    ctx.changed = True
    wanted = desired.get("labels") or {}
    started = time.monotonic()
    while True:
        found = read_function(ctx.clients, ctx.s, ctx.function_id, ctx.policy)
        labels = (found or {}).get("labels") or {}
        if found is None or any(labels.get(k) != v for k, v in wanted.items() if k != "kagg-version"):
            raise GCPCallFailed(f"function {ctx.function_id} was created meanwhile by someone else ({exc.message}); "
                                f"choose another --name, or deploy again to see who owns it", exc.status)
        if found.get("state") == FAILED:
            messages = "; ".join(m.get("message", "") for m in found.get("state_messages") or [])
            raise operation_failure(f"the deploy of function {ctx.function_id}", ctx.function_id, 3, messages,
                                    ctx.s.region, ctx.s.project)
        if found.get("state") == ACTIVE:
            return found
        if time.monotonic() - started > ctx.policy.operation_seconds:
            raise GCPCallFailed(f"function {ctx.function_id} did not become active within "
                                f"{ctx.policy.operation_seconds:g} s; run the deploy again later", "TIMEOUT")
        time.sleep(ctx.policy.poll)


def changing(ctx: Context, make: Callable[[], Any]) -> Any:
    """Make a call that changes the function or its access. It counts as made unless Google refused
    it outright (a permission, a disabled API, a bad value): a call whose answer was lost, or that
    kept failing transiently, may have landed."""
    before, ctx.changed = ctx.changed, True
    try:
        return make()
    except GCPCallFailed as exc:
        if not exc.transient:
            ctx.changed = before
        raise


def upload(ctx: Context, data: bytes) -> dict[str, str]:
    """generateUploadUrl, then PUT the zip there; returns the storage source for the function."""
    import requests

    got = call(ctx.clients.functions.generate_upload_url, ctx.policy, "generate an upload URL",
               project=ctx.s.project, request={"parent": ctx.s.parent})
    url = got.upload_url
    ctx.progress(f"uploading {len(data) / 1024:.1f} kB")

    def put() -> Any:
        for attempt in range(1, UPLOAD_403_TRIES + 1):
            answer = requests.put(url, data=data, headers={"content-type": "application/zip"},
                                  timeout=(10, ctx.policy.call_timeout))
            if answer.status_code != 403 or attempt == UPLOAD_403_TRIES:
                break
            time.sleep(ctx.policy.base * attempt)
        if answer.status_code >= 500 or answer.status_code == 429:
            answer.raise_for_status()  # a requests.HTTPError: see below
        return answer

    try:
        answer = call(put, ctx.policy, "upload the zip", sdk=False)
    except requests.HTTPError as exc:
        raise GCPCallFailed(f"uploading the zip failed ({exc.response.status_code}); try again in a few minutes",
                            str(exc.response.status_code), transient=True) from None
    if not 200 <= answer.status_code < 300:
        raise GCPCallFailed(f"uploading the zip to the signed URL failed ({answer.status_code}: "
                            f"{' '.join(answer.text.split())[:200]}); check that you may use Cloud Functions' "
                            f"upload bucket (roles/cloudfunctions.developer) and deploy again", str(answer.status_code))
    source = got.storage_source
    return {"bucket": source.bucket, "object_": source.object_}


def wait(ctx: Context, operation: Any, verb: str) -> Any:
    """Poll the long-running operation until it is done; the Function it made, or a one-line failure."""
    from google.cloud import functions_v2

    fid, policy = ctx.function_id, ctx.policy
    started = time.monotonic()
    said = ""
    while not operation.done:
        if time.monotonic() - started > policy.operation_seconds:
            raise GCPCallFailed(f"the {verb} of {fid} did not finish within {policy.operation_seconds:g} s; "
                                f"it may still finish: run the deploy again later, or see the console", "TIMEOUT")
        time.sleep(policy.poll)
        operation = call(ctx.clients.functions.get_operation, policy, f"follow the {verb} of {fid}",
                         project=ctx.s.project, request={"name": operation.name})
        stage = _stage(operation)
        if stage and stage != said:
            ctx.progress(f"{fid}: {stage} ({time.monotonic() - started:.0f} s)")
            said = stage
    if operation.HasField("error"):
        raise operation_failure(f"the {verb} of function {fid}", fid, operation.error.code,
                                operation.error.message, ctx.s.region, ctx.s.project)
    return functions_v2.Function.deserialize(operation.response.value)


def _stage(operation: Any) -> str:
    """The stage in progress ("BUILD: building"), from the operation's metadata."""
    from google.cloud import functions_v2

    try:
        metadata = functions_v2.OperationMetadata.deserialize(operation.metadata.value)
    except Exception:  # noqa: BLE001 - metadata of another type: no progress to say
        return ""
    for stage in metadata.stages:
        if stage.state == functions_v2.Stage.State.IN_PROGRESS:
            return f"{stage.name.name.lower()}" + (f": {stage.message}" if stage.message else "")
    return ""


def set_public(ctx: Context, service: str, public: bool) -> None:
    """Add (or remove) ``allUsers`` in ``roles/run.invoker`` of the Cloud Run service: read, change,
    write with the etag read; a concurrent change (ABORTED) makes the whole read-change-write again."""
    run, policy = ctx.clients.run, ctx.policy

    def read_change_write() -> None:
        current = run.get_iam_policy(request={"resource": service, "options": {"requested_policy_version": 3}},
                                     retry=None, timeout=policy.call_timeout)
        bindings = [b for b in current.bindings if b.role == INVOKER]
        binding = bindings[0] if bindings else None
        if public:
            if binding is None:
                binding = current.bindings.add(role=INVOKER)
            if EVERYONE not in binding.members:
                binding.members.append(EVERYONE)
        elif binding is not None and EVERYONE in binding.members:
            binding.members.remove(EVERYONE)
            if not binding.members:
                current.bindings.remove(binding)
        run.set_iam_policy(request={"resource": service, "policy": current}, retry=None,
                           timeout=policy.call_timeout)

    call(read_change_write, policy, f"{'open' if public else 'close'} access to {ctx.function_id} "
                                    f"(run.services.setIamPolicy)", project=ctx.s.project, sdk=False)
