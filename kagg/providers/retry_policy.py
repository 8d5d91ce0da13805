"""A provider's retry policy read from ``options.extra`` and its environment variable.

Tests and impatient users shrink a provider's waits, one deploy at a time through
``options.extra`` (``retry_attempts``…) or for every command through the provider's variable
(``KAGG_AWS_RETRY="attempts=3 base=0.1"``). Both providers' policies are read the same way.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, ClassVar, Mapping, Optional, TypeVar

from kagg.errors import BadInput

P = TypeVar("P")


def policy_from(cls: type[P], env_name: str, extra: Mapping[str, Any],
                keys: Optional[Mapping[str, str]] = None) -> P:
    """An instance of the dataclass ``cls`` with the values the variable ``env_name`` and then
    ``extra`` give (``keys``: field -> its key in ``extra``; default ``retry_FIELD``), each
    converted to its field's type. Any other field, or a value that is not a number, is BadInput."""
    fields = set(cls.__dataclass_fields__)  # type: ignore[attr-defined]
    keys = keys or {f: f"retry_{f}" for f in fields}
    given = _parse(os.environ.get(env_name, ""), set(keys), env_name)
    given.update({field: extra[key] for field, key in keys.items() if key in extra})
    try:
        return cls(**{field: type(getattr(cls, field))(value) for field, value in given.items()})
    except ValueError:
        raise BadInput(f"{env_name} or the retry options hold a value that is not a number: {given}") from None


def _parse(text: str, fields: set[str], env_name: str) -> dict[str, str]:
    out = {}
    for item in text.replace(",", " ").split():
        field, sep, value = item.partition("=")
        if not sep or field not in fields:
            raise BadInput(f"{env_name}={text!r}: expected FIELD=VALUE items, FIELD one of {', '.join(sorted(fields))}")
        out[field] = value
    return out


@dataclass(frozen=True)
class Backoff:
    """How hard a provider tries: attempts and seconds are both bounded; waits grow as base·2ⁿ,
    jittered, up to ``cap``. A provider's policy adds its own fields and names its variable."""

    #: the environment variable that shrinks the waits for every command (``KAGG_AWS_RETRY``…)
    ENV: ClassVar[str] = ""
    #: field -> its key in ``options.extra`` (None: ``retry_FIELD``)
    KEYS: ClassVar[Optional[Mapping[str, str]]] = None

    attempts: int = 8
    max_seconds: float = 120.0
    base: float = 0.5
    cap: float = 15.0

    @classmethod
    def from_extra(cls: type[P], extra: Mapping[str, Any]) -> P:
        """Tests and impatient users shrink the waits through ``options.extra`` (``retry_attempts``…)
        or, for every command, the environment variable :attr:`ENV`."""
        return policy_from(cls, cls.ENV, extra, cls.KEYS)
