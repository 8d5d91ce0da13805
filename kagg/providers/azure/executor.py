"""The mutating half of a deploy: replay a plan's calls in order.

The executor decides nothing: it fills the placeholders (the storage account's
connection string, read with listKeys only now and never kept; the blob
endpoint of an account made a moment ago), makes each call through the
management SDKs (long-running ones followed to the end by their pollers), and
publishes through :mod:`.publish`.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Optional

from kagg.providers.azure import endpoints, publish
from kagg.providers.azure.clients import Clients
from kagg.providers.azure.credentials import bearer
from kagg.providers.azure.errors import arm
from kagg.providers.azure.planner import BLOB, Call
from kagg.providers.azure.settings import CONNECTION, Settings

log = logging.getLogger("kagg.azure")


def connection_string(account: str, key: str, blob: Optional[str]) -> str:
    """A storage connection string; Azure's suffix form for *.blob.<suffix> endpoints, else BlobEndpoint."""
    from urllib.parse import urlsplit

    host = urlsplit(blob or "").hostname or ""
    prefix = f"{account}.blob."
    if host.startswith(prefix):
        return (f"DefaultEndpointsProtocol=https;AccountName={account};AccountKey={key};"
                f"EndpointSuffix={host[len(prefix):]}")
    return f"DefaultEndpointsProtocol=https;AccountName={account};AccountKey={key};BlobEndpoint={blob}"


def fill(value: Any, values: dict[str, str]) -> Any:
    if isinstance(value, dict):
        return {k: fill(v, values) for k, v in value.items()}
    if isinstance(value, list):
        return [fill(v, values) for v in value]
    if isinstance(value, str) and value in values:
        return values[value]
    if isinstance(value, str) and value.startswith(BLOB + "/") and BLOB in values:
        return values[BLOB].rstrip("/") + value[len(BLOB):]
    return value


class Executor:
    """Makes one plan's calls against one subscription."""

    def __init__(self, clients: Clients, s: Settings, blob: Optional[str], read_zip: Callable[[], bytes],
                 publish_settings: publish.PublishSettings, progress: Callable[[str], None]):
        self.c, self.s, self.read_zip, self.progress = clients, s, read_zip, progress
        self.publish_settings = publish_settings
        self.values: dict[str, str] = {BLOB: blob} if blob else {}
        self.host: Optional[publish.DeploymentHost] = None
        self.deployment: Optional[dict] = None

    def run(self, calls: list[Call]) -> None:
        for c in calls:
            self.progress(f"{self.s.app}: {c.description}")
            getattr(self, f"_{c.op}")(c)
            log.info("azure: %s done", c.action)

    # -- one method per kind of call ----------------------------------------------------------------
    def _group(self, c: Call) -> None:
        arm(self.c.resource.resource_groups.create_or_update, f"creating resource group {self.s.resource_group}",
            self.s.resource_group, c.body)

    def _storage(self, c: Call) -> None:
        what = f"creating storage account {self.s.storage_account}"
        poller = arm(self.c.storage.storage_accounts.begin_create, what, self.s.resource_group,
                     self.s.storage_account, c.body)
        account = arm(poller.result, what)
        if account is not None and account.primary_endpoints is not None:
            self.values[BLOB] = account.primary_endpoints.blob

    def _container(self, c: Call) -> None:
        arm(self.c.storage.blob_containers.create, f"creating container {self.s.container}", self.s.resource_group,
            self.s.storage_account, self.s.container, c.body)

    def _plan(self, c: Call) -> None:
        what = f"creating plan {self.s.plan_name}"
        poller = arm(self.c.web.app_service_plans.begin_create_or_update, what, self.s.resource_group,
                     self.s.plan_name, c.body)
        arm(poller.result, what)

    def _site(self, c: Call) -> None:
        what = f"creating or updating function app {self.s.app}"
        poller = arm(self.c.web.web_apps.begin_create_or_update, what, self.s.resource_group, self.s.app,
                     self._filled(c.body))
        arm(poller.result, what)

    def _publish(self, c: Call) -> None:
        token = bearer(self.c.credential, endpoints.token_scope(self.c.arm))
        self.host = publish.DeploymentHost(endpoints.scm_url(self.s.app), token, self.s.app, self.publish_settings)
        self.host.publish(self.read_zip())
        self.deployment = self.host.follow(self.progress)

    def _verify(self, c: Call) -> None:
        functions = arm(self.c.web.web_apps.list_functions, f"listing the functions of {self.s.app}",
                        self.s.resource_group, self.s.app)
        if not list(functions or []):
            raise publish.zero_functions_error(self.s.app, self.host, self.deployment)

    def _keys(self, c: Call) -> None:
        """The key exists once the host has started: read it (and drop it) so a deploy that
        succeeds is one that ``kagg invoke`` can call at once."""
        from kagg.providers.azure.signing import host_key

        host_key(self.c, self.s.resource_group, self.s.app)

    def _settings(self, c: Call) -> None:
        rg, app = self.s.resource_group, self.s.app
        listed = arm(self.c.web.web_apps.list_application_settings, f"reading the app settings of {app}", rg, app)
        current = dict(getattr(listed, "properties", None) or {})
        merged = {k: v for k, v in current.items() if k not in c.body["remove"]}
        wanted = dict(c.body["properties"])
        for key, value in list(wanted.items()):  # a connection string to this account already there: kept
            if value == CONNECTION and f"AccountName={self.s.storage_account};" in (current.get(key) or ""):
                wanted[key] = current[key]
        merged.update(self._filled(wanted))
        arm(self.c.web.web_apps.update_application_settings, f"setting the app settings of {app}", rg, app,
            {"properties": merged})

    # -- placeholders ---------------------------------------------------------------------------------
    def _filled(self, body: Any) -> Any:
        if CONNECTION in str(body) and CONNECTION not in self.values:
            self.values[CONNECTION] = self._connection()
        return fill(body, self.values)

    def _connection(self) -> str:
        rg, account = self.s.resource_group, self.s.storage_account
        if BLOB not in self.values:
            found = arm(self.c.storage.storage_accounts.get_properties, f"reading storage account {account}",
                        rg, account)
            self.values[BLOB] = found.primary_endpoints.blob
        keys = arm(self.c.storage.storage_accounts.list_keys, f"reading the keys of storage account {account}",
                   rg, account)
        key = keys.keys_property[0].value  # .keys is shadowed by the dict method (cloud-apis.md)
        return connection_string(account, key, self.values[BLOB])
