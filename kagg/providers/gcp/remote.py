"""The read-only half of a deploy: what exists in the project, as plain data.

Every call here is a read: the function (GET), and only when they are needed
the region list (GET …/locations, once per new endpoint or new region) and the
Cloud Run service's IAM policy (getIamPolicy, when the access asked for may
differ from what the registry recorded). So an unchanged redeploy is one
read. What they find is a :class:`RemoteState`, which the planner turns into
calls without any I/O: tests hand the planner a made-up state.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from kagg.errors import BadInput
from kagg.providers.gcp.retry import RetryPolicy, call
from kagg.providers.gcp.settings import Settings

INVOKER = "roles/run.invoker"
EVERYONE = "allUsers"


@dataclass
class RemoteState:
    """What the read-only calls found; ``None`` fields mean "does not exist" or "not read"."""

    #: the function as ``Function.to_dict`` gives it (snake_case keys, enums as integers)
    function: Optional[dict[str, Any]] = None
    #: whether ``allUsers`` may invoke the Cloud Run service; None when the policy was not read
    public: Optional[bool] = None

    @property
    def labels(self) -> dict[str, str]:
        return dict((self.function or {}).get("labels") or {})

    @property
    def service(self) -> Optional[str]:
        return ((self.function or {}).get("service_config") or {}).get("service") or None

    @property
    def uri(self) -> Optional[str]:
        return ((self.function or {}).get("service_config") or {}).get("uri") or None


def function_dict(function: Any) -> dict[str, Any]:
    """A ``functions_v2.Function`` as plain data."""
    return type(function).to_dict(function, preserving_proto_field_name=True, use_integers_for_enums=True)


def read_function(clients: Any, s: Settings, function_id: str, policy: RetryPolicy) -> Optional[dict[str, Any]]:
    found = call(clients.functions.get_function, policy, f"get function {function_id}", missing_ok=True,
                 project=s.project, name=s.function_path(function_id))
    return function_dict(found) if found is not None else None


def read_public(clients: Any, service: str, policy: RetryPolicy, project: str) -> bool:
    """Whether the Cloud Run service ``service`` lets ``allUsers`` invoke it."""
    got = call(clients.run.get_iam_policy, policy, f"read the IAM policy of {service.rsplit('/', 1)[-1]}",
               project=project, request={"resource": service, "options": {"requested_policy_version": 3}})
    return any(b.role == INVOKER and EVERYONE in b.members for b in got.bindings)


def check_region(clients: Any, s: Settings, policy: RetryPolicy) -> None:
    """BadInput unless the API lists ``s.region`` for the project (no list is kept in kagg)."""
    regions = clients.regions.get(s.project)
    if regions is None:
        regions = clients.regions[s.project] = list_regions(clients, s.project, policy)
    if s.region not in regions:
        near = [r for r in regions if r.split("-")[0] == s.region.split("-")[0]] or regions
        raise BadInput(f"unknown Google Cloud region {s.region!r} for Cloud Functions in project {s.project}; "
                       f"use one of {', '.join(near[:12])}")


def list_regions(clients: Any, project: str, policy: RetryPolicy) -> list[str]:
    """Every region the Cloud Functions API lists for ``project``, page by page."""
    found: set[str] = set()
    token = ""
    while True:
        got = call(clients.functions.list_locations, policy, "list the Cloud Functions regions", project=project,
                   request={"name": f"projects/{project}", "page_token": token})
        found.update(loc.location_id or loc.name.rsplit("/", 1)[-1] for loc in got.locations)
        token = got.next_page_token
        if not token:
            return sorted(found)


def read_state(clients: Any, s: Settings, function_id: str, policy: RetryPolicy,
               recorded_public: Optional[bool]) -> RemoteState:
    """The function, and its IAM policy when the access asked for may differ from ``recorded_public``
    (what the registry says the last deploy left; None when it does not know)."""
    state = RemoteState(function=read_function(clients, s, function_id, policy))
    if state.service and (s.force or recorded_public is None or recorded_public != s.public):
        state.public = read_public(clients, state.service, policy, s.project)
    elif state.service:
        state.public = recorded_public
    return state
