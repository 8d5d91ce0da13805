"""The resource logic of the Azure stand-in (tests/azure_standin.py): ARM resources and the SCM host.

Replies follow ARM: ids with Azure's casing, site locations as display names,
202 + ``Azure-AsyncOperation`` for plans and sites, 202 + ``Location`` for storage
accounts and group deletes, ``{"error": {"code", "message"}}`` bodies. Flex
Consumption's own rules are enforced: one site per FC1 plan, no
WEBSITE_RUN_FROM_PACKAGE / SCM_DO_BUILD_DURING_DEPLOYMENT, instance memory 512/2048/4096.
"""

from __future__ import annotations

import re
import secrets
import time
from typing import Any

from azure_site import AppHost
from azure_standin import LOCATIONS, App, Reply, arm_error

FORBIDDEN_SETTINGS = {"WEBSITE_RUN_FROM_PACKAGE", "SCM_DO_BUILD_DURING_DEPLOYMENT"}


def _async(s: Any, sub: str, header: str) -> dict:
    op = secrets.token_hex(6)
    s.operations[op] = s.polls_per_operation
    # ARM sends Retry-After on async operations; a short one keeps the tests from waiting (the
    # Location poller of azure-mgmt-core reads it as an integer: 1 s there)
    wait = "1" if header == "Location" else "0.01"
    return {header: f"{s.base}/subscriptions/{sub}/operations/{op}?api-version=2025-05-01", "Retry-After": wait}


def _group_id(sub: str, rg: str) -> str:
    return f"/subscriptions/{sub}/resourceGroups/{rg}"


def _need_group(s: Any, rg: str) -> dict:
    group = s.groups.get(rg.lower())
    if group is None:
        raise arm_error(404, "ResourceGroupNotFound", f"Resource group '{rg}' could not be found.")
    return group


def handle_arm(s: Any, op: str, g: dict, data: dict, query: dict, path: str) -> Any:
    sub = g.get("sub", "")
    if op == "subscriptions.list":
        return {"value": [{"id": f"/subscriptions/{x}", "subscriptionId": x, "displayName": f"kagg test {i}",
                           "state": "Enabled", "tenantId": "tenant"} for i, x in enumerate(s.subscriptions)]}
    if op == "providers.get":
        locs = list(LOCATIONS.values())
        return {"id": f"/subscriptions/{sub}/providers/Microsoft.Web", "namespace": "Microsoft.Web",
                "registrationState": "Registered" if s.web_registered else "NotRegistered",
                "resourceTypes": [{"resourceType": "sites", "locations": locs},
                                  {"resourceType": "serverFarms", "locations": locs}]}
    if op == "web.checkName":
        name = str(data.get("name", "")).lower()
        taken = name in s.taken_sites or any(k[1] == name for k in s.sites)
        return {"nameAvailable": not taken, "reason": "AlreadyExists" if taken else None,
                "message": f"Hostname '{name}' already exists. Please select a different name." if taken else None}
    if op == "storage.checkName":
        name = str(data.get("name", ""))
        if not re.fullmatch(r"[a-z0-9]{3,24}", name):
            return {"nameAvailable": False, "reason": "AccountNameInvalid",
                    "message": f"{name} is not a valid storage account name. Storage account name must be between "
                               "3 and 24 characters in length and use numbers and lower-case letters only."}
        taken = name in s.taken_accounts or any(k[1] == name for k in s.accounts)
        return {"nameAvailable": not taken, "reason": "AlreadyExists" if taken else None,
                "message": f"The storage account named {name} is already taken." if taken else None}
    if op == "operation.get":
        left = s.operations.get(g["op"], 0)
        if left > 0:
            s.operations[g["op"]] = left - 1
            return 202 if "kind" in query else 200, {"status": "InProgress"}, {"Retry-After": "1" if "kind" in query else "0.01"}
        return {"status": "Succeeded"}
    rg = g["rg"]
    if op.startswith("groups."):
        return _groups(s, op, sub, rg, data)
    group = _need_group(s, rg)
    rid = _group_id(sub, group["name"])
    if op.startswith(("storage.", "containers.")):
        return _storage(s, op, sub, rid, g, data)
    if op.startswith("plans."):
        return _plans(s, op, sub, rid, g, data)
    return _sites(s, op, sub, rid, g, data)


def _groups(s: Any, op: str, sub: str, rg: str, data: dict) -> Any:
    key = rg.lower()
    if op == "groups.get":
        return _need_group(s, rg)
    if op == "groups.put":
        new = key not in s.groups
        s.groups[key] = {"id": _group_id(sub, rg), "name": rg, "type": "Microsoft.Resources/resourceGroups",
                         "location": data["location"], "tags": data.get("tags") or {},
                         "properties": {"provisioningState": "Succeeded"}}
        return 201 if new else 200, s.groups[key], {}
    if op == "groups.resources":
        _need_group(s, rg)
        found = [(a["id"], a["name"], a["type"]) for k, a in s.accounts.items() if k[0] == key]
        found += [(p["id"], p["name"], p["type"]) for k, p in s.plans.items() if k[0] == key]
        found += [(x["id"], x["name"], x["type"]) for k, x in s.sites.items() if k[0] == key]
        return {"value": [{"id": i, "name": n, "type": t} for i, n, t in found]}
    _need_group(s, rg)  # delete: everything in it goes
    for table in (s.accounts, s.plans, s.sites):
        for k in [k for k in table if k[0] == key]:
            del table[k]
            if table is s.sites:
                _stop(s, k[1])
    s.containers = {k: v for k, v in s.containers.items() if k[0] != key}
    del s.groups[key]
    return 202, None, _async(s, sub, "Location")


def _storage(s: Any, op: str, sub: str, rid: str, g: dict, data: dict) -> Any:
    key = (g["rg"].lower(), g["sa"])
    account = s.accounts.get(key)
    if op == "storage.put":
        name = g["sa"]
        if not re.fullmatch(r"[a-z0-9]{3,24}", name):
            raise arm_error(400, "AccountNameInvalid", f"{name} is not a valid storage account name.")
        if name in s.taken_accounts or any(k[1] == name and k != key for k in s.accounts):
            raise arm_error(409, "StorageAccountAlreadyTaken", f"The storage account named {name} is already taken.")
        s.accounts[key] = {"id": f"{rid}/providers/Microsoft.Storage/storageAccounts/{name}", "name": name,
                           "type": "Microsoft.Storage/storageAccounts", "location": data["location"],
                           "kind": data.get("kind"), "sku": data.get("sku"), "tags": data.get("tags") or {},
                           "properties": {**(data.get("properties") or {}), "provisioningState": "Succeeded",
                                          "primaryEndpoints": {"blob": f"https://{name}.blob.core.windows.net/"}},
                           "_key": account["_key"] if account else secrets.token_urlsafe(24)}  # a PUT keeps keys
        s.containers.setdefault(key, set())
        headers = _async(s, sub, "Location")
        headers["Location"] += "&kind=location"
        return 202, None, headers
    if account is None:
        raise arm_error(404, "ResourceNotFound", f"The Resource 'Microsoft.Storage/storageAccounts/{g['sa']}' "
                                                 "was not found.")
    public = {k: v for k, v in account.items() if not k.startswith("_")}
    if op == "storage.get":
        return public
    if op == "storage.delete":
        del s.accounts[key]
        s.containers.pop(key, None)
        return 200, None, {}
    if op == "storage.listKeys":
        return {"keys": [{"keyName": "key1", "value": account["_key"], "permissions": "FULL"}]}
    containers = s.containers.setdefault(key, set())
    cid = f"{account['id']}/blobServices/default/containers"
    if op == "containers.list":
        return {"value": [{"id": f"{cid}/{c}", "name": c, "type": "Microsoft.Storage/storageAccounts/blobServices/"
                           "containers", "properties": {}} for c in sorted(containers)]}
    name = g["c"]
    body = {"id": f"{cid}/{name}", "name": name, "type": "Microsoft.Storage/storageAccounts/blobServices/containers",
            "properties": {"publicAccess": "None"}}
    if op == "containers.put":
        new = name not in containers
        containers.add(name)
        return 201 if new else 200, body, {}
    if name not in containers:
        raise arm_error(404, "ContainerNotFound", "The specified container does not exist.")
    if op == "containers.delete":
        containers.discard(name)
        return 200, None, {}
    return body


def _plans(s: Any, op: str, sub: str, rid: str, g: dict, data: dict) -> Any:
    key = (g["rg"].lower(), g["plan"])
    if op == "plans.put":
        s.plans[key] = {"id": f"{rid}/providers/Microsoft.Web/serverfarms/{g['plan']}", "name": g["plan"],
                        "type": "Microsoft.Web/serverfarms", "kind": data.get("kind"),
                        "location": LOCATIONS.get(data["location"], data["location"]), "tags": data.get("tags") or {},
                        "sku": data.get("sku"), "properties": {**(data.get("properties") or {}),
                                                               "provisioningState": "Succeeded"}}
        return 202, None, _async(s, sub, "Azure-AsyncOperation")
    plan = s.plans.get(key)
    if plan is None:
        raise arm_error(404, "ResourceNotFound", f"The Resource 'Microsoft.Web/serverFarms/{g['plan']}' was not found.")
    if op == "plans.get":
        return plan
    users = [x["name"] for x in s.sites.values() if x["properties"]["serverFarmId"].lower() == plan["id"].lower()]
    if users:
        raise arm_error(409, "Conflict", f"Server farm '{g['plan']}' cannot be deleted because it has web app(s) "
                                         f"{', '.join(users)} assigned to it.")
    del s.plans[key]
    return 200, None, {}


def _check_site(s: Any, key: tuple, data: dict) -> None:
    props = data.get("properties") or {}
    farm = str(props.get("serverFarmId") or "")
    plan = next((p for p in s.plans.values() if p["id"].lower() == farm.lower()), None)
    if plan is None:
        raise arm_error(404, "NotFound", f"Server farm with name {farm.rsplit('/', 1)[-1]} not found.")
    if (plan.get("sku") or {}).get("name") == "FC1":
        others = [k for k, x in s.sites.items() if x["properties"]["serverFarmId"].lower() == farm.lower() and k != key]
        if others:
            raise arm_error(400, "BadRequest", "There can only be one site per Flex Consumption serverfarm.")
        fac = props.get("functionAppConfig") or {}
        if not fac.get("deployment") or (fac.get("runtime") or {}).get("name") != "python":
            raise arm_error(400, "BadRequest", "functionAppConfig with deployment storage and a runtime is required "
                                               "for Flex Consumption apps.")
        memory = (fac.get("scaleAndConcurrency") or {}).get("instanceMemoryMB")
        if memory not in (512, 2048, 4096):
            raise arm_error(400, "BadRequest", f"Invalid instanceMemoryMB {memory}.")
    settings = {x["name"] for x in (props.get("siteConfig") or {}).get("appSettings") or []}
    bad = settings & FORBIDDEN_SETTINGS
    if bad:
        raise arm_error(400, "BadRequest", f"The app setting(s) {', '.join(sorted(bad))} are not supported "
                                           "on Flex Consumption.")
    if key not in s.sites and (key[1] in s.taken_sites or any(k[1] == key[1] for k in s.sites)):
        raise arm_error(409, "Conflict", f"Website with given name {key[1]} already exists.")


def _sites(s: Any, op: str, sub: str, rid: str, g: dict, data: dict) -> Any:
    name = g["app"]
    key = (g["rg"].lower(), name)
    if op == "sites.put":
        _check_site(s, key, data)
        props = dict(data.get("properties") or {})
        config = dict(props.pop("siteConfig", None) or {})
        if "appSettings" in config:
            s.settings[name] = {x["name"]: x["value"] for x in config.pop("appSettings")}
        s.settings.setdefault(name, {})
        s.sites[key] = {"id": f"{rid}/providers/Microsoft.Web/sites/{name}", "name": name,
                        "type": "Microsoft.Web/sites", "kind": data.get("kind"),
                        "location": LOCATIONS.get(data["location"], data["location"]), "tags": data.get("tags") or {},
                        "properties": {**props, "siteConfig": config, "state": "Running",
                                       "defaultHostName": f"{name}.azurewebsites.net"}}
        s.apps.setdefault(name, App())
        return 202, None, _async(s, sub, "Azure-AsyncOperation")
    site = s.sites.get(key)
    if site is None:
        raise arm_error(404, "ResourceNotFound", f"The Resource 'Microsoft.Web/sites/{name}' under resource group "
                                                 f"'{g['rg']}' was not found.")
    if op == "sites.get":
        return site
    if op == "sites.delete":
        del s.sites[key]
        s.settings.pop(name, None)
        _stop(s, name)
        s.apps.pop(name, None)
        return 200, None, {}
    if op == "settings.list":
        return {"id": f"{site['id']}/config/appsettings", "name": "appsettings", "type": "Microsoft.Web/sites/config",
                "properties": dict(s.settings.get(name, {}))}
    if op == "settings.put":
        s.settings[name] = dict(data.get("properties") or {})
        _restart(s, name)
        return {"id": f"{site['id']}/config/appsettings", "name": "appsettings", "properties": s.settings[name]}
    app = s.apps.setdefault(name, App())
    if op == "sites.listKeys":
        return {"masterKey": secrets.token_urlsafe(16), "functionKeys": {"default": app.key}, "systemKeys": {}}
    functions = app.host.functions if app.host is not None else []
    return {"value": [{"id": f"{site['id']}/functions/{f['name']}", "name": f"{name}/{f['name']}",
                       "type": "Microsoft.Web/sites/functions", "properties": {"name": f["name"], "config": {}}}
                      for f in functions]}


def _stop(s: Any, name: str) -> None:
    app = s.apps.get(name)
    if app is not None and app.host is not None:
        app.host.stop()
        app.host = None


def _restart(s: Any, name: str) -> None:
    """An app-settings change restarts the host: the worker indexes function_app.py again."""
    app = s.apps.get(name)
    if app is not None and app.host is not None:
        folder = app.host.folder
        app.host.stop()
        app.host = AppHost(folder, s.settings.get(name, {}))


# -- the deployment host ------------------------------------------------------------------------------------
def handle_scm(s: Any, h: Any, seen: Any, path: str, query: dict, body: bytes) -> Any:
    parts = path.split("/")
    name, rest = parts[2], "/".join(parts[3:])
    with s.lock:
        exists = any(k[1] == name for k in s.sites)
        app = s.apps.setdefault(name, App()) if exists else None
    if app is None:
        raise Reply(404, b"", {})
    if rest == "api/publish" and h.command == "POST":
        seen.op, seen.mutating = "scm.publish", True
        with s.lock:
            if s.publish_busy > 0:
                s.publish_busy -= 1
                raise Reply(409, b"There is a deployment currently in progress.", {"Content-Type": "text/plain"})
        if h.headers.get("Content-Type") != "application/zip" or query.get("RemoteBuild") != "true":
            raise Reply(400, b"expected application/zip with RemoteBuild=true", {"Content-Type": "text/plain"})
        status, lines, host = s.build(name, body)
        ident = secrets.token_hex(8)
        with s.lock:
            if host is not None:
                _stop(s, name)
                app.host = host
            app.logs[ident] = lines
            app.deployments.append({"id": ident, "status": status, "status_text": "" if status == 4 else "Failed",
                                    "complete": True, "received_time": time.strftime("%Y-%m-%dT%H:%M:%SZ"),
                                    "_pending": 1})
        return 202, b"", {"Location": f"{s.base}/scm/{name}/api/deployments/latest"}
    if rest == "api/deployments/latest":
        seen.op = "scm.latest"
        if not app.deployments:
            raise Reply(404, b"", {})
        last = app.deployments[-1]
        if last["_pending"] > 0:
            last["_pending"] -= 1
            return {"id": last["id"], "status": 1, "status_text": "Building and deploying", "complete": False}
        return {k: v for k, v in last.items() if not k.startswith("_")}
    m = re.fullmatch(r"api/deployments/([^/]+)/log(?:/(\d+))?", rest)
    if m and m.group(1) in app.logs:
        seen.op = "scm.log"
        lines = app.logs[m.group(1)]
        if m.group(2) is None:
            return [{"log_time": "2026-01-01T00:00:00Z", "id": "1", "message": "Deployment log", "type": 0,
                     "details_url": f"{s.base}/scm/{name}/api/deployments/{m.group(1)}/log/1"}]
        return [{"log_time": "2026-01-01T00:00:00Z", "id": str(i), "message": line,
                 "type": 2 if "error" in line.lower() else 0} for i, line in enumerate(lines)]
    raise Reply(404, b"", {})
