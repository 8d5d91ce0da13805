"""The AWS provider: Lambda behind a function URL, glued from this package's parts.

``plan`` = :mod:`.remote` (read what exists) + :mod:`.planner` (decide, pure);
``apply`` = :mod:`.executor` (replay the calls); boto3 sessions and clients
come from :mod:`.clients`, shared by every instance. The class itself checks
options, builds the zip and deletes.
boto3 is imported inside methods: ``kagg --help`` and the local provider never
load it.
"""

from __future__ import annotations

import re
from dataclasses import asdict
from pathlib import Path
from typing import Any, Iterator, Optional

from kagg.errors import BadInput
from kagg.model import Artifact, ConvertedFunction, DeployOptions, Endpoint, Plan, utc_now
from kagg.providers.aws import clients, deps, executor, planner, remote, settings, signing, teardown
from kagg.providers.aws.planner import ArtifactInfo, Call
from kagg.providers.aws.retry import RetryPolicy, call
from kagg.providers.aws.settings import (CREDENTIAL_WAYS, DEFAULT_ARCH, DEFAULT_RUNTIME, MAX_UNZIPPED_BYTES,
                                         NO_CREDENTIALS, NO_REGION, Settings)
from kagg.providers.base import OWNER_TAG, Provider


class AWSProvider(Provider):
    """Deploys an artifact as a Lambda function with a function URL (payload format 2.0)."""

    name = "aws"
    shims = ("lambda",)
    name_pattern = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
    name_rule = "1-64 characters: letters, digits, '-' and '_' (the rule for Lambda function names)"
    #: the DeployOptions fields this provider reads (besides those kagg.deploy reads for all)
    options_used = frozenset({"region", "memory", "timeout", "env", "role", "public", "runtime", "arch", "bucket"})

    # -- boto3, lazily: one session and its clients per process and environment (see .clients) ----
    def shared(self) -> clients.Shared:
        return clients.shared()

    def client(self, service: str, region: str) -> Any:
        return clients.shared().client(service, region)

    # -- checks ----------------------------------------------------------------------------------
    def validate_options(self, options: DeployOptions) -> None:
        """Every value checked locally, then the region and the presence of credentials. No call.

        A missing region and missing credentials are reported together: one run says all the
        set-up that is missing.
        """
        settings.check_options(options)
        missing = []
        try:
            self._region(options)
        except BadInput as exc:
            if exc.message != NO_REGION:
                raise
            missing.append(exc.message)
        try:
            self.check_credentials()
        except BadInput as exc:
            if not missing:
                raise
            missing.append(exc.message)
        if missing:
            raise BadInput("; and ".join(missing))

    def check_credentials(self) -> None:
        """BadInput naming the standard ways when the chain finds nothing (no call is made)."""
        aws = self.shared()  # first: says how to install boto3 when it is missing
        from botocore.exceptions import BotoCoreError

        try:
            credentials = aws.credentials()
        except BotoCoreError as exc:
            raise BadInput(f"AWS credentials cannot be loaded ({exc}); {CREDENTIAL_WAYS}")
        if credentials is None:
            raise BadInput(NO_CREDENTIALS)

    def _region(self, options: DeployOptions, current: Optional[Endpoint] = None) -> str:
        aws = self.shared()
        region = settings.choose_region(options, current, aws.region_name, aws.regions("lambda"))
        if not region:
            raise BadInput(NO_REGION)
        return region

    def settings(self, options: DeployOptions, current: Optional[Endpoint] = None) -> Settings:
        return Settings.from_options(options, self._region(options, current))

    # -- build -------------------------------------------------------------------------------------
    def build(self, function: ConvertedFunction, options: DeployOptions) -> Artifact:
        """The Lambda zip, with the requirements installed for Lambda's platform; size-checked.

        When this interpreter is the runtime's Python, the zip also carries the .pyc of every
        module (Lambda's code folder is read-only: without them each cold start compiles all).
        """
        from kagg.packaging.builder import build_artifact, bytecode_matches

        settings.check_platform(options)
        extra = options.extra or {}
        limit = int(extra.get("max_unzipped_bytes", MAX_UNZIPPED_BYTES))
        platform = deps.Platform(options.runtime or DEFAULT_RUNTIME, options.arch or DEFAULT_ARCH)
        vendor_dir = None
        packages: list[tuple[str, int]] = []
        if any(r.strip() for r in function.requirements):
            vendored = deps.vendor(function.requirements, platform, cache_root=extra.get("cache_dir"),
                                   pip_args=list(extra.get("pip_args", ())))
            packages = vendored.packages
            if vendored.size > limit:  # refuse before spending time on a zip that cannot be used
                raise settings.too_big(vendored.size, limit, packages)
            vendor_dir = vendored.path
        out_dir = self.state_dir / "artifacts" / "aws" / f"{platform.runtime}-{platform.arch}"
        bytecode = bool(extra.get("bytecode", True)) and bytecode_matches(platform.python_version)
        cache_root = Path(extra.get("cache_dir") or deps.default_cache_root())
        artifact = build_artifact(function, provider=self.name, shims=self.shims, out_dir=out_dir,
                                  vendor_dir=vendor_dir, bytecode=bytecode, bytecode_cache=cache_root / "pyc",
                                  bytecode_budget=limit)
        if artifact.unzipped_size > limit:
            raise settings.too_big(artifact.unzipped_size, limit, packages)
        return artifact

    # -- plan and apply ----------------------------------------------------------------------------
    def plan(self, artifact: Artifact, current: Optional[Endpoint], options: DeployOptions) -> Plan:
        """Read what is deployed and list, in order, the calls that would bring it to ``options``."""
        self.validate_options(options)
        s = self.settings(options, current)
        policy = RetryPolicy.from_extra(options.extra or {})
        name = (current.provider_data.get("function_name") if current else None) or artifact.function.name
        info = ArtifactInfo.of(artifact, name)
        state = remote.read_state(self.client, self.shared().partition_for(s.region), s, name, info, policy)
        if state.function is not None:  # change it only if this registry's entry made it (or --adopt)
            self.check_owner(f"Lambda function {name} in {s.region}", state.tags.get(OWNER_TAG), current, options)
        calls = planner.plan_calls(info, s, state)
        data: dict[str, Any] = {
            "region": s.region, "function_name": name, "settings": asdict(s), "code_sha256": info.code_sha256,
            "code_location": planner.code_location(info, s, state), "role_arn": planner.role_arn(s, state),
            "role_created_by_kagg": not s.role, "function_exists": state.function is not None,
            "function_arn": state.function["FunctionArn"] if state.function else None,
            "url": state.url["FunctionUrl"] if state.function is not None and state.url else None,
            "calls": [asdict(c) for c in calls]}
        return Plan(provider=self.name, name=artifact.function.name, artifact=artifact, current=current,
                    options=options, steps=[c.step() for c in calls],
                    unchanged=planner.is_unchanged(calls, state), data=data)

    def pending_data(self, plan: Plan) -> dict:
        """What a deploy killed midway may leave: the function (by name) and the uploaded zip."""
        data = plan.data
        return {"function_name": data["function_name"], "code_location": data.get("code_location"),
                "role_arn": data.get("role_arn"), "role_created_by_kagg": data.get("role_created_by_kagg", False)}

    def apply(self, plan: Plan) -> Endpoint:
        """Make the plan's calls in order (retrying transient errors) and describe the result."""
        if plan.options.dry_run:
            raise ValueError("apply() called for a dry run")
        data = plan.data
        s = Settings(**data["settings"])
        policy = RetryPolicy.from_extra(plan.options.extra or {})
        name = data["function_name"]
        outcome = executor.execute([Call(**spec) for spec in data["calls"]], self.client, s.region, policy,
                                   plan.artifact.path.read_bytes,
                                   executor.Outcome(data.get("role_arn"), data.get("function_arn"), data.get("url")),
                                   data["code_sha256"])
        if not outcome.function_arn or not outcome.url:
            lam = self.client("lambda", s.region)
            outcome.function_arn = call(lam.get_function, policy, FunctionName=name)["Configuration"]["FunctionArn"]
            outcome.url = call(lam.get_function_url_config, policy, FunctionName=name)["FunctionUrl"]
        function, current = plan.artifact.function, plan.current
        return Endpoint(
            name=plan.name, provider=self.name, url=outcome.url, owner=plan.options.owner,
            auth="none" if s.public else "aws_iam", region=s.region,
            source={"path": function.source.path, "sha256": function.source.sha256},
            artifact_sha256=plan.artifact.sha256,
            created_at=current.created_at if current is not None else utc_now(),
            updated_at=utc_now(),
            provider_data={
                "function_name": name, "function_arn": outcome.function_arn, "role_arn": outcome.role_arn,
                "role_created_by_kagg": data.get("role_created_by_kagg", False),
                "url_auth_type": s.auth_type, "runtime": s.runtime, "arch": s.arch, "memory": s.memory,
                "timeout": s.timeout, "env_keys": sorted(s.env), "code_sha256": data["code_sha256"],
                "code_location": data.get("code_location"),
            })

    # -- delete ------------------------------------------------------------------------------------
    def delete(self, endpoint: Endpoint, options: Optional[DeployOptions] = None) -> list[str]:
        """Remove the function URL and the function (and with ``purge_role`` kagg's shared role)."""
        options = options or DeployOptions()
        policy = RetryPolicy.from_extra(options.extra or {})
        self.check_credentials()
        data = endpoint.provider_data or {}
        region = endpoint.region or self._region(options)
        name = data.get("function_name") or endpoint.name
        warnings = teardown.delete_function(self.client, region, data, name, policy, endpoint.owner)
        if (options.extra or {}).get("purge_role"):
            aws = self.shared()
            regions = aws.regions("lambda", aws.partition_for(region))  # IAM is global: every region
            warnings += teardown.purge_role(self.client, regions, region, data, policy)
        return warnings

    # -- calling -----------------------------------------------------------------------------------
    def sign(self, endpoint: Endpoint, method: str, url: str, headers: dict[str, str],
             body: bytes) -> dict[str, str]:
        """SigV4 for ``AWS_IAM`` function URLs, from the same credential chain; others unchanged."""
        if (endpoint.auth or "none").lower() == "none":
            return dict(headers)
        aws = self.shared()
        credentials = aws.credentials()
        if credentials is None:
            raise BadInput(NO_CREDENTIALS)
        region = endpoint.region or aws.region_name or "us-east-1"
        return signing.sign_request(credentials, region, method, url, headers, body)

    def logs(self, endpoint: Endpoint, follow: bool = False) -> Iterator[str]:
        """The function's CloudWatch log lines of the last hour; with ``follow``, new ones as they come."""
        region = endpoint.region or self.shared().region_name
        name = (endpoint.provider_data or {}).get("function_name") or endpoint.name
        yield from signing.log_lines(self.client("logs", region), name, follow)

