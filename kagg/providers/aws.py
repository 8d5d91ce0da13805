"""AWS Lambda behind a function URL, through boto3 and the standard credential chain.

``plan`` reads (GetRole, GetFunction, GetFunctionUrlConfig, GetPolicy, and for
big zips the S3 bucket) and lists the mutating calls ``apply`` will make, in
order; ``apply`` replays exactly that list, so ``--dry-run`` shows what a real
deploy does. Code is uploaded only when the zip's base64 sha256 differs from
the deployed ``CodeSha256``, configuration only when it differs. boto3 is
imported inside methods: ``kagg --help`` and the local provider never load it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import re
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Iterator, Optional

import kagg
from kagg.errors import BadInput, OperationFailed
from kagg.model import Artifact, ConvertedFunction, DeployOptions, Endpoint, Plan, PlanStep, utc_now
from kagg.providers import aws_deps
from kagg.providers.aws_retry import AWSCallFailed, RetryPolicy, call, client_config
from kagg.providers.base import Provider

log = logging.getLogger("kagg.aws")

ROLE_NAME = "kagg-lambda-role"
BASIC_POLICY = "arn:{partition}:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
HANDLER = "lambda_function.handler"
SID_URL = "kagg-public-url"
SID_INVOKE = "kagg-public-invoke"
TAG = "kagg:endpoint"

DEFAULT_RUNTIME = "python3.12"
DEFAULT_ARCH = "x86_64"
DEFAULT_MEMORY = 512  # MB; Lambda's own default (128) is too small to import numpy quickly
DEFAULT_TIMEOUT = 30  # s; Lambda's own default (3) is shorter than a scientific cold start
MAX_ZIP_BYTES = 50 * 1024 * 1024  # direct upload limit; above it the zip goes through S3
MAX_UNZIPPED_BYTES = 250 * 1024 * 1024  # Lambda's limit, code and layers together
MAX_ENV_BYTES = 4096

TRUST_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                   "Action": "sts:AssumeRole"}],
}

_ENV_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_RESERVED_ENV = frozenset({
    "_HANDLER", "_X_AMZN_TRACE_ID", "AWS_DEFAULT_REGION", "AWS_REGION", "AWS_EXECUTION_ENV",
    "AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_INITIALIZATION_TYPE", "AWS_LAMBDA_LOG_GROUP_NAME", "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_ACCESS_KEY", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
    "AWS_LAMBDA_RUNTIME_API", "LAMBDA_TASK_ROOT", "LAMBDA_RUNTIME_DIR",
})
_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")
_BUCKET = re.compile(r"^(?!xn--)(?!.*\.\.)[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_CREDENTIAL_WAYS = ("provide them the standard way: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
                    "environment variables, ~/.aws/credentials, a profile with AWS_PROFILE, or SSO "
                    "(`aws configure` / `aws configure sso` then `aws sso login`)")
_NO_CREDENTIALS = "no AWS credentials found; " + _CREDENTIAL_WAYS


@dataclass
class Settings:
    """A deploy's Lambda settings, with kagg's defaults filled in."""

    region: str
    runtime: str = DEFAULT_RUNTIME
    arch: str = DEFAULT_ARCH
    memory: int = DEFAULT_MEMORY
    timeout: int = DEFAULT_TIMEOUT
    env: dict[str, str] = field(default_factory=dict)
    role: Optional[str] = None  # a user's role ARN; None means kagg's shared role
    public: bool = False
    bucket: Optional[str] = None
    force: bool = False
    max_zip_bytes: int = MAX_ZIP_BYTES
    max_unzipped_bytes: int = MAX_UNZIPPED_BYTES

    @property
    def auth_type(self) -> str:
        return "NONE" if self.public else "AWS_IAM"

    def function_config(self, name: str, role_arn: str) -> dict[str, Any]:
        """The configuration fields kagg owns, as Lambda names them."""
        return {"FunctionName": name, "Runtime": self.runtime, "Handler": HANDLER, "Role": role_arn,
                "MemorySize": self.memory, "Timeout": self.timeout,
                "Environment": {"Variables": dict(sorted(self.env.items()))}}


@dataclass
class Call:
    """One AWS call of a plan; ``apply`` makes them in order. Placeholders ("<zip>",
    "<role_arn>") stand for values known only then."""

    service: str
    operation: str  # AWS's name: "CreateFunction"
    kwargs: dict[str, Any]
    description: str
    mutating: bool = True
    waiter: Optional[str] = None

    @property
    def action(self) -> str:
        return f"{self.service}:{self.operation}"

    def step(self) -> PlanStep:
        return PlanStep(self.action, self.description, self.mutating)


class AWSProvider(Provider):
    """Deploys an artifact as a Lambda function with a function URL (payload format 2.0)."""

    name = "aws"
    shims = ("lambda",)
    name_pattern = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
    name_rule = "1-64 characters: letters, digits, '-' and '_' (the rule for Lambda function names)"

    def __init__(self, state_dir=None):
        super().__init__(state_dir)
        self._lock = threading.RLock()
        self._session: Any = None
        self._clients: dict[tuple[str, str], Any] = {}

    # -- boto3, lazily -------------------------------------------------------------------------
    def session(self) -> Any:
        """One boto3 session per provider (the standard credential chain, read once)."""
        with self._lock:
            if self._session is None:
                try:
                    import boto3
                    from botocore.exceptions import BotoCoreError
                except ModuleNotFoundError:
                    raise BadInput("the aws provider needs boto3, which is not installed; "
                                   "run: pip install 'kagg[aws]'") from None

                try:
                    self._session = boto3.Session()
                except BotoCoreError as exc:
                    raise BadInput(f"AWS configuration cannot be used: {exc}; check AWS_PROFILE and ~/.aws/config")
            return self._session

    def client(self, service: str, region: str) -> Any:
        with self._lock:
            key = (service, region)
            if key not in self._clients:
                self._clients[key] = self.session().client(
                    service, region_name=region, config=client_config(f"kagg/{kagg.__version__}"))
            return self._clients[key]

    # -- checks ----------------------------------------------------------------------------------
    def validate_options(self, options: DeployOptions) -> None:
        """Every value checked locally, then the region and the presence of credentials. No call."""
        _check_platform(options)
        if options.memory is not None and not (isinstance(options.memory, int) and 128 <= options.memory <= 10240):
            raise BadInput(f"memory {options.memory} MB is outside Lambda's range; use 128 to 10240")
        if options.timeout is not None and not (isinstance(options.timeout, int) and 1 <= options.timeout <= 900):
            raise BadInput(f"timeout {options.timeout} s is outside Lambda's range; use 1 to 900")
        _check_env(options.env)
        if options.role is not None and not _ROLE_ARN.match(options.role):
            raise BadInput(f"--role {options.role!r} is not an IAM role ARN; expected "
                           f"arn:aws:iam::123456789012:role/NAME")
        if options.bucket is not None and not _BUCKET.match(options.bucket):
            raise BadInput(f"--bucket {options.bucket!r} is not a valid S3 bucket name; use 3-63 "
                           f"lower-case letters, digits, '.' and '-'")
        self._region(options)
        self.check_credentials()

    def check_credentials(self) -> None:
        """BadInput naming the standard ways when the chain finds nothing (no call is made)."""
        session = self.session()  # first: says how to install boto3 when it is missing
        from botocore.exceptions import BotoCoreError

        try:
            credentials = session.get_credentials()
        except BotoCoreError as exc:
            raise BadInput(f"AWS credentials cannot be loaded ({exc}); {_CREDENTIAL_WAYS}")
        if credentials is None:
            raise BadInput(_NO_CREDENTIALS)

    def _region(self, options: DeployOptions, current: Optional[Endpoint] = None) -> str:
        """``--region``, else the endpoint's own, else the chain's (AWS_REGION, profile); must be known."""
        region = options.region or (current.region if current is not None else None) or self.session().region_name
        if not region:
            raise BadInput("no AWS region chosen; pass --region, set AWS_REGION or AWS_DEFAULT_REGION, "
                           "or run `aws configure`")
        if region not in known_regions(self.session()):
            raise BadInput(f"unknown AWS region {region!r} for Lambda; use one such as us-east-1 or eu-west-1")
        return region

    def settings(self, options: DeployOptions, current: Optional[Endpoint] = None) -> Settings:
        region = self._region(options, current)
        if current is not None and current.region and options.region and options.region != current.region:
            raise BadInput(f"endpoint {current.name!r} is deployed in {current.region}, not {options.region}; "
                           f"redeploy it with --region {current.region} or delete it first")
        extra = options.extra or {}
        return Settings(
            region=region, runtime=options.runtime or DEFAULT_RUNTIME, arch=options.arch or DEFAULT_ARCH,
            memory=options.memory or DEFAULT_MEMORY, timeout=options.timeout or DEFAULT_TIMEOUT,
            env=dict(options.env or {}), role=options.role, public=bool(options.public),
            bucket=options.bucket, force=bool(options.force),
            max_zip_bytes=int(extra.get("max_zip_bytes", MAX_ZIP_BYTES)),
            max_unzipped_bytes=int(extra.get("max_unzipped_bytes", MAX_UNZIPPED_BYTES)))

    # -- build -------------------------------------------------------------------------------------
    def build(self, function: ConvertedFunction, options: DeployOptions) -> Artifact:
        """The Lambda zip, with the requirements installed for Lambda's platform; size-checked."""
        from kagg.packaging.builder import build_artifact

        _check_platform(options)
        extra = options.extra or {}
        limit = int(extra.get("max_unzipped_bytes", MAX_UNZIPPED_BYTES))
        platform = aws_deps.Platform(options.runtime or DEFAULT_RUNTIME, options.arch or DEFAULT_ARCH)
        vendor_dir = None
        packages: list[tuple[str, int]] = []
        if any(r.strip() for r in function.requirements):
            cache = extra.get("cache_dir")
            vendored = aws_deps.vendor(function.requirements, platform, cache_root=cache,
                                       pip_args=list(extra.get("pip_args", ())))
            packages = vendored.packages
            if vendored.size > limit:  # refuse before spending time on a zip that cannot be used
                raise _too_big(vendored.size, limit, packages)
            vendor_dir = vendored.path
        out_dir = self.state_dir / "artifacts" / "aws" / f"{platform.runtime}-{platform.arch}"
        artifact = build_artifact(function, provider=self.name, shims=self.shims, out_dir=out_dir,
                                  vendor_dir=vendor_dir)
        if artifact.unzipped_size > limit:
            raise _too_big(artifact.unzipped_size, limit, packages)
        return artifact

    # -- plan --------------------------------------------------------------------------------------
    def plan(self, artifact: Artifact, current: Optional[Endpoint], options: DeployOptions) -> Plan:
        """Read what is deployed and list, in order, the calls that would bring it to ``options``."""
        self.validate_options(options)
        s = self.settings(options, current)
        policy = RetryPolicy.from_extra(options.extra or {})
        name = (current.provider_data.get("function_name") if current else None) or artifact.function.name
        lam = self.client("lambda", s.region)
        partition = self.session().get_partition_for_region(s.region)
        calls: list[Call] = []
        data: dict[str, Any] = {"region": s.region, "function_name": name, "settings": asdict(s),
                                "code_sha256": code_sha256(artifact)}

        code, code_desc = self._plan_code(artifact, s, name, policy, calls, data)
        role_arn = self._plan_role(s, partition, policy, calls, data)

        found = call(lam.get_function, policy, missing_ok=True, FunctionName=name)
        deployed = found["Configuration"] if found else None
        if deployed is not None and current is None and (found.get("Tags") or {}).get(TAG) != name:
            raise BadInput(f"a Lambda function named {name!r} already exists in {s.region} and was not "
                           f"deployed by kagg; choose another name with --name")
        desired = s.function_config(name, role_arn)
        data["function_exists"] = deployed is not None
        data["function_arn"] = deployed["FunctionArn"] if deployed else None
        summary = f"{s.runtime}, {s.arch}, {s.memory} MB, {s.timeout} s"
        if deployed is None:
            calls.append(Call("lambda", "CreateFunction", {
                **desired, "Code": code, "Architectures": [s.arch], "Publish": False,
                "Tags": {TAG: name, "kagg:version": kagg.__version__}},
                f"create function {name} ({summary}) from {code_desc}"))
            calls.append(_wait("function_active_v2", name, "until the function is Active"))
        else:
            code_changed = (s.force or deployed.get("CodeSha256") != data["code_sha256"]
                            or deployed.get("Architectures", [DEFAULT_ARCH]) != [s.arch])
            if code_changed:
                reason = "forced" if s.force and deployed.get("CodeSha256") == data["code_sha256"] else "changed"
                calls.append(Call("lambda", "UpdateFunctionCode",
                                  {"FunctionName": name, **code, "Architectures": [s.arch], "Publish": False},
                                  f"upload new code to {name} ({reason}; {code_desc})"))
                calls.append(_wait("function_updated_v2", name, "until the code update is done"))
            changes = config_changes(deployed, desired)
            if changes:
                calls.append(Call("lambda", "UpdateFunctionConfiguration", desired,
                                  f"update configuration of {name}: {', '.join(changes)}"))
                calls.append(_wait("function_updated_v2", name, "until the configuration update is done"))
        self._plan_url(lam, name, s, policy, deployed is not None, calls, data)

        data["calls"] = [asdict(c) for c in calls]
        unchanged = deployed is not None and not any(c.mutating for c in calls)
        return Plan(provider=self.name, name=artifact.function.name, artifact=artifact, current=current,
                    options=options, steps=[c.step() for c in calls], unchanged=unchanged, data=data)

    def _plan_role(self, s: Settings, partition: str, policy: RetryPolicy, calls: list[Call],
                   data: dict) -> str:
        if s.role:
            data["role_arn"], data["role_created_by_kagg"] = s.role, False
            return s.role
        iam = self.client("iam", s.region)
        basic = BASIC_POLICY.format(partition=partition)
        found = call(iam.get_role, policy, missing_ok=True, RoleName=ROLE_NAME)
        data["role_created_by_kagg"] = True
        if found is None:
            calls.append(Call("iam", "CreateRole", {
                "RoleName": ROLE_NAME, "AssumeRolePolicyDocument": json.dumps(TRUST_POLICY),
                "Description": "Execution role of the Lambda functions deployed by kagg"},
                f"create the execution role {ROLE_NAME} (shared by kagg's functions)"))
            calls.append(Call("iam", "AttachRolePolicy", {"RoleName": ROLE_NAME, "PolicyArn": basic},
                              f"let {ROLE_NAME} write CloudWatch logs (AWSLambdaBasicExecutionRole)"))
            data["role_arn"] = None
            return "<role_arn>"
        attached = call(iam.list_attached_role_policies, policy, RoleName=ROLE_NAME)
        if basic not in {p["PolicyArn"] for p in attached.get("AttachedPolicies", [])}:
            calls.append(Call("iam", "AttachRolePolicy", {"RoleName": ROLE_NAME, "PolicyArn": basic},
                              f"let {ROLE_NAME} write CloudWatch logs (AWSLambdaBasicExecutionRole)"))
        data["role_arn"] = found["Role"]["Arn"]
        return data["role_arn"]

    def _plan_code(self, artifact: Artifact, s: Settings, name: str, policy: RetryPolicy,
                   calls: list[Call], data: dict) -> tuple[dict, str]:
        """Inline zip, or (over the direct-upload limit) an S3 object in a bucket kagg may create."""
        size = f"{_human(artifact.size)} zip"
        if artifact.size <= s.max_zip_bytes:
            data["code_location"] = None
            return {"ZipFile": "<zip>"}, size
        s3 = self.client("s3", s.region)
        bucket = s.bucket
        if bucket is None:
            sts = self.client("sts", s.region)
            account = call(sts.get_caller_identity, policy)["Account"]
            bucket = f"kagg-artifacts-{account}-{s.region}"
        key = f"kagg/{name}/{artifact.sha256}.zip"
        data["code_location"] = {"bucket": bucket, "key": key}
        try:
            exists = call(s3.head_bucket, policy, missing_ok=True, Bucket=bucket) is not None
        except AWSCallFailed as exc:
            if exc.code in ("403", "AccessDenied"):
                raise BadInput(f"S3 bucket {bucket} exists but this account cannot use it; pass --bucket "
                               f"with a bucket in {s.region} that you own") from exc
            raise
        if not exists:
            if s.bucket is not None:
                raise BadInput(f"S3 bucket {bucket} (--bucket) does not exist; create it in {s.region} "
                               f"or leave out --bucket to let kagg create one")
            create: dict[str, Any] = {"Bucket": bucket}
            if s.region != "us-east-1":
                create["CreateBucketConfiguration"] = {"LocationConstraint": s.region}
            calls.append(Call("s3", "CreateBucket", create, f"create bucket {bucket} for large artifacts"))
            calls.append(Call("s3", "PutPublicAccessBlock", {
                "Bucket": bucket, "PublicAccessBlockConfiguration": {
                    "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True,
                    "RestrictPublicBuckets": True}}, f"block public access to {bucket}"))
        if not exists or call(s3.head_object, policy, missing_ok=True, Bucket=bucket, Key=key) is None:
            calls.append(Call("s3", "PutObject", {"Bucket": bucket, "Key": key, "Body": "<zip>"},
                              f"upload the {size} to s3://{bucket}/{key} (over the "
                              f"{_human(s.max_zip_bytes)} direct-upload limit)"))
        return {"S3Bucket": bucket, "S3Key": key}, f"{size} in s3://{bucket}/{key}"

    def _plan_url(self, lam: Any, name: str, s: Settings, policy: RetryPolicy, exists: bool,
                  calls: list[Call], data: dict) -> None:
        url = call(lam.get_function_url_config, policy, missing_ok=True, FunctionName=name) if exists else None
        data["url"] = url["FunctionUrl"] if url else None
        if url is None:
            calls.append(Call("lambda", "CreateFunctionUrlConfig", {"FunctionName": name, "AuthType": s.auth_type},
                              f"create the function URL ({_auth_words(s.auth_type)})"))
        elif url.get("AuthType") != s.auth_type:
            calls.append(Call("lambda", "UpdateFunctionUrlConfig", {"FunctionName": name, "AuthType": s.auth_type},
                              f"make the function URL {_auth_words(s.auth_type)}"))
        sids = _policy_sids(call(lam.get_policy, policy, missing_ok=True, FunctionName=name)) if exists else set()
        if s.public:
            if SID_URL not in sids:
                calls.append(Call("lambda", "AddPermission", {
                    "FunctionName": name, "StatementId": SID_URL, "Action": "lambda:InvokeFunctionUrl",
                    "Principal": "*", "FunctionUrlAuthType": "NONE"},
                    "allow anyone to call the function URL (lambda:InvokeFunctionUrl)"))
            if SID_INVOKE not in sids:
                calls.append(Call("lambda", "AddPermission", {
                    "FunctionName": name, "StatementId": SID_INVOKE, "Action": "lambda:InvokeFunction",
                    "Principal": "*", "InvokedViaFunctionUrl": True},
                    "allow invocations through the function URL (lambda:InvokeFunction)"))
        else:
            for sid in sorted(sids & {SID_URL, SID_INVOKE}):
                calls.append(Call("lambda", "RemovePermission", {"FunctionName": name, "StatementId": sid},
                                  f"withdraw public permission {sid}"))

    # -- apply -------------------------------------------------------------------------------------
    def apply(self, plan: Plan) -> Endpoint:
        """Make the plan's calls in order (retrying transient errors) and describe the result."""
        if plan.options.dry_run:
            raise ValueError("apply() called for a dry run")
        data = plan.data
        s = Settings(**data["settings"])
        policy = RetryPolicy.from_extra(plan.options.extra or {})
        values: dict[str, Any] = {"<role_arn>": data.get("role_arn")}
        zip_bytes: Optional[bytes] = None
        name = data["function_name"]
        for spec in data["calls"]:
            c = Call(**spec)
            if c.waiter:
                self._wait(c, s.region, policy)
                continue
            if zip_bytes is None and "<zip>" in _placeholders(c.kwargs):
                zip_bytes = plan.artifact.path.read_bytes()
            values["<zip>"] = zip_bytes
            kwargs = _fill(c.kwargs, values)
            client = self.client(c.service, s.region)
            method = getattr(client, _snake(c.operation))
            result = call(method, policy, **kwargs)
            log.info("aws: %s done", c.action)
            if c.operation == "CreateRole":
                values["<role_arn>"] = result["Role"]["Arn"]
            elif c.operation in ("CreateFunction", "UpdateFunctionCode", "UpdateFunctionConfiguration"):
                data["function_arn"] = result.get("FunctionArn") or data.get("function_arn")
            elif c.operation in ("CreateFunctionUrlConfig", "UpdateFunctionUrlConfig"):
                data["url"] = result.get("FunctionUrl") or data.get("url")
        role_arn = values["<role_arn>"]
        if not data.get("function_arn") or not data.get("url"):
            lam = self.client("lambda", s.region)
            data["function_arn"] = call(lam.get_function, policy, FunctionName=name)["Configuration"]["FunctionArn"]
            data["url"] = call(lam.get_function_url_config, policy, FunctionName=name)["FunctionUrl"]
        function = plan.artifact.function
        current = plan.current
        return Endpoint(
            name=plan.name, provider=self.name, url=data["url"],
            auth="none" if s.public else "aws_iam", region=s.region,
            source={"path": function.source.path, "sha256": function.source.sha256},
            artifact_sha256=plan.artifact.sha256,
            created_at=current.created_at if current is not None else utc_now(),
            updated_at=utc_now(),
            provider_data={
                "function_name": name, "function_arn": data["function_arn"], "role_arn": role_arn,
                "role_created_by_kagg": data.get("role_created_by_kagg", False),
                "url_auth_type": s.auth_type, "runtime": s.runtime, "arch": s.arch, "memory": s.memory,
                "timeout": s.timeout, "env_keys": sorted(s.env), "code_sha256": data["code_sha256"],
                "code_location": data.get("code_location"),
            })

    def _wait(self, c: Call, region: str, policy: RetryPolicy) -> None:
        """A botocore waiter, started again if its polling call meets a transient error."""
        from botocore.exceptions import WaiterError

        waiter = self.client(c.service, region).get_waiter(c.waiter)

        def wait() -> None:
            waiter.wait(**c.kwargs, WaiterConfig={"Delay": policy.waiter_delay,
                                                  "MaxAttempts": policy.waiter_attempts})

        wait.__name__ = f"GetFunction (waiting for {c.waiter})"  # how a failure will name the call
        try:
            call(wait, policy)
        except AWSCallFailed as failure:
            exc = failure.__cause__
            if not isinstance(exc, WaiterError) or "Error" in (exc.last_response or {}):
                raise
            config = (exc.last_response or {}).get("Configuration", {})
            reason = config.get("StateReason") or config.get("LastUpdateStatusReason") or exc.kwargs.get("reason")
            raise OperationFailed(f"Lambda function {c.kwargs.get('FunctionName')} did not become ready "
                                  f"({c.waiter}): {reason}; see its CloudWatch logs or the Lambda console") from exc

    # -- delete ------------------------------------------------------------------------------------
    def delete(self, endpoint: Endpoint, options: Optional[DeployOptions] = None) -> list[str]:
        """Remove the function URL and the function (and with ``purge_role`` kagg's shared role)."""
        options = options or DeployOptions()
        policy = RetryPolicy.from_extra(options.extra or {})
        self.check_credentials()
        data = endpoint.provider_data or {}
        region = endpoint.region or self._region(options)
        name = data.get("function_name") or endpoint.name
        lam = self.client("lambda", region)
        warnings: list[str] = []
        call(lam.delete_function_url_config, policy, missing_ok=True, FunctionName=name)
        if call(lam.delete_function, policy, missing_ok=True, FunctionName=name) is None:
            warnings.append(f"Lambda function {name} was already gone from {region}; removed it from the registry")
        location = data.get("code_location")
        if location:
            s3 = self.client("s3", region)
            call(s3.delete_object, policy, missing_ok=True, Bucket=location["bucket"], Key=location["key"])
        if (options.extra or {}).get("purge_role"):
            warnings += self._purge_role(data, region, policy)
        return warnings

    def _purge_role(self, data: dict, region: str, policy: RetryPolicy) -> list[str]:
        if not data.get("role_created_by_kagg", True):
            return [f"role {data.get('role_arn')} was given with --role; kagg leaves it in place"]
        lam = self.client("lambda", region)
        users = []
        for page in lam.get_paginator("list_functions").paginate():
            users += [f["FunctionName"] for f in page.get("Functions", [])
                      if f.get("Role", "").endswith(f":role/{ROLE_NAME}")]
        if users:
            return [f"role {ROLE_NAME} kept: still used by {', '.join(sorted(users))}"]
        iam = self.client("iam", region)
        attached = call(iam.list_attached_role_policies, policy, missing_ok=True, RoleName=ROLE_NAME)
        if attached is None:
            return [f"role {ROLE_NAME} was already gone"]
        for p in attached.get("AttachedPolicies", []):
            call(iam.detach_role_policy, policy, missing_ok=True, RoleName=ROLE_NAME, PolicyArn=p["PolicyArn"])
        call(iam.delete_role, policy, missing_ok=True, RoleName=ROLE_NAME)
        return []

    # -- calling -----------------------------------------------------------------------------------
    def sign(self, endpoint: Endpoint, method: str, url: str, headers: dict[str, str],
             body: bytes) -> dict[str, str]:
        """SigV4 for ``AWS_IAM`` function URLs, from the same credential chain; others unchanged."""
        if (endpoint.auth or "none").lower() == "none":
            return dict(headers)
        session = self.session()
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        credentials = session.get_credentials()
        if credentials is None:
            raise BadInput(_NO_CREDENTIALS)
        region = endpoint.region or self.session().region_name or "us-east-1"
        payload = body or b""
        request = AWSRequest(method=method.upper(), url=url, data=payload, headers=dict(headers))
        request.headers["X-Amz-Content-SHA256"] = hashlib.sha256(payload).hexdigest()
        SigV4Auth(credentials.get_frozen_credentials(), "lambda", region).add_auth(request)
        return dict(request.headers.items())

    def logs(self, endpoint: Endpoint, follow: bool = False) -> Iterator[str]:
        """The function's CloudWatch log lines of the last hour; with ``follow``, new ones as they come."""
        region = endpoint.region or self.session().region_name
        name = (endpoint.provider_data or {}).get("function_name") or endpoint.name
        client = self.client("logs", region)
        policy = RetryPolicy()
        start = int((time.time() - 3600) * 1000)
        seen: set[str] = set()
        while True:
            kwargs: dict[str, Any] = {"logGroupName": f"/aws/lambda/{name}", "startTime": start}
            while True:
                page = call(client.filter_log_events, policy, missing_ok=True, **kwargs)
                if page is None:
                    break
                for event in page.get("events", []):
                    if event["eventId"] in seen:
                        continue
                    seen.add(event["eventId"])
                    start = max(start, event["timestamp"])
                    when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(event["timestamp"] / 1000))
                    yield f"{when} {event['message'].rstrip()}\n"
                if not page.get("nextToken"):
                    break
                kwargs["nextToken"] = page["nextToken"]
            if not follow:
                return
            time.sleep(2)


# -- helpers ------------------------------------------------------------------------------------------
def known_regions(session: Any) -> set[str]:
    """Every region botocore's partition data lists for Lambda (all partitions)."""
    regions: set[str] = set()
    for partition in session.get_available_partitions():
        regions.update(session.get_available_regions("lambda", partition_name=partition))
    return regions


def code_sha256(artifact: Artifact) -> str:
    """The artifact's sha256 as Lambda reports ``CodeSha256``: base64 of the raw digest."""
    return base64.b64encode(bytes.fromhex(artifact.sha256)).decode("ascii")


def config_changes(deployed: dict, desired: dict) -> list[str]:
    """Names of the configuration fields whose deployed value differs from the desired one."""
    changes = []
    for key in ("Runtime", "Handler", "Role", "MemorySize", "Timeout"):
        if deployed.get(key) != desired[key] and not (key == "Role" and desired[key] == "<role_arn>"):
            changes.append(key)
    if (deployed.get("Environment") or {}).get("Variables", {}) != desired["Environment"]["Variables"]:
        changes.append("Environment")
    return changes


def _check_platform(options: DeployOptions) -> None:
    if options.runtime is not None and options.runtime not in aws_deps.RUNTIMES:
        raise BadInput(f"runtime {options.runtime!r} is not supported on AWS; use one of "
                       f"{', '.join(aws_deps.RUNTIMES)}")
    if options.arch is not None and options.arch not in aws_deps.ARCHES:
        raise BadInput(f"architecture {options.arch!r} is not available on Lambda; use x86_64 or arm64")


def _check_env(env: dict[str, str]) -> None:
    for key in env:
        if not _ENV_KEY.match(key):
            raise BadInput(f"--env name {key!r} is invalid on Lambda; use letters, digits and '_', "
                           f"starting with a letter")
        if key in _RESERVED_ENV:
            raise BadInput(f"--env {key} is reserved by Lambda; choose another name")
    size = sum(len(k) + len(str(v)) for k, v in env.items())
    if size > MAX_ENV_BYTES:
        raise BadInput(f"--env values total {size} bytes, over Lambda's {MAX_ENV_BYTES}; put large "
                       f"settings in a file in the notebook's folder or in SSM")


def _too_big(size: int, limit: int, packages: list[tuple[str, int]]) -> BadInput:
    biggest = aws_deps.largest(packages) if packages else "no vendored packages"
    return BadInput(f"the Lambda artifact is {_human(size)} unzipped, over the {_human(limit)} limit; "
                    f"largest packages: {biggest}; drop unneeded requirements")


def _human(size: int) -> str:
    return f"{size / 2**20:.1f} MB" if size >= 2**20 else f"{size / 2**10:.1f} kB"  # AWS's MB are MiB


def _wait(waiter: str, name: str, why: str) -> Call:
    return Call("lambda", "GetFunction", {"FunctionName": name}, f"wait {why} ({waiter})",
                mutating=False, waiter=waiter)


def _auth_words(auth_type: str) -> str:
    return "public, no authentication" if auth_type == "NONE" else "private, AWS_IAM: callers sign with SigV4"


def _policy_sids(response: Optional[dict]) -> set[str]:
    if not response:
        return set()
    return {st.get("Sid") for st in json.loads(response["Policy"]).get("Statement", []) if st.get("Sid")}


def _placeholders(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set().union(*(_placeholders(v) for v in value.values())) if value else set()
    return {value} if isinstance(value, str) and value.startswith("<") and value.endswith(">") else set()


def _fill(value: Any, values: dict[str, Any]) -> Any:
    if isinstance(value, dict):
        return {k: _fill(v, values) for k, v in value.items()}
    if isinstance(value, str) and value in values:
        return values[value]
    return value


def _snake(operation: str) -> str:
    from botocore import xform_name

    return xform_name(operation)
