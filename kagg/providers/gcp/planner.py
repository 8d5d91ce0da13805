"""Decide the calls of a deploy from what exists: a pure function, after AWS Chalice's planner.

:func:`plan_calls` compares the artifact and the settings with a
:class:`~kagg.providers.gcp.remote.RemoteState` and lists, in order, the calls
that bring the project to the settings: the upload, a create or a patch whose
update mask names exactly the fields that changed, the wait on the
operation, and the IAM change for ``--public``. No SDK, no I/O: the same
inputs give the same list, and ``apply`` replays exactly that list, so
``--dry-run`` shows what a real deploy does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from kagg.model import PlanStep
from kagg.providers.base import OWNER_TAG
from kagg.providers.gcp.remote import RemoteState
from kagg.providers.gcp.settings import (ENTRY_POINT, LABEL_ENDPOINT, LABEL_SHA, RUNTIME, Settings, labels,
                                         memory_mb, sha_label)

GEN_2 = 2  # functions_v2.Environment.GEN_2
ALLOW_ALL = 1  # ServiceConfig.IngressSettings.ALLOW_ALL: reachable from the internet; IAM decides who may call
FAILED = 2  # Function.State.FAILED
#: environment variables GCF adds by itself; not a difference from what kagg asked for
ADDED_BY_GCF = frozenset({"LOG_EXECUTION_ID"})
#: labels whose difference means the function must be relabelled (kagg-version alone does not)
COMPARED_LABELS = (LABEL_SHA, LABEL_ENDPOINT, OWNER_TAG)


@dataclass(frozen=True)
class ArtifactInfo:
    """What the planner needs to know of an artifact."""

    function_id: str
    endpoint: str
    sha256: str  # hex, as in the artifact's file name
    size: int  # bytes, zipped


@dataclass
class Call:
    """One step of a plan; ``apply`` makes them in order. ``kind`` is what the executor does."""

    kind: str  # "upload", "create", "update", "wait", "set_public", "set_private"
    action: str  # Google's name for it: "functions.create"
    description: str
    mutating: bool = True
    mask: list[str] = field(default_factory=list)  # "update": the update mask, snake_case paths

    def step(self) -> PlanStep:
        return PlanStep(self.action, self.description, self.mutating)


def desired_function(artifact: ArtifactInfo, s: Settings, deployed: Optional[dict[str, Any]]) -> dict[str, Any]:
    """The function kagg asks for, as ``Function`` takes it (the source is added once uploaded).

    Labels that others put on the function are kept; kagg's own are set.
    """
    kept = {k: v for k, v in ((deployed or {}).get("labels") or {}).items() if not k.startswith("kagg-")}
    service: dict[str, Any] = {
        "available_memory": s.memory_unit, "timeout_seconds": s.timeout, "max_instance_count": s.max_instances,
        "min_instance_count": s.min_instances, "environment_variables": dict(sorted(s.env.items())),
        "ingress_settings": ALLOW_ALL, "all_traffic_on_latest_revision": True}
    if s.service_account:
        service["service_account_email"] = s.service_account
    return {"name": s.function_path(artifact.function_id), "description": f"kagg endpoint {artifact.endpoint}",
            "environment": GEN_2, "labels": {**kept, **labels(artifact.endpoint, artifact.sha256, s.owner)},
            "build_config": {"runtime": RUNTIME, "entry_point": ENTRY_POINT}, "service_config": service}


def changed_fields(artifact: ArtifactInfo, s: Settings, deployed: dict[str, Any]) -> list[str]:
    """The update mask: snake_case paths of the fields whose deployed value differs from kagg's."""
    desired = desired_function(artifact, s, deployed)
    build, have_build = desired["build_config"], deployed.get("build_config") or {}
    service, have = desired["service_config"], deployed.get("service_config") or {}
    mask = []
    if s.force or code_changed(artifact, deployed):
        mask.append("build_config.source")
    for key in ("runtime", "entry_point"):
        if have_build.get(key) != build[key]:
            mask.append(f"build_config.{key}")
    if memory_mb(have.get("available_memory")) != s.memory:
        mask.append("service_config.available_memory")
    for key in ("timeout_seconds", "max_instance_count", "min_instance_count"):
        if int(have.get(key) or 0) != service[key]:
            mask.append(f"service_config.{key}")
    env = {k: v for k, v in (have.get("environment_variables") or {}).items()
           if k not in ADDED_BY_GCF or k in service["environment_variables"]}
    if env != service["environment_variables"]:
        mask.append("service_config.environment_variables")
    if s.service_account and have.get("service_account_email") != s.service_account:
        mask.append("service_config.service_account_email")
    have_labels = deployed.get("labels") or {}
    if "build_config.source" in mask or any(have_labels.get(k) != desired["labels"].get(k) for k in COMPARED_LABELS):
        mask.append("labels")
    return mask


def code_changed(artifact: ArtifactInfo, deployed: dict[str, Any]) -> bool:
    """The deployed code is another artifact (by its sha label), or its last deploy failed."""
    return (deployed.get("labels") or {}).get(LABEL_SHA) != sha_label(artifact.sha256) or deployed.get("state") == FAILED


def plan_calls(artifact: ArtifactInfo, s: Settings, remote: RemoteState) -> list[Call]:
    """The calls, in order, that make the deployed function match ``artifact`` and ``s``."""
    fid = artifact.function_id
    size = f"{artifact.size / 1024:.1f} kB zip"
    summary = f"{RUNTIME}, {s.memory} MB, {s.timeout} s, {s.min_instances}-{s.max_instances} instances"
    upload = Call("upload", "functions.generateUploadUrl", f"upload the {size} (generateUploadUrl, then PUT)")
    calls: list[Call] = []
    deployed = remote.function
    if deployed is None:
        calls += [upload, Call("create", "functions.create", f"create function {fid} in {s.region} ({summary}); "
                                                             f"Cloud Build installs requirements.txt"),
                  wait(fid, "deployed")]
    else:
        mask = changed_fields(artifact, s, deployed)
        if mask:
            if "build_config.source" in mask:
                calls.append(upload)
            reason = _reason(artifact, s, deployed, mask)
            calls += [Call("update", "functions.patch", f"update function {fid}: {reason} "
                                                        f"(updateMask={','.join(camel(p) for p in mask)})",
                           mask=mask), wait(fid, "updated")]
    was_public = bool(remote.public) if deployed is not None else False
    if s.public and not was_public:
        calls.append(Call("set_public", "run.services.setIamPolicy",
                          f"let anyone call {fid} (roles/run.invoker for allUsers on its Cloud Run service)"))
    elif not s.public and was_public:
        calls.append(Call("set_private", "run.services.setIamPolicy",
                          f"make {fid} private again (remove allUsers from roles/run.invoker)"))
    return calls


def wait(function_id: str, what: str) -> Call:
    return Call("wait", "operations.get", f"wait until {function_id} is {what} (build, then Cloud Run revision)",
                mutating=False)


def is_unchanged(calls: list[Call], remote: RemoteState) -> bool:
    """True when the function exists and nothing would be changed."""
    return remote.function is not None and not any(c.mutating for c in calls)


def camel(path: str) -> str:
    """``service_config.available_memory`` -> ``serviceConfig.availableMemory`` (the wire's spelling)."""
    return ".".join(part.split("_")[0] + "".join(w.title() for w in part.split("_")[1:]) for part in path.split("."))


def _reason(artifact: ArtifactInfo, s: Settings, deployed: dict[str, Any], mask: list[str]) -> str:
    words = []
    if "build_config.source" in mask:
        if deployed.get("state") == FAILED:
            words.append("new code (its last deploy failed)")
        else:
            words.append("new code" if code_changed(artifact, deployed) else "new code (forced)")
    config = [p.split(".", 1)[1] for p in mask if p.startswith(("service_config.", "build_config.")) and
              p != "build_config.source"]
    if config:
        words.append("configuration " + ", ".join(config))
    if mask == ["labels"]:
        words.append(f"labels ({OWNER_TAG}={s.owner})")
    return "; ".join(words)
