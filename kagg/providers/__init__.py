"""Find providers: the built-in ones and any registered under ``kagg.providers``.

A provider is looked up by name only when a command needs it, so that cloud
SDKs are imported only on their own code paths.
"""

from __future__ import annotations

import functools
import sys
from importlib.metadata import entry_points
from pathlib import Path
from typing import Optional

from kagg.errors import BadInput
from kagg.providers.base import Provider

ENTRY_POINT_GROUP = "kagg.providers"

#: built-in providers, as "module:Class" so importing this module imports no SDK
BUILTIN = {
    "local": "kagg.providers.local:LocalProvider",
    "aws": "kagg.providers.aws:AWSProvider",
}

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
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def available() -> list[str]:
    """Names of every provider that can be used here."""
    return sorted(set(BUILTIN) | set(_registered) | set(_entry_point_targets()))


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
    if name in PLANNED:
        raise BadInput(f"the {name} provider is not part of this kagg release yet; "
                       f"available: {', '.join(available())} (or install a package that registers {name!r})")
    raise BadInput(f"unknown provider {name!r}; available: {', '.join(available())}")


#: shorthands the CLI accepts (--gcp, --azure) for providers not built in yet
PLANNED = ("gcp", "azure")


def get_provider(name: str, state_dir: Optional[Path] = None) -> Provider:
    """An instance of the provider ``name`` that keeps its files in ``state_dir``."""
    cls = provider_class(name)
    provider = cls(state_dir=state_dir)
    if not getattr(provider, "name", None):
        provider.name = name
    return provider
