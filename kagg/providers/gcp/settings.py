"""A deploy's Cloud Functions settings: kagg's defaults, and every check that needs no Google call.

Options are checked here before anything is built or sent, so a bad value is
refused as bad input with nothing changed. Nothing in this module imports a
Google SDK.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Optional

import kagg
from kagg.errors import BadInput
from kagg.model import DeployOptions, Endpoint

RUNTIME = "python312"
ENTRY_POINT = "kagg_http"  # the function kagg/packaging/shims/main.py defines
DEFAULT_REGION = "us-central1"  # gcloud's default for functions
DEFAULT_MEMORY = 512  # MB; GCF's own default (256) is tight for numpy/pandas imports
DEFAULT_TIMEOUT = 60  # s; GCF's default
MAX_TIMEOUT = 3600  # s; the limit for HTTP functions (2nd gen)
DEFAULT_MAX_INSTANCES = 100  # GCF's 2nd-gen default
MAX_INSTANCES = 1000
#: the memory sizes GCF offers, in MB, and how the API spells them
MEMORY_UNITS = {128: "128Mi", 256: "256Mi", 512: "512Mi", 1024: "1Gi", 2048: "2Gi", 4096: "4Gi",
                8192: "8Gi", 16384: "16Gi", 32768: "32Gi"}
REGION_ENV = "CLOUDSDK_FUNCTIONS_REGION"  # gcloud's `functions/region` property, as an environment variable

#: labels kagg keeps on a function. Label values allow only [a-z0-9_-], at most 63 characters:
#: the artifact's sha256 (64 hex digits) is kept as its first 63 (252 bits, no practical collision)
LABEL_SHA = "kagg-sha256"
LABEL_ENDPOINT = "kagg-endpoint"
LABEL_VERSION = "kagg-version"
SHA_LABEL_LENGTH = 63

_ENV_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_RESERVED_ENV = frozenset({"PORT", "K_SERVICE", "K_REVISION", "K_CONFIGURATION", "FUNCTION_TARGET",
                           "FUNCTION_SIGNATURE_TYPE", "FUNCTION_NAME", "FUNCTION_REGION", "FUNCTION_IDENTITY",
                           "GOOGLE_FUNCTION_TARGET", "GOOGLE_FUNCTION_SIGNATURE_TYPE"})
_PROJECT = re.compile(r"^([a-z0-9.-]+:)?[a-z][a-z0-9-]{4,28}[a-z0-9]$")
_SERVICE_ACCOUNT = re.compile(r"^[a-z0-9][a-z0-9._-]*@[a-z0-9.-]+\.gserviceaccount\.com$")
_REGION = re.compile(r"^[a-z]+(-[a-z]+)+[0-9]+$")
_LABEL_VALUE = re.compile(r"[^a-z0-9_-]")


@dataclass
class Settings:
    """A deploy's function settings, with kagg's defaults filled in."""

    project: str
    region: str
    memory: int = DEFAULT_MEMORY
    timeout: int = DEFAULT_TIMEOUT
    min_instances: int = 0
    max_instances: int = DEFAULT_MAX_INSTANCES
    env: dict[str, str] = field(default_factory=dict)
    service_account: Optional[str] = None  # None: GCF's default (the compute service account)
    public: bool = False
    force: bool = False
    #: the registry entry's identity, kept on the function as its OWNER_TAG label
    owner: Optional[str] = None

    @property
    def parent(self) -> str:
        return f"projects/{self.project}/locations/{self.region}"

    def function_path(self, function_id: str) -> str:
        return f"{self.parent}/functions/{function_id}"

    @property
    def memory_unit(self) -> str:
        return MEMORY_UNITS[self.memory]

    @classmethod
    def from_options(cls, options: DeployOptions, project: str, region: str) -> "Settings":
        return cls(project=project, region=region, memory=options.memory or DEFAULT_MEMORY,
                   timeout=options.timeout or DEFAULT_TIMEOUT, min_instances=options.min_instances or 0,
                   max_instances=options.max_instances or DEFAULT_MAX_INSTANCES, env=dict(options.env or {}),
                   service_account=options.service_account, public=bool(options.public),
                   force=bool(options.force), owner=options.owner)


def check_options(options: DeployOptions) -> None:
    """Every value that can be judged locally; BadInput for the first bad one."""
    if options.memory is not None and options.memory not in MEMORY_UNITS:
        sizes = ", ".join(str(m) for m in MEMORY_UNITS)
        raise BadInput(f"memory {options.memory} MB is not a Cloud Functions size; use one of {sizes}")
    if options.timeout is not None and not 1 <= options.timeout <= MAX_TIMEOUT:
        raise BadInput(f"timeout {options.timeout} s is outside Cloud Functions' range; use 1 to {MAX_TIMEOUT}")
    if options.max_instances is not None and not 1 <= options.max_instances <= MAX_INSTANCES:
        raise BadInput(f"--max-instances {options.max_instances} is outside 1 to {MAX_INSTANCES}")
    if options.min_instances is not None and not 0 <= options.min_instances <= MAX_INSTANCES:
        raise BadInput(f"--min-instances {options.min_instances} is outside 0 to {MAX_INSTANCES}")
    top = options.max_instances or DEFAULT_MAX_INSTANCES
    if (options.min_instances or 0) > top:
        raise BadInput(f"--min-instances {options.min_instances} is above the most instances ({top}); "
                       f"lower it or raise --max-instances")
    check_env(options.env)
    if options.project is not None:
        check_project(options.project, "--project")
    for flag, value in (("--service-account", options.service_account), ("--impersonate", options.impersonate)):
        if value is not None and not _SERVICE_ACCOUNT.match(value):
            raise BadInput(f"{flag} {value!r} is not a service account email; expected "
                           f"NAME@PROJECT.iam.gserviceaccount.com")
    if options.region is not None and not _REGION.match(options.region):
        raise BadInput(f"unknown Google Cloud region {options.region!r}; use one such as us-central1 or europe-west1")


def check_project(project: str, where: str) -> None:
    if not _PROJECT.match(project):
        raise BadInput(f"{where} {project!r} is not a Google Cloud project id; use the id (6-30 lower-case "
                       f"letters, digits and '-', starting with a letter), not the project's name or number")


def check_env(env: dict[str, str]) -> None:
    for key in env:
        if not _ENV_KEY.match(key):
            raise BadInput(f"--env name {key!r} is invalid on Cloud Functions; use letters, digits and '_', "
                           f"not starting with a digit")
        if key in _RESERVED_ENV or key.startswith("X_GOOGLE_"):
            raise BadInput(f"--env {key} is reserved by Cloud Functions; choose another name")


def choose_region(options: DeployOptions, current: Optional[Endpoint], environ_region: Optional[str]) -> str:
    """``--region``, else the endpoint's own, else gcloud's ``functions/region``, else us-central1.

    BadInput for a region that would move an endpoint (a function cannot move: delete it first).
    """
    if current is not None and current.region and options.region and options.region != current.region:
        raise BadInput(f"endpoint {current.name!r} is deployed in {current.region}, not {options.region}; "
                       f"redeploy it with --region {current.region} or delete it first")
    return options.region or (current.region if current is not None else None) or environ_region or DEFAULT_REGION


def label_value(text: str) -> str:
    """``text`` as a label value may hold it: lower case, [a-z0-9_-] only, at most 63 characters."""
    return _LABEL_VALUE.sub("-", text.lower())[:63]


def sha_label(sha256: str) -> str:
    return sha256[:SHA_LABEL_LENGTH]


def labels(name: str, sha256: str, owner: Optional[str]) -> dict[str, str]:
    """The labels kagg keeps on a function: its endpoint, the artifact, kagg's version and the owner."""
    from kagg.providers.base import OWNER_TAG

    out = {LABEL_ENDPOINT: label_value(name), LABEL_SHA: sha_label(sha256),
           LABEL_VERSION: label_value(kagg.__version__)}
    if owner is not None:
        out[OWNER_TAG] = label_value(owner)
    return out


def memory_mb(unit: Optional[str]) -> Optional[int]:
    """The API's memory spelling in MB: "512Mi", "512M", "1Gi", "1G" (None when unreadable)."""
    found = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]i?)?B?\s*", unit or "")
    if not found:
        return None
    number, suffix = float(found.group(1)), (found.group(2) or "M")
    scale = {"K": 1 / 1000, "Ki": 1 / 1024, "M": 1, "Mi": 1, "G": 1000, "Gi": 1024, "T": 10**6, "Ti": 1024**2}
    return int(round(number * scale[suffix]))
