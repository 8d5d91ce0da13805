"""Calling a private function app: its host's function key, read through ARM at call time.

``kagg invoke`` and ``kagg monitor`` add the key as ``x-functions-key``; it is read
with ``POST .../host/default/listkeys`` when first needed in a process, kept in
memory only, and never written to the registry, a log or the output.
"""

from __future__ import annotations

from typing import Any

from kagg.errors import OperationFailed
from kagg.providers.azure.clients import Clients
from kagg.providers.azure.errors import arm

KEY_HEADER = "x-functions-key"


def host_key(c: Clients, resource_group: str, app: str) -> str:
    """The host's default function key (a read; the key is returned, never stored)."""
    keys: Any = arm(c.web.web_apps.list_host_keys, f"reading the function keys of {app}", resource_group, app)
    key = (getattr(keys, "function_keys", None) or {}).get("default") or getattr(keys, "master_key", None)
    if not key:
        raise OperationFailed(f"function app {app} has no function key yet; wait a minute and call again")
    return key
