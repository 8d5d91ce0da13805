"""Checking one value of a batch list: each parser takes what CSV (text) or JSON (typed) gave.

A parser returns the value in its Python form or raises ValueError with the
message the user sees after ``list.csv:LINE:``.
"""

from __future__ import annotations

import json
from typing import Any, Callable

_TRUE = {"true", "yes", "y", "1", "on"}
_FALSE = {"false", "no", "n", "0", "off"}


def _text(value: Any, key: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ValueError(f"bad {key} value {value!r}: expected text")
    return str(value).strip()


def _positive_int(unit: str) -> Callable[[Any, str], int]:
    def parse(value: Any, key: str) -> int:
        if isinstance(value, bool):
            raise ValueError(f"bad {key} value {value!r}: a whole number of {unit}")
        if isinstance(value, int):
            number = value
        elif isinstance(value, float) and value.is_integer():
            number = int(value)
        else:
            text = str(value).strip()
            if not text.isdigit():
                raise ValueError(f"bad {key} value {text!r}: a whole number of {unit}")
            number = int(text)
        if number <= 0:
            raise ValueError(f"bad {key} value {number}: must be more than 0 {unit}")
        return number
    return parse


def _bool(value: Any, key: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"bad {key} value {value!r}: use true or false")


def parse_env(value: Any, key: str = "env") -> dict[str, str]:
    """``K=V;K2=V2`` (or a JSON object) as a dict; ValueError naming the bad piece."""
    if isinstance(value, dict):
        pairs = [(str(k), v) for k, v in value.items()]
        for k, v in pairs:
            if isinstance(v, (dict, list)) or v is None:
                raise ValueError(f"bad {key} value for {k!r}: expected text, got {json.dumps(v)}")
        out = {k: ("true" if v is True else "false" if v is False else str(v)) for k, v in pairs}
    else:
        out = {}
        for piece in str(value).split(";"):
            piece = piece.strip()
            if not piece:
                continue
            k, sep, v = piece.partition("=")
            if not sep:
                raise ValueError(f"bad {key} value {piece!r}: expected K=V (pairs separated by ';')")
            out[k.strip()] = v.strip()
    for k in out:
        if not k or "=" in k or not all(c.isalnum() or c == "_" for c in k) or k[0].isdigit():
            raise ValueError(f"bad {key} variable name {k!r}: letters, digits and '_', not starting with a digit")
    return out


def _entry(value: Any, key: str) -> str:
    text = _text(value, key)
    if not text.isidentifier():
        raise ValueError(f"bad {key} value {text!r}: must be a Python function name")
    return text


def _payload_from_text(value: Any, key: str) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except json.JSONDecodeError as exc:
        raise ValueError(f"bad {key} value: not valid JSON ({exc.msg} at column {exc.colno})")


PARSERS: dict[str, Callable[[Any, str], Any]] = {
    "notebook": _text, "name": _text, "provider": _text, "region": _text,
    "memory": _positive_int("MB"), "timeout": _positive_int("s"), "entry": _entry,
    "public": _bool, "env": parse_env, "payload": _payload_from_text,
}
