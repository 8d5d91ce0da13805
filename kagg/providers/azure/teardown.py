"""``kagg delete``: the function app; with ``--purge`` also the plan, storage and group kagg created.

A resource is removed only when its tags prove kagg made it: the app and its
plan carry this entry's ``kagg-owner``; the storage account (shared by kagg's
apps in a group) carries ``kagg-shared`` and goes only when no other app's
container is left in it; the resource group goes only when kagg created it
(``kagg-owner`` on the group) and nothing else is left in it. A group or
account someone else made is never touched.
"""

from __future__ import annotations

from typing import Optional

from kagg.providers.azure.clients import Clients
from kagg.providers.azure.errors import arm
from kagg.providers.azure.planner import SHARED_TAG
from kagg.providers.base import OWNER_TAG


def delete_app(c: Clients, data: dict, owner: Optional[str]) -> tuple[list[str], bool]:
    """Remove the function app; (warnings, whether it is gone or was never there)."""
    rg, app = data["resource_group"], data["app"]
    site = arm(c.web.web_apps.get, f"reading function app {app}", rg, app, missing_ok=True)
    if site is None:
        return [f"function app {app} was already gone from {rg}; removed it from the registry"], True
    theirs = (site.tags or {}).get(OWNER_TAG)
    if owner is not None and theirs != owner:
        made_by = f"another kagg endpoint (owner {theirs})" if theirs else "someone else (no kagg-owner tag)"
        return [f"function app {app} in {rg} was made by {made_by}, not by this entry; left it in place "
                "and removed the entry"], False
    arm(c.web.web_apps.delete, f"deleting function app {app}", rg, app, delete_empty_server_farm=False,
        missing_ok=True)
    return [], True


def purge(c: Clients, data: dict, owner: Optional[str]) -> list[str]:
    """Remove the plan, the app's container, and the storage account and group when kagg made them
    and nothing else uses them; warnings say what was kept and why."""
    rg = data["resource_group"]
    warnings: list[str] = []
    plan_name = data.get("plan")
    plan = arm(c.web.app_service_plans.get, f"reading plan {plan_name}", rg, plan_name, missing_ok=True) \
        if plan_name else None
    if plan is not None:
        if owner is not None and (plan.tags or {}).get(OWNER_TAG) == owner:
            arm(c.web.app_service_plans.delete, f"deleting plan {plan_name}", rg, plan_name, missing_ok=True)
        else:
            warnings.append(f"plan {plan_name} kept: it was not made by this entry")
    warnings += _purge_storage(c, data)
    group = arm(c.resource.resource_groups.get, f"reading resource group {rg}", rg, missing_ok=True)
    if group is None:
        return warnings
    if OWNER_TAG not in (group.tags or {}):
        return warnings + [f"resource group {rg} kept: kagg did not create it"]
    left = [r.name for r in arm(c.resource.resources.list_by_resource_group, f"listing resource group {rg}", rg)
            or []]
    if left:
        return warnings + [f"resource group {rg} kept: it still holds {', '.join(sorted(left)[:5])}"]
    poller = arm(c.resource.resource_groups.begin_delete, f"deleting resource group {rg}", rg, missing_ok=True)
    if poller is not None:
        arm(poller.result, f"deleting resource group {rg}")
    return warnings


def _purge_storage(c: Clients, data: dict) -> list[str]:
    rg, account, container = data["resource_group"], data.get("storage_account"), data.get("container")
    if not account:
        return []
    found = arm(c.storage.storage_accounts.get_properties, f"reading storage account {account}", rg, account,
                missing_ok=True)
    if found is None:
        return []
    if SHARED_TAG not in (found.tags or {}):
        return [f"storage account {account} kept: kagg did not create it"]
    if container:
        arm(c.storage.blob_containers.delete, f"deleting container {container}", rg, account, container,
            missing_ok=True)
    others = [x.name for x in arm(c.storage.blob_containers.list, f"listing the containers of {account}",
                                  rg, account) or [] if x.name != container]
    if others:
        return [f"storage account {account} kept: {len(others)} other kagg app(s) deploy from it"]
    arm(c.storage.storage_accounts.delete, f"deleting storage account {account}", rg, account, missing_ok=True)
    return []

