"""The Azure provider: a Flex Consumption function app, glued from this package's parts.

``plan`` = :mod:`.remote` (read what exists) + :mod:`.planner` (decide, pure);
``apply`` = :mod:`.executor` (replay the calls, publish). The management SDKs and
azure-identity are imported inside methods only: ``kagg --help`` never loads them.
A credential can be given to the constructor (any object with ``get_token()``);
otherwise azure-identity's chain is used (:mod:`.credentials`).
"""

from __future__ import annotations

import threading
from dataclasses import asdict
from pathlib import Path
from typing import Any, Optional

from kagg.errors import BadInput
from kagg.model import Artifact, ConvertedFunction, DeployOptions, Endpoint, Plan, utc_now
from kagg.providers.azure import credentials, endpoints, executor, planner, remote, settings, signing, teardown
from kagg.providers.azure.clients import Clients, RetrySettings
from kagg.providers.azure.planner import ArtifactInfo, Call
from kagg.providers.azure.publish import BuildFailed, PublishSettings
from kagg.providers.azure.settings import Settings
from kagg.providers.base import OWNER_TAG, Provider

NO_LOCATION = ("no Azure location chosen; pass --location (e.g. eastus, westeurope; "
               "`az functionapp list-flexconsumption-locations` lists those with Flex Consumption)")


class AzureProvider(Provider):
    """Deploys an artifact as an Azure Functions app on the Flex Consumption plan."""

    name = "azure"
    shims = ("azure",)
    name_pattern = settings.NAME_PATTERN  # the registry checks entries with it too
    name_rule = settings.NAME_RULE
    options_used = frozenset({"region", "memory", "env", "public", "max_instances", "subscription",
                              "resource_group"})

    def __init__(self, state_dir: Optional[Path] = None, credential: Any = None):
        super().__init__(state_dir)
        self._credential = credential
        self._clients: dict[tuple[str, str], Clients] = {}
        self._keys: dict[tuple[str, str], str] = {}  # function keys read in this process: memory only
        self._lock = threading.RLock()

    # -- credentials and clients (lazily) ----------------------------------------------------------------
    @property
    def credential(self) -> Any:
        if self._credential is None:
            self._credential = credentials.default_credential()
        return self._credential

    def clients(self, subscription: str, extra: Optional[dict] = None) -> Clients:
        retry = RetrySettings.from_extra(extra or {})
        key = (subscription, repr(retry))
        with self._lock:
            if key not in self._clients:
                self._clients[key] = Clients(self.credential, subscription, retry)
            return self._clients[key]

    # -- checks ----------------------------------------------------------------------------------------------
    def validate_options(self, options: DeployOptions) -> None:
        """Every value checked locally, and the URLs kagg would talk to. No call."""
        settings.check_options(options)
        endpoints.arm_url()
        endpoints.scm_url("app")
        endpoints.site_url("app")

    def validate_target(self, name: str, current: Optional[Endpoint], options: DeployOptions) -> None:
        if not options.region and not (current is not None and current.region):
            raise BadInput(NO_LOCATION)
        if current is not None and current.region and options.region and options.region != current.region:
            raise BadInput(f"endpoint {name!r} is deployed in {current.region}, not {options.region}; redeploy it "
                           f"with --location {current.region} or delete it first")
        data = current.provider_data if current is not None else {}
        if options.resource_group and data.get("resource_group") and options.resource_group != data["resource_group"]:
            raise BadInput(f"endpoint {name!r} is in resource group {data['resource_group']}, not "
                           f"{options.resource_group}; leave out --resource-group or delete it first")

    def settings(self, name: str, options: DeployOptions, current: Optional[Endpoint]) -> Settings:
        data = current.provider_data if current is not None else {}
        location = options.region or (current.region if current is not None else None)
        if not location:
            raise BadInput(NO_LOCATION)
        subscription = remote.choose_subscription(lambda sub: self.clients(sub, options.extra), options.subscription,
                                                  data.get("subscription"))
        return Settings(subscription=subscription, location=location,
                        resource_group=options.resource_group or data.get("resource_group")
                        or settings.default_group(name),
                        app=data.get("app") or settings.app_name(name),
                        memory=options.memory or settings.DEFAULT_MEMORY,
                        max_instances=options.max_instances or settings.DEFAULT_MAX_INSTANCES,
                        python=settings.python_version(), env=dict(options.env or {}), public=bool(options.public),
                        force=bool(options.force), owner=options.owner)

    # -- build -----------------------------------------------------------------------------------------------
    def build(self, function: ConvertedFunction, options: DeployOptions) -> Artifact:
        """The zip; the builder adds ``azure-functions`` to requirements.txt (Azure installs them)."""
        from kagg.packaging.builder import build_artifact

        return build_artifact(function, provider=self.name, shims=self.shims,
                              out_dir=self.state_dir / "artifacts" / "azure")

    # -- plan and apply --------------------------------------------------------------------------------------
    def plan(self, artifact: Artifact, current: Optional[Endpoint], options: DeployOptions) -> Plan:
        """Read what exists and list, in order, the calls that would bring it to ``options``."""
        self.validate_options(options)
        s = self.settings(artifact.function.name, options, current)
        c = self.clients(s.subscription, options.extra)
        state = remote.read_state(c, s)
        planner.check_state(s, state)
        if state.site is not None:  # change it only if this registry's entry made it (or --adopt)
            self.check_owner(f"function app {s.app} in {s.resource_group}", state.site.tags.get(OWNER_TAG),
                             current, options)
        previous_env = tuple((current.provider_data or {}).get("env_keys") or ()) if current else ()
        calls = planner.plan_calls(ArtifactInfo(artifact.sha256, artifact.size), s, state, previous_env)
        data = {"region": s.location, "settings": asdict(s), "calls": [asdict(x) for x in calls],
                "blob": state.storage.properties.get("blob") if state.storage is not None else None,
                "site_exists": state.site is not None}
        return Plan(provider=self.name, name=artifact.function.name, artifact=artifact, current=current,
                    options=options, steps=[x.step() for x in calls],
                    unchanged=planner.is_unchanged(calls, state), data=data)

    def pending_data(self, plan: Plan) -> dict:
        """What a deploy killed midway may leave: the app, its plan and container, by name."""
        return self._names(Settings(**plan.data["settings"]))

    @staticmethod
    def _names(s: Settings) -> dict:
        return {"subscription": s.subscription, "resource_group": s.resource_group, "app": s.app,
                "plan": s.plan_name, "storage_account": s.storage_account, "container": s.container}

    def apply(self, plan: Plan) -> Endpoint:
        """Make the plan's calls in order and describe the result."""
        if plan.options.dry_run:
            raise ValueError("apply() called for a dry run")
        s = Settings(**plan.data["settings"])
        extra = plan.options.extra or {}
        run = executor.Executor(self.clients(s.subscription, extra), s, plan.data.get("blob"),
                                plan.artifact.path.read_bytes, PublishSettings.from_extra(extra), self.progress)
        function, current = plan.artifact.function, plan.current
        try:
            run.run([Call(**spec) for spec in plan.data["calls"]])
        except BuildFailed as exc:
            if current is None or current.pending:
                raise
            raise BuildFailed(f"{exc.message}; the previous version still serves", endpoint=current) from exc
        return Endpoint(
            name=plan.name, provider=self.name, url=endpoints.site_url(s.app), owner=plan.options.owner,
            auth="none" if s.public else "function_key", region=s.location,
            source={"path": function.source.path, "sha256": function.source.sha256},
            artifact_sha256=plan.artifact.sha256,
            created_at=current.created_at if current is not None else utc_now(), updated_at=utc_now(),
            provider_data={**self._names(s), "memory": s.memory, "max_instances": s.max_instances,
                           "python": s.python, "env_keys": sorted(s.env), "auth_level": s.auth_level})

    # -- delete ------------------------------------------------------------------------------------------------
    def delete(self, endpoint: Endpoint, options: Optional[DeployOptions] = None) -> list[str]:
        """Remove the function app (and with ``purge`` the plan, storage and group kagg created)."""
        options = options or DeployOptions()
        data = dict(endpoint.provider_data or {})
        if not data.get("subscription") or not data.get("resource_group"):
            return [f"entry {endpoint.name} names no Azure resources (a deploy stopped before any call); "
                    "removed it from the registry"]
        data.setdefault("app", settings.app_name(endpoint.name))
        c = self.clients(data["subscription"], options.extra)
        warnings, gone = teardown.delete_app(c, data, endpoint.owner)
        if (options.extra or {}).get("purge"):
            if gone:
                warnings += teardown.purge(c, data, endpoint.owner)
            else:
                warnings.append("--purge skipped: the function app was not this entry's")
        return warnings

    # -- calling -----------------------------------------------------------------------------------------------
    def sign(self, endpoint: Endpoint, method: str, url: str, headers: dict[str, str],
             body: bytes) -> dict[str, str]:
        """Adds the host's function key (read through ARM now) unless the app is public."""
        if (endpoint.auth or "none").lower() == "none":
            return dict(headers)
        data = endpoint.provider_data or {}
        where = (data.get("resource_group") or "", data.get("app") or endpoint.name)
        with self._lock:  # monitor signs from many threads: the key is read once
            if where not in self._keys:
                self._keys[where] = signing.host_key(self.clients(data.get("subscription") or ""), *where)
            key = self._keys[where]
        return {**headers, signing.KEY_HEADER: key}
