"""A deploy's Azure settings: kagg's defaults, the names it derives, and every check that needs no call.

Options are judged here before anything is built or sent, so a bad value is
refused as bad input with nothing changed. Nothing here imports an Azure SDK.
"""

from __future__ import annotations

import hashlib
import re
import sys
from dataclasses import dataclass, field
from typing import Optional

from kagg.errors import BadInput
from kagg.model import DeployOptions

#: Flex Consumption's instance sizes (MB) and kagg's default (Azure's own)
MEMORY_SIZES = (512, 2048, 4096)
DEFAULT_MEMORY = 2048
#: Flex Consumption's range for the most instances of one app, and Azure's default
MIN_MAX_INSTANCES, MAX_MAX_INSTANCES, DEFAULT_MAX_INSTANCES = 40, 1000, 100
PYTHON_VERSIONS = ("3.10", "3.11", "3.12")
DEFAULT_PYTHON = "3.11"

#: app settings kagg owns on the function app
SHA_SETTING = "KAGG_ARTIFACT_SHA256"
AUTH_SETTING = "KAGG_AUTH_LEVEL"  # read by function_app.py when the worker indexes it
STORAGE_SETTING = "AzureWebJobsStorage"
DEPLOY_STORAGE_SETTING = "DEPLOYMENT_STORAGE_CONNECTION_STRING"
HOMEPAGE_SETTING = "AzureWebJobsDisableHomepage"
#: tag naming the endpoint on each resource (beside OWNER_TAG, the registry entry)
TAG = "kagg-endpoint"
#: stands for the storage account's connection string: read (listKeys) only when apply needs it
CONNECTION = "<storage-connection-string>"

NAME_PATTERN = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,58}[A-Za-z0-9])$")
NAME_RULE = "2-60 characters: letters, digits and '-', not starting or ending with '-' (Azure's rule for app names)"
_GROUP = re.compile(r"^[-\w._()]{0,89}[-\w_()]$")
_ENV_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_RESERVED_PREFIXES = ("WEBSITE_", "FUNCTIONS_", "AZUREWEBJOBS", "SCM_", "KAGG_", "DEPLOYMENT_STORAGE_",
                      "APPSETTING_")
_SUBSCRIPTION = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")

CREDENTIAL_WAYS = ("sign in the standard way: `az login`, or AZURE_CLIENT_ID/AZURE_TENANT_ID/AZURE_CLIENT_SECRET "
                   "for a service principal, or a managed identity")


@dataclass
class Settings:
    """A deploy's Azure settings with kagg's defaults filled in and every derived name."""

    subscription: str
    location: str
    resource_group: str
    app: str
    memory: int = DEFAULT_MEMORY
    max_instances: int = DEFAULT_MAX_INSTANCES
    python: str = DEFAULT_PYTHON
    env: dict[str, str] = field(default_factory=dict)
    public: bool = False
    force: bool = False
    owner: Optional[str] = None

    @property
    def plan_name(self) -> str:
        """Flex Consumption allows one app per plan ("There can only be one site per Flex
        Consumption serverfarm"), so each app gets a plan of its own."""
        return plan_name(self.app)

    @property
    def storage_account(self) -> str:
        return storage_account_name(self.subscription, self.resource_group)

    @property
    def container(self) -> str:
        return container_name(self.app)

    @property
    def auth_level(self) -> str:
        return "anonymous" if self.public else "function"

    def tags(self) -> dict[str, str]:
        from kagg.providers.base import OWNER_TAG

        out = {TAG: self.app}
        if self.owner is not None:
            out[OWNER_TAG] = self.owner
        return out

    def app_settings(self, sha256: Optional[str]) -> dict[str, str]:
        """The app settings the function app should have (the connection strings as :data:`CONNECTION`)."""
        out = dict(sorted(self.env.items()))
        out.update({STORAGE_SETTING: CONNECTION, DEPLOY_STORAGE_SETTING: CONNECTION, HOMEPAGE_SETTING: "true",
                    AUTH_SETTING: self.auth_level})
        if sha256 is not None:
            out[SHA_SETTING] = sha256
        return out


def app_name(name: str) -> str:
    """The function app's name (its host name is this, lower-cased, under azurewebsites.net)."""
    return name.lower()


def default_group(name: str) -> str:
    return f"kagg-{app_name(name)}"


def plan_name(app: str) -> str:
    return f"{app[:49]}-kagg-plan"


def storage_account_name(subscription: str, group: str) -> str:
    """3-24 lower-case letters and digits, globally unique: one account per subscription and group,
    shared by every kagg app in that group (each has its own container)."""
    digest = hashlib.sha256(f"{subscription.lower()}/{group.lower()}".encode()).hexdigest()
    return f"kagg{digest[:20]}"


def container_name(app: str) -> str:
    """3-63 lower-case letters, digits and single hyphens; a hash keeps ``a--b`` and ``a-b`` apart."""
    collapsed = re.sub("-+", "-", app.lower()).strip("-")
    digest = hashlib.sha256(app.lower().encode()).hexdigest()[:8]
    return f"kagg-{collapsed[:44]}-{digest}"


def check_name(name: str) -> None:
    if not NAME_PATTERN.match(name):
        raise BadInput(f"invalid endpoint name {name!r} for provider azure: {NAME_RULE}")


def check_options(options: DeployOptions) -> None:
    """Every value that can be judged locally; BadInput for the first bad one."""
    if options.memory is not None and options.memory not in MEMORY_SIZES:
        raise BadInput(f"--memory {options.memory} is not a Flex Consumption instance size; "
                       f"use one of {', '.join(map(str, MEMORY_SIZES))} (MB)")
    mx = options.max_instances
    if mx is not None and not MIN_MAX_INSTANCES <= mx <= MAX_MAX_INSTANCES:
        raise BadInput(f"--max-instances {mx} is outside Flex Consumption's range; "
                       f"use {MIN_MAX_INSTANCES} to {MAX_MAX_INSTANCES}")
    if options.resource_group is not None and not _GROUP.match(options.resource_group):
        raise BadInput(f"--resource-group {options.resource_group!r} is not a valid resource group name; use 1-90 "
                       "letters, digits, '-', '_', '.', '(' and ')', not ending with '.'")
    if options.subscription is not None and not _SUBSCRIPTION.match(options.subscription):
        raise BadInput(f"--subscription {options.subscription!r} is not a subscription id; expected "
                       "00000000-0000-0000-0000-000000000000 (see `az account list`)")
    if options.region is not None and not re.match(r"^[a-z0-9]{2,40}$", options.region):
        raise BadInput(f"--location {options.region!r} is not an Azure location name; use one such as "
                       "eastus or westeurope (`az account list-locations -o table`)")
    check_env(options.env)


def check_env(env: dict[str, str]) -> None:
    for key in env:
        if not _ENV_KEY.match(key):
            raise BadInput(f"--env name {key!r} is invalid on Azure Functions (Linux); use letters, digits "
                           "and '_', not starting with a digit")
        if key.upper().startswith(_RESERVED_PREFIXES):
            raise BadInput(f"--env {key} is reserved by Azure Functions or kagg; choose another name")


def python_version() -> str:
    """The worker's Python: this interpreter's when Flex offers it (requirements are pinned to the
    versions installed here), else kagg's default."""
    here = f"{sys.version_info.major}.{sys.version_info.minor}"
    return here if here in PYTHON_VERSIONS else DEFAULT_PYTHON


def normalise_location(location: str) -> str:
    """ARM lists locations by display name ("East US"); the API takes "eastus"."""
    return location.replace(" ", "").lower()
