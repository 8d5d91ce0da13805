"""Validating one registry entry: the file is shared and hand-edited, so it is input like any other.

Every entry is checked when read: the key equals the name, the name follows its provider's
rules (so no path is ever built from a name like ``../../x``), and every field has its type.
"""

from __future__ import annotations

import re
from typing import Any, Optional

#: a name any provider may use in a path: what is allowed when the provider is not installed here
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")
_STATUSES = ("ready", "pending")
_OPTIONAL_STR = ("auth", "region", "artifact_sha256", "created_at", "updated_at", "owner")


def entry_problem(key: Any, data: Any) -> Optional[str]:
    """None for a valid entry, else one line saying what is wrong with it."""
    where = f"registry entry {key!r}"
    if not isinstance(data, dict):
        return f"{where} is a {type(data).__name__}, not an object"
    name = data.get("name")
    if name != key:
        return f"{where} has the name {name!r}; an entry's key and name must be equal"
    if not isinstance(data.get("provider"), str) or not data["provider"]:
        return f"{where} has no provider"
    rule = _name_rule(data["provider"])
    if not rule[0].match(key) or not _path_safe(key):
        return f"{where} has a name its provider ({data['provider']}) does not allow: {rule[1]}"
    if not isinstance(data.get("url", ""), str):
        return f"{where}: url must be text, not {type(data['url']).__name__}"
    for field in _OPTIONAL_STR:
        value = data.get(field)
        if value is not None and not isinstance(value, str):
            return f"{where}: {field} must be text, not {type(value).__name__}"
    for field in ("source", "provider_data"):
        value = data.get(field, {})
        if not isinstance(value, dict):
            return f"{where}: {field} must be an object, not {type(value).__name__}"
    if data.get("status", "ready") not in _STATUSES:
        return f"{where}: status must be one of {', '.join(_STATUSES)}"
    return None


def _name_rule(provider: str) -> tuple[re.Pattern, str]:
    """The provider's own name rule when it is installed, else :data:`SAFE_NAME`."""
    from kagg.errors import BadInput
    from kagg.providers import provider_class

    try:
        cls = provider_class(provider)
    except (BadInput, ImportError):
        return SAFE_NAME, "letters, digits, '-' and '_'"
    pattern = getattr(cls, "name_pattern", None)
    if not isinstance(pattern, re.Pattern):
        return SAFE_NAME, "letters, digits, '-' and '_'"
    return pattern, getattr(cls, "name_rule", pattern.pattern)


def _path_safe(name: str) -> bool:
    """Whatever a provider allows, a name becomes a folder name: no separators, no dots first."""
    return bool(name) and not name.startswith(".") and not any(c in name for c in "/\\\0") and len(name) <= 128
