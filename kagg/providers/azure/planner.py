"""Decide the calls of a deploy from what exists: a pure function, as the AWS planner is.

:func:`check_state` refuses what cannot be deployed (an unregistered
Microsoft.Web, an unknown location, an app name taken elsewhere, a storage name
Azure refuses); :func:`plan_calls` compares the artifact and the settings with a
:class:`~kagg.providers.azure.remote.RemoteState` and lists, in order, the
mutating calls that bring the subscription to the settings. No SDK, no I/O.
``apply`` replays exactly this list, so ``--dry-run`` shows what a deploy does.
Bodies are ARM's wire format (the SDKs send plain dicts as they are).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Optional

from kagg.errors import BadInput
from kagg.model import PlanStep
from kagg.providers.azure.remote import RemoteState
from kagg.providers.azure.settings import CONNECTION, DEPLOY_STORAGE_SETTING, SHA_SETTING, TAG, Settings
from kagg.providers.base import OWNER_TAG

#: stands for the storage account's blob endpoint when the plan creates the account
BLOB = "<blob-endpoint>"
#: tag on the storage account kagg creates and shares between the apps of a group
SHARED_TAG = "kagg-shared"


@dataclass(frozen=True)
class ArtifactInfo:
    sha256: str
    size: int


@dataclass
class Call:
    """One call of a plan. ``op`` names what the executor does; ``body`` is ARM's wire format."""

    action: str  # the RBAC operation it needs: "Microsoft.Web/sites/write"
    op: str  # group, storage, container, plan, site, settings, publish, verify
    description: str
    body: dict[str, Any] = field(default_factory=dict)
    mutating: bool = True

    def step(self) -> PlanStep:
        return PlanStep(self.action, self.description, self.mutating)


def check_state(s: Settings, remote: RemoteState) -> None:
    """BadInput for a deploy the subscription cannot take (nothing has been changed)."""
    if not remote.web_registered:
        raise BadInput(f"subscription {s.subscription} has not registered the Microsoft.Web resource provider; "
                       "run `az provider register --namespace Microsoft.Web --wait` (and the same for "
                       "Microsoft.Storage), then deploy again")
    if remote.locations and s.location not in remote.locations:
        close = sorted(loc for loc in remote.locations if loc[:4] == s.location[:4])[:3] or sorted(remote.locations)[:3]
        raise BadInput(f"unknown Azure location {s.location!r} for function apps; use one such as "
                       f"{', '.join(close)} (`az functionapp list-flexconsumption-locations`)")
    if remote.site is not None and remote.site.location and remote.site.location != s.location:
        raise BadInput(f"function app {s.app} is in {remote.site.location}, not {s.location}; deploy it with "
                       f"--location {remote.site.location} or delete it first")
    if remote.site is None and remote.site_name is not None and not remote.site_name[0]:
        suggestion = f"{s.app[:55]}-{hashlib.sha256(s.subscription.encode()).hexdigest()[:4]}"
        raise BadInput(f"the app name {s.app!r} is taken: function app names are global across Azure "
                       f"({remote.site_name[2] or remote.site_name[1]}); choose another with --name, e.g. "
                       f"--name {suggestion}")
    if remote.storage is None and remote.storage_name is not None and not remote.storage_name[0]:
        available, reason, message = remote.storage_name
        if reason == "AccountNameInvalid":
            raise BadInput(f"storage account name {s.storage_account!r} breaks Azure's rule (3-24 lower-case "
                           f"letters and digits): {message}; choose another --resource-group")
        raise BadInput(f"storage account name {s.storage_account} is taken by another subscription ({message or reason}); "
                       "choose another --resource-group")
    if remote.storage is not None and SHARED_TAG not in remote.storage.tags:
        raise BadInput(f"storage account {s.storage_account} in {s.resource_group} was not made by kagg; "
                       "choose another --resource-group")
    if remote.plan is not None and (remote.plan.properties.get("sku") or "").upper() != "FC1":
        raise BadInput(f"plan {s.plan_name} in {s.resource_group} exists and is not Flex Consumption (FC1); "
                       "delete it or choose another --resource-group")


def plan_id(s: Settings) -> str:
    return (f"/subscriptions/{s.subscription}/resourceGroups/{s.resource_group}"
            f"/providers/Microsoft.Web/serverfarms/{s.plan_name}")


def site_body(s: Settings, blob: str, settings: Optional[dict[str, str]]) -> dict[str, Any]:
    """The function app as ARM takes it (Flex Consumption: functionAppConfig, no zipdeploy settings).

    ``settings`` None (an update): no ``appSettings``, so ARM keeps the app's settings as they are
    (the settings call sets kagg's, leaving others a user added in place).
    """
    config: dict[str, Any] = {"minTlsVersion": "1.2", "ftpsState": "Disabled"}
    if settings is not None:
        config["appSettings"] = [{"name": k, "value": v} for k, v in settings.items()]
    return {
        "location": s.location, "kind": "functionapp,linux", "tags": s.tags(),
        "properties": {
            "serverFarmId": plan_id(s), "httpsOnly": True,
            "siteConfig": config,
            "functionAppConfig": {
                "deployment": {"storage": {
                    "type": "blobContainer", "value": container_url(blob, s.container),
                    "authentication": {"type": "StorageAccountConnectionString",
                                       "storageAccountConnectionStringName": DEPLOY_STORAGE_SETTING}}},
                "runtime": {"name": "python", "version": s.python},
                "scaleAndConcurrency": {"instanceMemoryMB": s.memory, "maximumInstanceCount": s.max_instances}}}}


def container_url(blob: str, container: str) -> str:
    return blob.rstrip("/") + "/" + container


def plan_calls(artifact: ArtifactInfo, s: Settings, remote: RemoteState,
               previous_env: tuple[str, ...] = ()) -> list[Call]:
    """The calls, in order, that make the function app match ``artifact`` and ``s``.

    ``previous_env``: the ``--env`` names of the last deploy (the registry keeps names, never
    values), so a name dropped from ``--env`` is removed from the app settings.
    """
    calls: list[Call] = []
    rg = s.resource_group
    if remote.group is None:
        calls.append(Call("Microsoft.Resources/subscriptions/resourceGroups/write", "group",
                          f"create resource group {rg} in {s.location}",
                          {"location": s.location, "tags": s.tags()}))
    blob = (remote.storage.properties.get("blob") if remote.storage is not None else None) or BLOB
    if remote.storage is None:
        calls.append(Call("Microsoft.Storage/storageAccounts/write", "storage",
                          f"create storage account {s.storage_account} (Standard_LRS, shared by kagg's apps in {rg})",
                          {"location": s.location, "kind": "StorageV2", "sku": {"name": "Standard_LRS"},
                           "tags": {SHARED_TAG: "true", **({OWNER_TAG: s.owner} if s.owner else {})},
                           "properties": {"allowBlobPublicAccess": False, "minimumTlsVersion": "TLS1_2",
                                          "supportsHttpsTrafficOnly": True}}))
    if not remote.container:
        calls.append(Call("Microsoft.Storage/storageAccounts/blobServices/containers/write", "container",
                          f"create deployment container {s.container}", {}))
    if remote.plan is None:
        calls.append(Call("Microsoft.Web/serverfarms/write", "plan",
                          f"create Flex Consumption plan {s.plan_name} (FC1)",
                          {"location": s.location, "kind": "functionapp", "tags": s.tags(),
                           "sku": {"name": "FC1", "tier": "FlexConsumption"}, "properties": {"reserved": True}}))
    deployed_sha = remote.app_settings.get(SHA_SETTING) if remote.site is not None else None
    summary = f"python {s.python}, {s.memory} MB, up to {s.max_instances} instances"
    if remote.site is None:
        calls.append(Call("Microsoft.Web/sites/write", "site", f"create function app {s.app} ({summary})",
                          site_body(s, blob, s.app_settings(None))))
    else:
        changes = site_changes(s, blob, remote)
        if changes:
            calls.append(Call("Microsoft.Web/sites/write", "site",
                              f"update function app {s.app}: {', '.join(changes)}",
                              site_body(s, blob, None)))
    publish = s.force or remote.site is None or deployed_sha != artifact.sha256
    if publish:
        why = "new app" if remote.site is None else ("forced" if deployed_sha == artifact.sha256 else "changed")
        calls.append(Call("Microsoft.Web/sites/publish/Action", "publish",
                          f"upload the {artifact.size} byte zip to {s.app} with remote build ({why}) and follow "
                          "the deployment", {"sha256": artifact.sha256}))
        calls.append(Call("Microsoft.Web/sites/functions/read", "verify",
                          "check that the host loaded the function", mutating=False))
        if not s.public:
            calls.append(Call("Microsoft.Web/sites/host/listkeys/action", "keys",
                              "read the host's function key, which invoke and monitor sign with (not stored)",
                              mutating=False))
    wanted = s.app_settings(artifact.sha256)
    deployed = remote.app_settings if remote.site is not None else {}
    removed = sorted(k for k in previous_env if k in deployed and k not in wanted)
    changed = settings_changes(wanted, deployed, s) + [f"{k} (removed)" for k in removed]
    if changed or publish:  # after a publish: the artifact's sha, so an unchanged redeploy is skipped
        calls.append(Call("Microsoft.Web/sites/config/write", "settings",
                          f"set app settings: {', '.join(changed or [SHA_SETTING])}",
                          {"properties": wanted, "remove": removed}))
    return calls


def site_changes(s: Settings, blob: str, remote: RemoteState) -> list[str]:
    """What differs between the deployed app and the settings (by ARM's field names)."""
    assert remote.site is not None
    p = remote.site.properties
    changes = []
    if (p.get("serverFarmId") or "").lower() != plan_id(s).lower():
        changes.append("serverFarmId")
    if (p.get("runtime") or {}).get("version") != s.python:
        changes.append("runtime")
    if p.get("instanceMemoryMB") != s.memory:
        changes.append("instanceMemoryMB")
    if p.get("maximumInstanceCount") != s.max_instances:
        changes.append("maximumInstanceCount")
    if blob != BLOB and (p.get("deploymentStorage") or "").rstrip("/") != container_url(blob, s.container):
        changes.append("deployment storage")
    if s.owner is not None and remote.site.tags.get(OWNER_TAG) != s.owner:
        changes.append(f"tags ({OWNER_TAG}={s.owner})")
    if remote.site.tags.get(TAG) != s.app:
        changes.append(f"tags ({TAG})")
    return sorted(set(changes), key=changes.index)


def settings_changes(wanted: dict[str, str], deployed: dict[str, str], s: Settings) -> list[str]:
    """Names of the app settings to set (values never shown: --env may hold secrets)."""
    out = []
    for key, value in wanted.items():
        have = deployed.get(key)
        if value == CONNECTION:
            if have is None or f"AccountName={s.storage_account};" not in have:
                out.append(key)
        elif have != value:
            out.append(key)
    return out


def is_unchanged(calls: list[Call], remote: RemoteState) -> bool:
    return remote.site is not None and not any(c.mutating for c in calls)
