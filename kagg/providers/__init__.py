"""Find providers: the built-in ones and any registered under ``kagg.providers``.

A provider is looked up by name only when a command needs it, so that cloud
SDKs are imported only on their own code paths.
"""

from __future__ import annotations

import functools
import importlib.util
import sys
from pathlib import Path
from typing import Optional

from kagg.errors import BadInput
from kagg.model import DeployOptions
from kagg.providers.base import Provider

ENTRY_POINT_GROUP = "kagg.providers"

#: built-in providers, as "module:Class" so importing this module imports no SDK
BUILTIN = {
    "local": "kagg.providers.local:LocalProvider",
    "aws": "kagg.providers.aws:AWSProvider",
    "gcp": "kagg.providers.gcp:GCPProvider",
    "azure": "kagg.providers.azure:AzureProvider",
}

#: the entry shims of the built-in providers (their classes' ``shims``), so that ``kagg convert``
#: writes a provider's files without scanning entry points or importing the provider
BUILTIN_SHIMS = {"local": ("gcf",), "aws": ("lambda",), "gcp": ("gcf",), "azure": ("azure",)}

#: what a built-in provider needs beyond kagg's own dependencies: (modules, how to install them)
REQUIREMENTS = {
    "local": (("functions_framework",), "pip install functions-framework"),
    "aws": (("boto3", "botocore"), "pip install 'kagg[aws]'"),
    "gcp": (("google.cloud.functions_v2", "google.cloud.run_v2", "google.auth"), "pip install 'kagg[gcp]'"),
    "azure": (("azure.identity", "azure.mgmt.web", "azure.mgmt.storage", "azure.mgmt.resource", "requests"),
              "pip install 'kagg[azure]'"),
}

#: DeployOptions fields that kagg.deploy itself reads for every provider: never refused
COMMON_OPTIONS = frozenset({"name", "entry", "force", "dry_run", "allow_secrets", "adopt", "owner", "extra",
                            "include", "exclude", "max_data_size", "public_jobs"})

_registered: dict[str, type] = {}


def register(name: str, cls: type) -> None:
    """Register a provider class in this process (entry points are the persistent way)."""
    _registered[name] = cls


def _entry_point_targets() -> dict[str, object]:
    """The group's entry points. Scanning every installed distribution costs ~10 ms and a
    batch looks providers up hundreds of times, so it is done once per ``sys.path``."""
    return _scan_entry_points(tuple(sys.path))


@functools.lru_cache(maxsize=8)
def _scan_entry_points(path: tuple[str, ...]) -> dict[str, object]:
    from importlib.metadata import entry_points  # ~15 ms: only when a provider is looked up

    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def available() -> list[str]:
    """Names of every provider that can be used here."""
    return sorted(set(BUILTIN) | set(_registered) | set(_entry_point_targets()))


def _importable(module: str) -> bool:
    """Whether ``module`` could be imported, without importing it (only its parent packages)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def statuses() -> list[dict]:
    """Every provider known here: ``{"name", "available", "install"}``, ``install`` being the
    command that makes an unavailable one usable (None when it is available). Nothing is imported:
    a provider's SDK is looked for with :func:`importlib.util.find_spec`."""
    eps = _entry_point_targets()
    out = []
    for name in available():
        modules, install = REQUIREMENTS.get(name, ((), None))
        if name not in _registered and name not in BUILTIN and name in eps:
            module = getattr(eps[name], "module", None)
            modules = (*modules, module) if module else modules
        ok = all(_importable(m) for m in modules)
        out.append({"name": name, "available": ok,
                    "install": None if ok else (install or f"reinstall the package that provides {name!r}")})
    return out


def unused_options(cls: type, options: DeployOptions) -> list[str]:
    """The fields of ``options`` set to something other than their default that the provider class
    ``cls`` does not read (its ``options_used``). A class without ``options_used`` reads everything."""
    used = getattr(cls, "options_used", None)
    if used is None:
        return []
    unused = []
    for field_name, spec in DeployOptions.__dataclass_fields__.items():
        if field_name in COMMON_OPTIONS or field_name in used:
            continue
        default = spec.default_factory() if callable(spec.default_factory) else spec.default  # type: ignore[misc]
        if getattr(options, field_name) != default:
            unused.append(field_name)
    return unused


def provider_class(name: str) -> type:
    """The provider class registered under ``name``; BadInput if there is none."""
    if name in _registered:
        return _registered[name]
    eps = _entry_point_targets()
    if name in eps:
        return eps[name].load()  # type: ignore[attr-defined]
    if name in BUILTIN:
        module, _, attr = BUILTIN[name].partition(":")
        import importlib

        return getattr(importlib.import_module(module), attr)
    raise BadInput(f"unknown provider {name!r}; available: {', '.join(available())}")


def get_provider(name: str, state_dir: Optional[Path] = None) -> Provider:
    """An instance of the provider ``name`` that keeps its files in ``state_dir``."""
    cls = provider_class(name)
    provider = cls(state_dir=state_dir)
    if not getattr(provider, "name", None):
        provider.name = name
    return provider


def endpoint_health(endpoint, state_dir: Optional[Path] = None) -> Optional[str]:
    """What the endpoint's provider can tell at once about whether it serves (None: it cannot)."""
    try:
        return get_provider(endpoint.provider, state_dir=state_dir).health(endpoint)
    except (BadInput, ImportError):
        return None


def provider_shims(name: str) -> tuple[str, ...]:
    """The entry shims the provider ``name`` packages (a built-in's without importing it)."""
    if name in BUILTIN_SHIMS and name not in _registered:
        return BUILTIN_SHIMS[name]
    return tuple(provider_class(name).shims)
