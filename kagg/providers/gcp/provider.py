"""The gcp provider: Google Cloud Functions (2nd gen), glued from this package's parts.

``plan`` = :mod:`.remote` (read what exists) + :mod:`.planner` (decide, pure);
``apply`` = :mod:`.executor` (replay the calls); credentials and clients come
from :mod:`.clients`, shared by every instance. The Google SDKs are imported
inside methods: ``kagg --help`` and the local provider never load them.
"""

from __future__ import annotations

import os
import re
from dataclasses import asdict, replace
from typing import Any, Iterator, Optional

from kagg.errors import BadInput, DeployFailed
from kagg.model import Artifact, ConvertedFunction, DeployOptions, Endpoint, Plan, utc_now
from kagg.providers.base import OWNER_TAG, Provider
from kagg.providers.gcp import clients, executor, planner, remote, settings, signing, teardown
from kagg.providers.gcp.credentials import NO_PROJECT
from kagg.providers.gcp.planner import ArtifactInfo, Call
from kagg.providers.gcp.retry import GCPCallFailed, RetryPolicy
from kagg.providers.gcp.settings import REGION_ENV, Settings

#: what the artifact's requirements.txt gains when the notebook does not name it: GCF's Python
#: buildpack serves ``main.py`` through functions-framework, which Cloud Build installs from there
FRAMEWORK_REQUIREMENT = "functions-framework>=3.5,<4"
_REQUIREMENT_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")
#: ``Endpoint.auth`` of a private function: callers send an ID token (see :mod:`.signing`)
AUTH_PRIVATE = "google_id_token"


class GCPProvider(Provider):
    """Deploys an artifact as an HTTP Cloud Function (2nd gen), private unless ``--public``."""

    name = "gcp"
    shims = ("gcf",)
    name_pattern = re.compile(r"^[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?$")
    name_rule = ("1-63 characters: lower-case letters, digits and '-', starting with a letter and not ending "
                 "with '-' (the rule for Cloud Functions names)")
    options_used = frozenset({"region", "memory", "timeout", "env", "public", "project", "service_account",
                              "impersonate", "min_instances", "max_instances"})

    def clients(self, options: Optional[DeployOptions] = None, impersonate: Optional[str] = None) -> Any:
        return clients.shared(impersonate or (options.impersonate if options else None))

    # -- checks ----------------------------------------------------------------------------------
    def validate_options(self, options: DeployOptions) -> None:
        """Every value checked locally, then that credentials and a project are there. No API call."""
        settings.check_options(options)
        self._project(options)

    def _project(self, options: DeployOptions, current: Optional[Endpoint] = None) -> str:
        recorded = (current.provider_data or {}).get("project") if current is not None else None
        if options.project and recorded and options.project != recorded:
            raise BadInput(f"endpoint {current.name!r} is deployed in project {recorded}, not {options.project}; "
                           f"redeploy it with --project {recorded} or delete it first")
        project = options.project or recorded or self.clients(options).found.project
        if not project:
            raise BadInput(NO_PROJECT)
        settings.check_project(project, "the credentials' project" if not options.project else "--project")
        return project

    def validate_target(self, name: str, current: Optional[Endpoint], options: DeployOptions) -> None:
        """The region, against the regions the API lists for the project (before anything is built).

        Asked once per endpoint and region: a redeploy where the endpoint already is makes no call.
        """
        s = self.settings(options, current)
        if current is None or current.region != s.region or current.pending:
            remote.check_region(self.clients(options), s, RetryPolicy.from_extra(options.extra or {}))

    def settings(self, options: DeployOptions, current: Optional[Endpoint] = None) -> Settings:
        region = settings.choose_region(options, current, os.environ.get(REGION_ENV))
        return Settings.from_options(options, self._project(options, current), region)

    # -- build -------------------------------------------------------------------------------------
    def build(self, function: ConvertedFunction, options: DeployOptions) -> Artifact:
        """main.py + the runtime + requirements.txt naming functions-framework: Cloud Build installs it."""
        return super().build(with_framework(function), options)

    # -- plan and apply ----------------------------------------------------------------------------
    def plan(self, artifact: Artifact, current: Optional[Endpoint], options: DeployOptions) -> Plan:
        """Read what is deployed and list, in order, the calls that would bring it to ``options``."""
        self.validate_options(options)
        s = self.settings(options, current)
        policy = RetryPolicy.from_extra(options.extra or {})
        api = self.clients(options)
        fid = (current.provider_data.get("function_id") if current else None) or artifact.function.name
        info = ArtifactInfo(fid, artifact.function.name, artifact.sha256, artifact.size)
        recorded = None if current is None or current.pending else (current.auth == "none")
        state = remote.read_state(api, s, fid, policy, recorded)
        if state.function is not None:  # change it only if this registry's entry made it (or --adopt)
            self.check_owner(f"Cloud Function {fid} in {s.project}/{s.region}", state.labels.get(OWNER_TAG),
                             current, options)
        calls = planner.plan_calls(info, s, state)
        data: dict[str, Any] = {
            "region": s.region, "project": s.project, "function_id": fid, "settings": asdict(s),
            "desired": planner.desired_function(info, s, state.function), "uri": state.uri,
            "service": state.service, "impersonate": options.impersonate, "calls": [asdict(c) for c in calls]}
        return Plan(provider=self.name, name=artifact.function.name, artifact=artifact, current=current,
                    options=options, steps=[c.step() for c in calls],
                    unchanged=planner.is_unchanged(calls, state), data=data)

    def pending_data(self, plan: Plan) -> dict:
        """What a deploy killed midway may leave: the function, named by project, region and id."""
        data = plan.data
        return {"function_id": data["function_id"], "project": data["project"], "impersonate": data["impersonate"]}

    def apply(self, plan: Plan) -> Endpoint:
        """Make the plan's calls in order (retrying transient errors) and describe the result."""
        if plan.options.dry_run:
            raise ValueError("apply() called for a dry run")
        data = plan.data
        s = Settings(**data["settings"])
        ctx = executor.Context(self.clients(plan.options), s, RetryPolicy.from_extra(plan.options.extra or {}),
                               data["function_id"], self.progress)
        try:
            outcome = executor.execute([Call(**spec) for spec in data["calls"]], ctx, data["desired"],
                                       plan.artifact.path.read_bytes, executor.Outcome(data["uri"], data["service"]))
        except GCPCallFailed as exc:
            if ctx.changed:
                raise  # the entry stays pending: a redeploy finishes the job, `kagg delete` cleans up
            failed = DeployFailed(exc.message, nothing_left=True)  # Google changed nothing: the old entry stands
            failed.transient = exc.transient  # type: ignore[attr-defined]
            raise failed from exc
        if not outcome.uri or not outcome.service:
            found = remote.read_function(ctx.clients, s, data["function_id"], ctx.policy) or {}
            config = found.get("service_config") or {}
            outcome.uri, outcome.service = config.get("uri"), config.get("service")
        if not outcome.uri:
            raise BadInput(f"Cloud Function {data['function_id']} has no URL yet; run the deploy again")
        function, current = plan.artifact.function, plan.current
        return Endpoint(
            name=plan.name, provider=self.name, url=outcome.uri.rstrip("/") + "/", owner=plan.options.owner,
            auth="none" if s.public else AUTH_PRIVATE, region=s.region,
            source={"path": function.source.path, "sha256": function.source.sha256},
            artifact_sha256=plan.artifact.sha256,
            created_at=current.created_at if current is not None else utc_now(),
            updated_at=utc_now(),
            provider_data={
                "function_id": data["function_id"], "project": s.project, "service": outcome.service,
                "function_name": s.function_path(data["function_id"]), "runtime": settings.RUNTIME,
                "memory": s.memory, "timeout": s.timeout, "min_instances": s.min_instances,
                "max_instances": s.max_instances, "env_keys": sorted(s.env), "service_account": s.service_account,
                "impersonate": data["impersonate"], "sha_label": settings.sha_label(plan.artifact.sha256)})

    # -- delete ------------------------------------------------------------------------------------
    def delete(self, endpoint: Endpoint, options: Optional[DeployOptions] = None) -> list[str]:
        """Remove the function (and with it its Cloud Run service); says if it was already gone."""
        options = options or DeployOptions()
        data = endpoint.provider_data or {}
        api = self.clients(options, data.get("impersonate"))
        project = data.get("project") or options.project or api.found.project
        if not project:
            raise BadInput(NO_PROJECT)
        region = endpoint.region or options.region or os.environ.get(REGION_ENV) or settings.DEFAULT_REGION
        s = Settings(project=project, region=region)
        fid = data.get("function_id") or endpoint.name
        return teardown.delete_function(api, s, fid, RetryPolicy.from_extra(options.extra or {}), endpoint.owner)

    # -- calling -----------------------------------------------------------------------------------
    def sign(self, endpoint: Endpoint, method: str, url: str, headers: dict[str, str],
             body: bytes) -> dict[str, str]:
        """A bearer ID token (audience: the function's URL) for private functions; others unchanged."""
        if (endpoint.auth or "none").lower() == "none":
            return dict(headers)
        impersonate = (endpoint.provider_data or {}).get("impersonate")
        token = signing.id_token(signing.audience_of(endpoint.url or url), impersonate)
        return {**{k: v for k, v in headers.items() if k.lower() != "authorization"},
                "authorization": f"Bearer {token}"}

    def logs(self, endpoint: Endpoint, follow: bool = False) -> Iterator[str]:
        """The function's Cloud Logging entries of the last hour; with ``follow``, new ones as they come."""
        from kagg.providers.gcp.logs import log_lines

        data = endpoint.provider_data or {}
        service = (data.get("service") or "").rsplit("/", 1)[-1] or data.get("function_id") or endpoint.name
        project = data.get("project") or self.clients().found.project
        yield from log_lines(project, endpoint.region or settings.DEFAULT_REGION, service, follow)


def with_framework(function: ConvertedFunction) -> ConvertedFunction:
    """``function`` whose requirements name functions-framework (unchanged when they already do)."""
    names = set()
    for line in function.requirements:
        found = _REQUIREMENT_NAME.match(line)
        if found:
            names.add(found.group(1).lower().replace("_", "-"))
    if "functions-framework" in names:
        return function
    return replace(function, requirements=[*function.requirements, FRAMEWORK_REQUIREMENT])
