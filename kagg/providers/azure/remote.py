"""The read-only half of a deploy: what already exists in the subscription, as plain data.

Every call here is a read: the Microsoft.Web provider (registration and
locations), the resource group, storage account, container, plan and function
app, the app's settings (``POST .../appsettings/list``: a read, though a POST),
and name-availability checks for what would be created. What they find is a
:class:`RemoteState`, which the planner turns into calls without any I/O of its
own: tests hand the planner made-up states.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from kagg.errors import BadInput
from kagg.providers.azure.clients import Clients
from kagg.providers.azure.errors import arm
from kagg.providers.azure.settings import Settings, normalise_location

#: the api-version of the subscription listing (no SDK operation in azure-mgmt-resource 26)
SUBSCRIPTIONS_API = "2022-12-01"


@dataclass
class Resource:
    """An ARM resource as kagg needs it: its tags, location and (wire-format) properties."""

    id: str
    location: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    properties: dict[str, Any] = field(default_factory=dict)


@dataclass
class RemoteState:
    """What the read-only calls found; ``None`` means "does not exist"."""

    web_registered: bool = True
    #: locations offering function apps, normalised ("eastus"); empty when not read
    locations: frozenset[str] = frozenset()
    group: Optional[Resource] = None
    storage: Optional[Resource] = None  # properties: {"blob": primary blob endpoint}
    container: bool = False
    plan: Optional[Resource] = None  # properties: {"sku": ..., "tier": ...}
    site: Optional[Resource] = None  # properties: the site's wire-format properties
    app_settings: dict[str, str] = field(default_factory=dict)
    #: for a site or account that does not exist: (available, reason, message) from checkNameAvailability
    site_name: Optional[tuple[bool, str, str]] = None
    storage_name: Optional[tuple[bool, str, str]] = None


def subscriptions(clients: Clients) -> list[dict]:
    """The subscriptions the credential can see: ``[{"subscriptionId", "displayName", "state"}]``."""
    found = clients.get_json(f"/subscriptions?api-version={SUBSCRIPTIONS_API}")
    return list(found.get("value") or [])


def web_provider(clients: Clients) -> tuple[bool, frozenset[str]]:
    """(Microsoft.Web is registered, the locations it offers function apps in)."""
    p = arm(clients.resource.providers.get, "reading the Microsoft.Web resource provider", "Microsoft.Web")
    registered = (getattr(p, "registration_state", None) or "").lower() == "registered"
    locations: set[str] = set()
    for rt in getattr(p, "resource_types", None) or []:
        if (rt.resource_type or "").lower() in ("sites", "serverfarms"):
            locations.update(normalise_location(loc) for loc in rt.locations or [])
    return registered, frozenset(locations)


def read_state(clients: Clients, s: Settings) -> RemoteState:
    """Make the read-only calls a plan needs (and no other)."""
    state = RemoteState()
    state.web_registered, state.locations = web_provider(clients)
    if not state.web_registered:
        return state
    rg, res, st, web = s.resource_group, clients.resource, clients.storage, clients.web
    group = arm(res.resource_groups.get, f"reading resource group {rg}", rg, missing_ok=True)
    if group is not None:
        state.group = Resource(group.id, normalise_location(group.location or ""), dict(group.tags or {}))
        account = arm(st.storage_accounts.get_properties, f"reading storage account {s.storage_account}", rg,
                      s.storage_account, missing_ok=True)
        if account is not None:
            blob = account.primary_endpoints.blob if account.primary_endpoints else None
            state.storage = Resource(account.id, normalise_location(account.location or ""),
                                     dict(account.tags or {}), {"blob": blob})
            state.container = arm(st.blob_containers.get, f"reading container {s.container}", rg,
                                  s.storage_account, s.container, missing_ok=True) is not None
        plan = arm(web.app_service_plans.get, f"reading plan {s.plan_name}", rg, s.plan_name, missing_ok=True)
        if plan is not None:
            sku = plan.sku
            state.plan = Resource(plan.id, normalise_location(plan.location or ""), dict(plan.tags or {}),
                                  {"sku": getattr(sku, "name", None), "tier": getattr(sku, "tier", None)})
        site = arm(web.web_apps.get, f"reading function app {s.app}", rg, s.app, missing_ok=True)
        if site is not None:
            state.site = Resource(site.id, normalise_location(site.location or ""), dict(site.tags or {}),
                                  site_properties(site))
            listed = arm(web.web_apps.list_application_settings, f"reading the app settings of {s.app}", rg, s.app)
            state.app_settings = dict(getattr(listed, "properties", None) or {})
    if state.site is None:
        found = arm(web.check_name_availability, f"checking the app name {s.app}", {"name": s.app, "type": "Site"})
        state.site_name = (bool(found.name_available), str(found.reason or ""), str(found.message or ""))
    if state.storage is None:
        found = arm(st.storage_accounts.check_name_availability, f"checking the storage name {s.storage_account}",
                    {"name": s.storage_account, "type": "Microsoft.Storage/storageAccounts"})
        state.storage_name = (bool(found.name_available), str(found.reason or ""), str(found.message or ""))
    return state


def site_properties(site: Any) -> dict[str, Any]:
    """The parts of a site the planner compares, from the SDK's model."""
    fac = site.function_app_config
    runtime = getattr(fac, "runtime", None)
    scale = getattr(fac, "scale_and_concurrency", None)
    storage = getattr(getattr(fac, "deployment", None), "storage", None)
    return {"serverFarmId": site.server_farm_id, "defaultHostName": site.default_host_name,
            "runtime": {"name": str(getattr(runtime, "name", "") or ""), "version": getattr(runtime, "version", None)},
            "instanceMemoryMB": getattr(scale, "instance_memory_mb", None),
            "maximumInstanceCount": getattr(scale, "maximum_instance_count", None),
            "deploymentStorage": getattr(storage, "value", None)}


def choose_subscription(clients_for: Any, given: Optional[str], known: Optional[str]) -> str:
    """``--subscription``, else the endpoint's own, else the credential's only one (a read)."""
    if given:
        if known and given.lower() != known.lower():
            raise BadInput(f"this endpoint is deployed in subscription {known}, not {given}; "
                           f"redeploy it with --subscription {known} or delete it first")
        return given
    if known:
        return known
    found = [s for s in subscriptions(clients_for("")) if (s.get("state") or "Enabled") == "Enabled"]
    if not found:
        raise BadInput("the Azure credential sees no enabled subscription; sign in with an account that has one "
                       "(`az login`), or pass --subscription ID")
    if len(found) > 1:
        listing = ", ".join(f"{s.get('subscriptionId')} ({s.get('displayName')})" for s in found[:5])
        raise BadInput(f"the Azure credential sees {len(found)} subscriptions ({listing}); choose one with "
                       "--subscription ID")
    return str(found[0]["subscriptionId"])
