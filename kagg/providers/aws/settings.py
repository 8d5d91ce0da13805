"""A deploy's Lambda settings: kagg's defaults, and every check that needs no AWS call.

Options are checked here before anything is built or sent, so a bad value is
refused as bad input with nothing changed. Nothing in this module imports boto3.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Optional

from kagg.errors import BadInput
from kagg.model import DeployOptions, Endpoint
from kagg.providers.aws import deps

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
CREDENTIAL_WAYS = ("provide them the standard way: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
                   "environment variables, ~/.aws/credentials, a profile with AWS_PROFILE, or SSO "
                   "(`aws configure` / `aws configure sso` then `aws sso login`)")
NO_CREDENTIALS = "no AWS credentials found; " + CREDENTIAL_WAYS
NO_REGION = "no AWS region chosen; pass --region, set AWS_REGION or AWS_DEFAULT_REGION, or run `aws configure`"


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
    #: the registry entry's identity, kept on the function as its OWNER_TAG (None: not known)
    owner: Optional[str] = None

    @property
    def auth_type(self) -> str:
        return "NONE" if self.public else "AWS_IAM"

    def function_config(self, name: str, role_arn: str) -> dict[str, Any]:
        """The configuration fields kagg owns, as Lambda names them."""
        return {"FunctionName": name, "Runtime": self.runtime, "Handler": HANDLER, "Role": role_arn,
                "MemorySize": self.memory, "Timeout": self.timeout,
                "Environment": {"Variables": dict(sorted(self.env.items()))}}

    @classmethod
    def from_options(cls, options: DeployOptions, region: str) -> "Settings":
        extra = options.extra or {}
        return cls(
            region=region, runtime=options.runtime or DEFAULT_RUNTIME, arch=options.arch or DEFAULT_ARCH,
            memory=options.memory or DEFAULT_MEMORY, timeout=options.timeout or DEFAULT_TIMEOUT,
            env=dict(options.env or {}), role=options.role, public=bool(options.public),
            bucket=options.bucket, force=bool(options.force),
            max_zip_bytes=int(extra.get("max_zip_bytes", MAX_ZIP_BYTES)),
            max_unzipped_bytes=int(extra.get("max_unzipped_bytes", MAX_UNZIPPED_BYTES)), owner=options.owner)


def check_options(options: DeployOptions) -> None:
    """Every value that can be judged locally; BadInput for the first bad one."""
    check_platform(options)
    if options.memory is not None and not (isinstance(options.memory, int) and 128 <= options.memory <= 10240):
        raise BadInput(f"memory {options.memory} MB is outside Lambda's range; use 128 to 10240")
    if options.timeout is not None and not (isinstance(options.timeout, int) and 1 <= options.timeout <= 900):
        raise BadInput(f"timeout {options.timeout} s is outside Lambda's range; use 1 to 900")
    check_env(options.env)
    if options.role is not None and not _ROLE_ARN.match(options.role):
        raise BadInput(f"--role {options.role!r} is not an IAM role ARN; expected "
                       f"arn:aws:iam::123456789012:role/NAME")
    if options.bucket is not None and not _BUCKET.match(options.bucket):
        raise BadInput(f"--bucket {options.bucket!r} is not a valid S3 bucket name; use 3-63 "
                       f"lower-case letters, digits, '.' and '-'")


def check_platform(options: DeployOptions) -> None:
    if options.runtime is not None and options.runtime not in deps.RUNTIMES:
        raise BadInput(f"runtime {options.runtime!r} is not supported on AWS; use one of "
                       f"{', '.join(deps.RUNTIMES)}")
    if options.arch is not None and options.arch not in deps.ARCHES:
        raise BadInput(f"architecture {options.arch!r} is not available on Lambda; use x86_64 or arm64")


def check_env(env: dict[str, str]) -> None:
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


def choose_region(options: DeployOptions, current: Optional[Endpoint], chain_region: Optional[str],
                  known: Iterable[str]) -> Optional[str]:
    """``--region``, else the endpoint's own, else the chain's; None when there is none.

    BadInput for a region botocore does not list for Lambda, or one that would move an endpoint.
    """
    region = options.region or (current.region if current is not None else None) or chain_region
    if not region:
        return None
    if region not in set(known):
        raise BadInput(f"unknown AWS region {region!r} for Lambda; use one such as us-east-1 or eu-west-1")
    if current is not None and current.region and options.region and options.region != current.region:
        raise BadInput(f"endpoint {current.name!r} is deployed in {current.region}, not {options.region}; "
                       f"redeploy it with --region {current.region} or delete it first")
    return region


def human(size: int) -> str:
    """Sizes as the Lambda quotas give them (AWS's MB are MiB)."""
    return f"{size / 2**20:.1f} MB" if size >= 2**20 else f"{size / 2**10:.1f} kB"


def too_big(size: int, limit: int, packages: list[tuple[str, int]]) -> BadInput:
    biggest = deps.largest(packages) if packages else "no vendored packages"
    return BadInput(f"the Lambda artifact is {human(size)} unzipped, over the {human(limit)} limit; "
                    f"largest packages: {biggest}; drop unneeded requirements")


def default_bucket(account: str, region: str) -> str:
    return f"kagg-artifacts-{account}-{region}"


def code_key(function_name: str, artifact_sha256: str) -> str:
    return f"kagg/{function_name}/{artifact_sha256}.zip"
