"""``-p name=value`` for a kernel: checked against the notebook's ``parameters`` cell and typed.

The parameters cell declares each name, its type (annotation, ``# type:`` comment or the
default's type) and default (:func:`kagg.notebook.parameters.parameters_cell`). A value from the
command line is text and is converted by that type; a value from JSON (an endpoint's
``POST /jobs``) must already have it. Anything else is a BadInput before a kernel is built.
"""

from __future__ import annotations

import json
import math
from typing import Any, Optional

from kagg.errors import BadInput
from kagg.model import Parameter

_TRUE = {"true", "1", "yes", "on", "y", "t"}
_FALSE = {"false", "0", "no", "off", "n", "f"}
_JSON_KIND = {"str": str, "list": list, "dict": dict, "bool": bool}


def resolve(declared: list[Parameter], given: dict[str, Any], filename: str,
            cell: Optional[int]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the values to inject, every parameter's value in this run), both typed."""
    known = {p.name: p for p in declared}
    if given and cell is None:
        names = ", ".join(sorted(given))
        raise BadInput(f"{filename} has no cell tagged `parameters`, so it takes no parameters ({names}); "
                       "tag the cell that sets them `parameters`")
    injected: dict[str, Any] = {}
    for name, value in given.items():
        if name not in known:
            listed = ", ".join(known) if known else "none"
            raise BadInput(f"unknown parameter {name!r} for {filename}; its parameters cell (cell {cell}) "
                           f"declares: {listed}")
        injected[name] = typed(known[name], value)
    effective = {p.name: p.default for p in declared}
    effective.update(injected)
    return injected, effective


def typed(param: Parameter, value: Any) -> Any:
    """``value`` as ``param``'s type: text is converted, JSON values are checked."""
    converted = _from_text(param, value) if isinstance(value, str) and param.type != "str" else _check(param, value)
    _check_json(param.name, converted)
    return converted


def _bad(param: Parameter, value: Any, why: str = "") -> BadInput:
    shown = value if isinstance(value, str) else json.dumps(value, default=repr)
    shown = shown if len(shown) <= 40 else shown[:37] + "..."
    return BadInput(f"parameter {param.name!r} takes {_article(param.type)}{why}, got {shown!r}; "
                    f"e.g. -p {param.name}={_example(param)}")


def _article(kind: str) -> str:
    return {"int": "an integer", "float": "a number", "bool": "true or false", "list": "a JSON list",
            "dict": "a JSON object", "str": "a string"}.get(kind, "a value")


def _example(param: Parameter) -> str:
    if param.default is not None and not isinstance(param.default, str):
        return json.dumps(param.default) if not isinstance(param.default, bool) else str(param.default).lower()
    return {"int": "3", "float": "0.01", "bool": "true", "list": "[1,2]", "dict": '{"a":1}'}.get(param.type, "x")


def _from_text(param: Parameter, text: str) -> Any:
    kind = param.type
    if kind == "int":
        try:
            return int(text.strip())
        except ValueError:
            try:
                number = float(text)
            except ValueError:
                raise _bad(param, text) from None
            if number.is_integer():
                return int(number)
            raise _bad(param, text) from None
    if kind == "float":
        try:
            number = float(text)
        except ValueError:
            raise _bad(param, text) from None
        if not math.isfinite(number):
            raise _bad(param, text, " (finite)")
        return number
    if kind == "bool":
        word = text.strip().lower()
        if word in _TRUE or word in _FALSE:
            return word in _TRUE
        raise _bad(param, text)
    if kind in ("list", "dict"):
        try:
            parsed = json.loads(text)
        except ValueError:
            raise _bad(param, text) from None
        return _check(param, parsed)
    try:  # "any": JSON when it parses (3, true, [1]), else the text itself
        return json.loads(text)
    except ValueError:
        return text


def _check(param: Parameter, value: Any) -> Any:
    kind = param.type
    if kind == "any":
        return value
    if kind == "int":
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise _bad(param, value)
    if kind == "float":
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(float(value)):
            return float(value)
        raise _bad(param, value)
    expected = _JSON_KIND.get(kind)
    if expected is not None and not isinstance(value, expected):
        raise _bad(param, value)
    return value


def _check_json(name: str, value: Any) -> None:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        raise BadInput(f"parameter {name!r}: {value!r} is not a JSON value; use a number, string, bool, "
                       "None, list or dict") from None
