"""kagg's runtime: serves a converted notebook over the endpoint contract (docs/architecture.md, "Endpoint contract").

This one file is copied into every artifact and runs on every provider, so it
uses the standard library only. A provider's entry shim turns its own request
type into a :class:`Request`, calls :meth:`App.handle` and turns the
:class:`Response` back. Everything per request is precomputed at :func:`load`
(the instance's cold start) so a request costs little more than the notebook's
own code.

Routes: ``POST /`` (JSON object body) and ``GET /?a=1`` call the function,
``GET /health`` and ``GET /schema`` describe it, ``/jobs`` starts and follows Kaggle training
runs (kagg_jobs.py, imported on first use). Errors are JSON
``{"error": {"type": ..., "message": ...}}``; a notebook exception's traceback
goes to stderr (the function's log) only.
"""

from __future__ import annotations

import binascii
import builtins
import enum
import json
import math
import os
import re
import sys
import threading
import time
import weakref
TYPE_CHECKING = False  # annotations are strings (the __future__ import); importing typing costs ms
if TYPE_CHECKING:
    from typing import Any, Callable, Optional

__all__ = ["App", "LoadError", "Request", "Response", "display", "load", "to_jsonable"]

JSON_CONTENT_TYPE = "application/json"
NOTEBOOK_MODULE = "kagg_notebook"
NOTEBOOK_FILE = "kagg_notebook.py"
REQUEST_FILE = "kagg_request.py"
MANIFEST_FILE = "kagg.json"
JOBS_FILE = "kagg_jobs.json"  # the Kaggle kernel template: present when the notebook has train cells


def display(*objs: Any, **kwargs: Any) -> None:
    """Jupyter's ``display``: outside a notebook there is nothing to show, so it does nothing."""


class Request:
    """One HTTP request as every shim gives it: header names lower-case, repeated query keys kept.

    ``headers`` may be given as a zero-argument function returning the dict: the
    runtime rarely reads headers, so a shim need not pay for copying them.
    """

    __slots__ = ("method", "path", "query", "_headers", "body")

    def __init__(self, method: str, path: str = "/", query: Optional[dict[str, list[str]]] = None,
                 headers: Optional[dict[str, str] | Callable[[], dict[str, str]]] = None,
                 body: bytes | str = b"") -> None:
        self.method = method.upper()
        self.path = path or "/"
        self.query = query or {}
        self._headers = headers if headers is not None else {}
        self.body = body.encode("utf-8") if isinstance(body, str) else (body or b"")

    @property
    def headers(self) -> dict[str, str]:
        if callable(self._headers):
            self._headers = self._headers()
        return self._headers  # type: ignore[return-value]

    def __repr__(self) -> str:
        return f"Request({self.method} {self.path} query={self.query!r} body={len(self.body)} bytes)"


class Response:
    """The runtime's answer; ``body`` is always JSON bytes."""

    __slots__ = ("status", "headers", "body")

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def json(self) -> Any:
        """The decoded body (handy in tests and in the local provider)."""
        return json.loads(self.body)

    def __repr__(self) -> str:
        return f"Response({self.status}, {self.body[:80]!r})"


class LoadError(Exception):
    """The artifact cannot be served (bad manifest, missing handler or request cells)."""


class HTTPError(Exception):
    """A request the contract answers with a 4xx (or a 500 not caused by the notebook's code)."""

    def __init__(self, status: int, type_: str, message: str, headers: Optional[dict[str, str]] = None):
        super().__init__(message)
        self.status = status
        self.type = type_
        self.message = message
        self.headers = headers


# --------------------------------------------------------------------------------------------
# Parameters: binding like a keyword call and converting by the declared type
# --------------------------------------------------------------------------------------------

_TYPE_WORDS = {"int": "an integer", "float": "a number", "str": "a string", "bool": "a boolean",
               "list": "a list (JSON array)", "dict": "an object (JSON object)"}
_TRUE = frozenset({"true", "1", "yes", "y", "on", "t"})
_FALSE = frozenset({"false", "0", "no", "n", "off", "f"})


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _wrong_type(name: str, type_: str, got: str) -> HTTPError:
    return HTTPError(400, "InvalidParameter", f"parameter {name!r} must be {_TYPE_WORDS[type_]}, got {got}")


#: declared types a JSON value must already have (no conversion between them)
_JSON_EXACT = {"bool": bool, "str": str, "list": list, "dict": dict}

_FLOAT_RANGE = "JSON numbers in a request must be finite and fit a 64-bit float (about ±1.8e308)"


class _NotJSON(ValueError):
    """``NaN``, ``Infinity``, ``-Infinity``: Python's json reads them, JSON has no such numbers."""


class _BadValue(ValueError):
    """JSON that parses but that no request may carry (the caller's mistake, a 400)."""


def _reject_constant(name: str) -> Any:
    raise _NotJSON(f"{name} is not a JSON number; {_FLOAT_RANGE}")


def _finite_float(text: str, _float: Any = float) -> float:
    value = _float(text)
    if value - value:  # inf - inf is nan: a number too large for a float, e.g. 1e400
        raise _BadValue(f"the number {_clip(text)} is out of range; {_FLOAT_RANGE}")
    return value


_DECODER = json.JSONDecoder(parse_float=_finite_float, parse_constant=_reject_constant)
_FAST_DECODER = json.JSONDecoder(parse_constant=_reject_constant)  # C float parsing: no call per number
#: |x| >= 1.8e308 needs an exponent of 100 or more (3+ digits, leading zeros aside) or, with an
#: exponent under 100, 210+ digits before the point: over the body with digits mapped to "0"
_NUMBER_SHAPES = bytes.maketrans(b"0123456789E", b"0" * 10 + b"e")
_LONG_DIGITS = b"0" * 210
_BIG_EXPONENT = rb"e\+?000"  # patterns stay text until used (re caches them): no compiling at cold start


def _may_overflow(body: bytes) -> bool:
    """Whether a number in this UTF-8 JSON could be beyond a float's range (a superset: text inside a
    string may match too), in a few C passes over the bytes."""
    shapes = body.translate(_NUMBER_SHAPES)
    return _LONG_DIGITS in shapes or (b"e" in shapes and re.search(_BIG_EXPONENT, shapes) is not None)


def _decoder_for(body: bytes) -> json.JSONDecoder:
    """The decoder for a UTF-8 body: checking every float costs a Python call per float, scanning
    the bytes first a few nanoseconds per byte; a body dense with floats (a "." per 40 bytes or
    more) is scanned, and the C decoder then parses its floats unless the scan finds a suspect."""
    if body.count(b".") * 40 < len(body) or _may_overflow(body):
        return _DECODER
    return _FAST_DECODER


#: an escaped surrogate that the decoder cannot pair up: only then are the strings walked
_LONE_SURROGATE_ESCAPE = (r"\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F])"
                          r"|(?<!\\u[dD][89abAB][0-9a-fA-F]{2})\\u[dD][c-fC-F]")
_SURROGATE = "[\ud800-\udfff]"


def _loads(data: bytes | str, root: Optional[str] = None) -> Any:
    """``json.loads`` for what a request carries, refusing what JSON allows but a request may not.

    Bytes must be UTF-8 (or UTF-16/32 with the BOM-less detection of ``json.loads``), decoded
    strictly, so raw surrogates are invalid input. ``NaN``/``Infinity`` raise :class:`_NotJSON`;
    numbers beyond a float's range, nesting deeper than Python can parse and escaped lone
    surrogates (``"\\ud800"``) raise :class:`_BadValue`. Other errors are ``ValueError`` as with
    ``json.loads``.
    """
    decoder = _DECODER
    if not isinstance(data, str):
        if type(data) is not bytes:
            data = bytes(data)
        encoding = json.detect_encoding(data)
        if encoding.startswith("utf-8"):
            decoder = _decoder_for(data)
        data = data.decode(encoding)
    try:
        value = decoder.decode(data)
    except RecursionError:
        raise _BadValue("it nests too deeply (arrays or objects inside each other)") from None
    if "\\" in data and re.search(_LONE_SURROGATE_ESCAPE, data):  # one-character find: memchr
        where = _lone_surrogate(value, "body" if root is None else root)
        if where is not None:
            raise _BadValue(f"the string {where} holds a lone surrogate (an unpaired \\ud800-\\udfff "
                            "escape), which is not Unicode text")
    return value


def _lone_surrogate(value: Any, root: str) -> Optional[str]:
    """Where the first string (or key) holding a lone surrogate is, e.g. ``at body['xs'][2]``; None if none."""
    stack = [(value, root)]
    while stack:
        item, path = stack.pop()
        if isinstance(item, str):
            if re.search(_SURROGATE, item):
                return f"at {path}"
        elif isinstance(item, list):
            stack.extend((v, f"{path}[{i}]") for i, v in reversed(list(enumerate(item))))
        elif isinstance(item, dict):
            for k, v in reversed(list(item.items())):
                if isinstance(k, str) and re.search(_SURROGATE, k):
                    return f"in the key {ascii(k)} of {path}"
                stack.append((v, f"{path}[{ascii(k)}]"))
    return None


def _clip(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _from_json(name: str, type_: str, value: Any) -> Any:
    """Check a JSON body value against the declared type (ints may arrive as 3.0)."""
    if type_ == "any":
        return value
    if type_ == "int":
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif type_ == "float":
        if isinstance(value, float):
            if math.isfinite(value):
                return value
            raise HTTPError(400, "InvalidParameter", f"parameter {name!r} must be a finite number; {_FLOAT_RANGE}")
        if isinstance(value, int) and not isinstance(value, bool):
            try:
                return float(value)
            except OverflowError:
                raise HTTPError(400, "InvalidParameter",
                                f"parameter {name!r} is out of range ({len(str(abs(value)))}-digit integer); "
                                f"{_FLOAT_RANGE}") from None
    elif type_ in _JSON_EXACT:
        if isinstance(value, _JSON_EXACT[type_]):
            return value
    else:  # an unknown type name in kagg.json: do not guess
        return value
    raise _wrong_type(name, type_, "null" if value is None else f"{_json_type(value)} {_short(value)}")


def _short(value: Any) -> str:
    try:
        text = json.dumps(value)
    except (TypeError, ValueError, RecursionError):
        try:
            text = repr(value)
        except RecursionError:
            text = f"a deeply nested {type(value).__name__}"
    return _clip(text)


def _bad_value(name: str, exc: ValueError) -> HTTPError:
    return HTTPError(400, "InvalidParameter", f"parameter {name!r}: {exc}")


def _guess(name: str, text: str) -> Any:
    """A query value with no declared type: JSON if it parses, else the string itself."""
    try:
        return _loads(text, name)
    except _BadValue as exc:  # JSON, but no request may carry it
        raise _bad_value(name, exc) from None
    except ValueError:
        return text


def _from_text(name: str, type_: str, values: list[str]) -> Any:
    """Convert query-string values (always text) by the declared type."""
    if type_ == "list":
        if len(values) == 1 and values[0].lstrip().startswith("["):
            parsed = _query_json(name, type_, values[0])
            if not isinstance(parsed, list):
                raise _wrong_type(name, type_, _json_type(parsed))
            return parsed
        return [_guess(name, v) for v in values]
    if len(values) != 1:
        if type_ == "any":
            return [_guess(name, v) for v in values]
        raise HTTPError(400, "InvalidParameter",
                        f"parameter {name!r} was given {len(values)} times; it takes one value")
    text = values[0]
    if type_ == "any":
        return _guess(name, text)
    if type_ == "str":
        return text
    if type_ == "int":
        try:
            return int(text)
        except ValueError:
            try:
                number = float(text)
            except ValueError:
                number = math.nan
            if number.is_integer():
                return int(number)
    elif type_ == "float":
        try:
            number = float(text)
        except ValueError:
            pass
        else:
            if math.isfinite(number):
                return number
            raise HTTPError(400, "InvalidParameter", f"parameter {name!r} must be a finite number, got "
                                                     f"{_short(text)}; {_FLOAT_RANGE}")
    elif type_ == "bool":
        word = text.strip().lower()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
    elif type_ == "dict":
        parsed = _query_json(name, type_, text)
        if isinstance(parsed, dict):
            return parsed
        raise _wrong_type(name, type_, _json_type(parsed))
    else:
        return text
    raise _wrong_type(name, type_, _short(text))


def _query_json(name: str, type_: str, text: str) -> Any:
    try:
        return _loads(text, name)
    except _BadValue as exc:
        raise _bad_value(name, exc) from None
    except ValueError:
        raise _wrong_type(name, type_, f"invalid JSON {_short(text)}") from None


class _Binder:
    """Binds request values to the declared parameters, precomputed from kagg.json."""

    def __init__(self, parameters: list[dict], accepts_kwargs: bool) -> None:
        self.types = {p["name"]: p.get("type") or "any" for p in parameters}
        # null stands for a default of None; not for a default kagg could not read (``n=DEFAULT_N``)
        self.nullable = frozenset(p["name"] for p in parameters if not p.get("required")
                                  and p.get("default") is None and p.get("default_expr") is None)
        self.required = tuple(p["name"] for p in parameters if p.get("required"))
        self.accepts_kwargs = accepts_kwargs
        self.known = ", ".join(self.types) or "no parameters"

    def bind_json(self, data: dict) -> dict:
        types, nullable = self.types, self.nullable
        out = {}
        for name, value in data.items():
            type_ = types.get(name)
            if type_ is None:
                if not self.accepts_kwargs:
                    self._unknown(name, data)
                out[name] = value
            elif value is None and name in nullable:
                out[name] = None
            else:
                out[name] = _from_json(name, type_, value)
        self._check_required(out)
        return out

    def bind_query(self, query: dict[str, list[str]]) -> dict:
        types = self.types
        out = {}
        for name, values in query.items():
            type_ = types.get(name)
            if type_ is None:
                if not self.accepts_kwargs:
                    self._unknown(name, query)
                type_ = "any"
            out[name] = _from_text(name, type_, values)
        self._check_required(out)
        return out

    def _unknown(self, name: str, given: dict) -> None:
        unknown = sorted(n for n in given if n not in self.types)
        label = "parameter" if len(unknown) == 1 else "parameters"
        raise HTTPError(400, "UnknownParameter",
                        f"unknown {label} {', '.join(map(repr, unknown))}; this function takes: {self.known}")

    def _check_required(self, out: dict) -> None:
        for name in self.required:
            if name not in out:
                missing = [n for n in self.required if n not in out]
                label = "parameter" if len(missing) == 1 else "parameters"
                raise HTTPError(400, "MissingParameter",
                                f"missing required {label} {', '.join(map(repr, missing))}")


# --------------------------------------------------------------------------------------------
# JSON encoding of whatever the notebook returns
# --------------------------------------------------------------------------------------------

def _root_module(obj: Any) -> str:
    return type(obj).__module__.partition(".")[0]


def _pandas_class(obj: Any) -> Optional[str]:
    """The name of the pandas class ``obj`` is or derives from (GeoDataFrame is a DataFrame)."""
    for klass in type(obj).__mro__:
        if klass.__module__.partition(".")[0] == "pandas":
            return klass.__name__
    return None


def _is_default_index(index: Any) -> bool:
    """A pandas RangeIndex 0..n-1, i.e. an index that carries no information."""
    if type(index).__name__ != "RangeIndex":
        return False
    return getattr(index, "start", None) == 0 and getattr(index, "step", None) == 1


def _loaded(module: str, *names: str) -> tuple:
    """Classes of a module only if something already imported it.

    A value of type ``datetime.date`` cannot exist unless ``datetime`` was imported, so the
    runtime never imports these modules itself: each costs cold-start time on every call
    of a fresh instance (Lambda has no bytecode cache for the function's own files).
    """
    mod = sys.modules.get(module)
    return tuple(getattr(mod, n) for n in names) if mod is not None else ()


def _key(key: Any) -> Any:
    """A dict key JSON can carry (str, int, float, bool, None)."""
    if key is None or isinstance(key, (str, int, float, bool)):
        return key
    if isinstance(key, _loaded("datetime", "date", "time")):
        return key.isoformat()
    item = getattr(key, "item", None)  # numpy scalar
    if callable(item) and _root_module(key) == "numpy":
        return _key(item())
    return str(key)


def to_jsonable(obj: Any) -> Any:
    """One step towards JSON for a value the json module cannot encode (numpy, pandas, dataclasses...).

    Duck-typed on purpose: importing numpy or pandas here would slow every cold start.
    Returns something the encoder recurses into; raises ``TypeError`` for unknown types.
    """
    if isinstance(obj, _loaded("datetime", "datetime", "date", "time")):
        if type(obj).__name__ == "NaTType":
            return None
        return obj.isoformat()
    if isinstance(obj, _loaded("datetime", "timedelta")):
        return obj.total_seconds()
    root = _root_module(obj)
    if root == "numpy":
        if hasattr(obj, "tolist"):  # arrays and scalars (numpy.generic.tolist() is item())
            return obj.tolist()
    kind = _pandas_class(obj)
    if kind:
        if kind == "DataFrame":
            return obj.to_dict(orient="records")
        if kind == "Series":
            if _is_default_index(obj.index):
                return obj.tolist()
            return {_key(k): v for k, v in obj.items()}
        if kind in ("NAType", "NaTType"):
            return None
        if kind == "Timedelta":
            return obj.total_seconds()
        if hasattr(obj, "tolist"):  # Index, Categorical, arrays
            return obj.tolist()
        return str(obj)  # Period, Interval, ...
    if hasattr(type(obj), "__dataclass_fields__") and not isinstance(obj, type):
        import dataclasses  # loaded already: the value's class was made by it

        return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
    if isinstance(obj, (set, frozenset)):
        try:
            return sorted(obj)
        except TypeError:
            return list(obj)
    if isinstance(obj, _loaded("decimal", "Decimal")):
        if obj.is_finite() and obj == obj.to_integral_value():
            return int(obj)
        return float(obj)
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return binascii.b2a_base64(bytes(obj), newline=False).decode("ascii")
    if isinstance(obj, enum.Enum):
        return obj.value
    if isinstance(obj, _loaded("uuid", "UUID")):
        return str(obj)
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if isinstance(obj, complex):
        return [obj.real, obj.imag]
    if hasattr(obj, "keys") and hasattr(obj, "__getitem__"):  # other mappings
        return {k: obj[k] for k in obj.keys()}
    if hasattr(obj, "tolist") and callable(obj.tolist):  # torch, jax, tensorflow tensors...
        return obj.tolist()
    cls = type(obj)
    raise TypeError(f"the result contains a {cls.__module__}.{cls.__qualname__}, which kagg cannot "
                    f"convert to JSON; return numbers, strings, lists or dicts")


def _sanitize(obj: Any) -> Any:
    """The slow path: NaN/inf become null, keys become strings, converted types recursively."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if obj is None or isinstance(obj, (str, int)):
        return obj
    if isinstance(obj, dict):
        return {_key(k): _sanitize(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_sanitize(v) for v in obj]
    return _sanitize(to_jsonable(obj))


_ENCODER = json.JSONEncoder(default=to_jsonable, allow_nan=False, ensure_ascii=False,
                            separators=(",", ":"))


def encode(obj: Any) -> bytes:
    """JSON bytes for ``obj``; C encoder first, the sanitizing pass only when it refuses.

    Raises ``TypeError`` (saying what) for anything that cannot become JSON text in UTF-8.
    """
    try:
        text = _ENCODER.encode(obj)
    except (ValueError, TypeError, RecursionError):  # NaN/inf, keys JSON cannot take, a type to_jsonable
        text = None                                  # refused, a cycle or deep nesting: the slow path says
    if text is None:
        try:
            text = _ENCODER.encode(_sanitize(obj))
        except RecursionError:
            raise TypeError("the result contains a reference cycle (or nests too deeply) to convert "
                            "to JSON") from None
        except ValueError as exc:  # e.g. an integer with more digits than Python converts to text
            raise TypeError(f"the result cannot be converted to JSON: {exc}") from None
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:  # a lone surrogate ("\ud800"): not Unicode text, so not UTF-8
        raise TypeError(_surrogate_message(obj, text, exc)) from None


def _surrogate_message(obj: Any, text: str, exc: UnicodeEncodeError) -> str:
    """Name the string of the result that holds a lone surrogate: its place, else the JSON around it."""
    try:
        where = _lone_surrogate(_sanitize(obj), "result")
    except RecursionError:
        where = None
    if where is None:
        where = f"near {ascii(text[max(exc.start - 30, 0):exc.end + 30])} in the JSON text"
    return (f"the result contains a string with a lone surrogate ({ascii(text[exc.start:exc.end])}) "
            f"{where}, which is not Unicode text and cannot be encoded as UTF-8; remove it or replace "
            "it, e.g. s.encode('utf-8', 'replace').decode('utf-8')")


def _error_body(type_: str, message: str) -> bytes:
    return json.dumps({"error": {"type": type_, "message": message}}).encode("utf-8")


# --------------------------------------------------------------------------------------------
# Async handlers: one event loop per worker thread
# --------------------------------------------------------------------------------------------

_LOOPS = threading.local()


def _run_coroutine(coro: Any) -> Any:
    """Run ``coro`` on this thread's event loop, made on first use and kept (clients bound to a loop
    survive between requests; ``asyncio.run`` would make and close a loop per request)."""
    loop = getattr(_LOOPS, "loop", None)
    if loop is None or loop.is_closed():
        import asyncio  # only for async handlers: a heavy import

        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        _LOOPS.loop = loop
    return loop.run_until_complete(coro)


# --------------------------------------------------------------------------------------------
# Script mode: every request's own values, wherever the notebook reads them
# --------------------------------------------------------------------------------------------
#
# The cells above the parameters cell run once, as the module; functions and classes they
# define keep the module's dict as their globals. For each request the cells below run in a
# copy of that dict with the request's values laid over the defaults. Two names need more,
# so that the notebook reads what papermill's one namespace would give it:
#
# - a parameter, or a name the cells below assign, read by a function defined above
#   ("hidden" names): they are taken out of the module's dict after it ran, so a lookup
#   misses it and CPython asks the module's builtins next, a dict subclass whose
#   ``__missing__`` answers from the namespace of the request running in this context (a
#   ContextVar: concurrent requests on different threads each see their own);
# - a name a function defined above assigns with ``global`` and the cells below read
#   ("live" names): the request's copy leaves it out and reads the module's current value.
#
# Every other lookup stays a plain dict hit, and a notebook that has neither kind of name
# (the usual case) gets no hook at all.

_CODE_TYPE = type(_clip.__code__)
_BUILTINS = vars(builtins)


def _nested_code(code: Any) -> list:
    """The code objects defined inside ``code`` (functions, lambdas, classes, comprehensions), at any depth."""
    found = []
    stack = [c for c in code.co_consts if isinstance(c, _CODE_TYPE)]
    while stack:
        inner = stack.pop()
        found.append(inner)
        stack.extend(c for c in inner.co_consts if isinstance(c, _CODE_TYPE))
    return found


def _names_of(codes: list) -> set:
    names: set = set()
    for code in codes:
        names.update(code.co_names)
    return names


def _stored_names(code: Any, own: bool) -> set:
    """Names bound in a module's namespace by ``code`` run as the module's code (``own``: its stores
    and deletes) and by the functions it defines (``global`` stores; class bodies store in the class)."""
    import opcode  # small, and only needed by script mode with functions reading request names

    opmap = opcode.opmap
    inner = {opmap["STORE_GLOBAL"], opmap["DELETE_GLOBAL"]}
    top = inner | {opmap["STORE_NAME"], opmap["DELETE_NAME"]}
    extended = opmap["EXTENDED_ARG"]
    parts = [(c, inner) for c in _nested_code(code)]
    if own:
        parts.append((code, top))
    names = set()
    for part, ops in parts:
        raw, arg = part.co_code, 0
        if not any(op in raw for op in ops):  # most functions assign no global: no need to decode them
            continue
        for i in range(0, len(raw), 2):
            op = raw[i]
            if op == extended:
                arg = (arg | raw[i + 1]) << 8
                continue
            if op in ops:
                names.add(part.co_names[arg | raw[i + 1]])
            arg = 0
    return names


class _ScriptBuiltins(dict):
    """The builtins of a script-mode module: a hidden name is the running request's."""

    __slots__ = ("current", "scope")

    def __missing__(self, name: str) -> Any:  # the hot path: a parameter read by a function above
        ns = self.current(None)
        if ns is None:
            ns = self.scope.orphan(name)
        try:
            return ns[name]
        except KeyError:
            pass
        try:
            return _BUILTINS[name]  # e.g. a parameter named `id`, read where no request binds it
        except KeyError:
            raise KeyError(name) from None


class _RequestNamespace(dict):
    """A request's namespace when it has live names: those are read from the module, as they are now."""

    __slots__ = ("scope",)

    def __missing__(self, name: str) -> Any:
        if name in self.scope.live:
            return self.scope.module_ns[name]
        try:
            return _BUILTINS[name]
        except KeyError:
            raise KeyError(name) from None

    def __contains__(self, name: object) -> bool:  # `'model' in globals()` in the cells below
        return dict.__contains__(self, name) or (name in self.scope.live and name in self.scope.module_ns)


class _LiveBuiltins(dict):
    """Builtins of a request with live names (class bodies look past the namespace's own dict)."""

    __slots__ = ("scope",)

    def __missing__(self, name: str) -> Any:
        if name in self.scope.live:
            return self.scope.module_ns[name]
        raise KeyError(name)


class _ScriptScope:
    """What script mode needs beyond a copy of the module's namespace (see above); made at load."""

    def __init__(self, module_ns: dict, names: frozenset, live: frozenset) -> None:
        self.module_ns = module_ns
        self.names = names  # hidden: taken out of the module after it ran
        self.live = live
        self.hidden: dict = {}  # the module's values of hidden names: the base of every request
        self.active: dict[int, dict] = {}
        self.current: Any = None
        if names:
            import contextvars  # small; only when a function defined above reads a request name

            self.current = contextvars.ContextVar("kagg_request_namespace")
            self.fallback = _ScriptBuiltins((k, v) for k, v in _BUILTINS.items() if k not in names)
            self.fallback.current, self.fallback.scope = self.current.get, self
            module_ns["__builtins__"] = self.fallback  # before the module runs: functions keep their builtins
        self.request_builtins = _BUILTINS
        if live:
            self.request_builtins = _LiveBuiltins((k, v) for k, v in _BUILTINS.items() if k not in live)
            self.request_builtins.scope = self

    @classmethod
    def prepare(cls, module_code: Any, module_ns: dict, request_code: Any,
                parameters: list) -> Optional["_ScriptScope"]:
        """A scope if the notebook has hidden or live names, else None (read from the code, not run)."""
        read_above = _names_of(_nested_code(module_code))
        request_read = _names_of([request_code] + _nested_code(request_code))
        params = set(parameters)
        if not read_above & (params | request_read):  # cheap first test: no bytecode is read
            return None
        bound = params | _stored_names(request_code, own=True)
        names = frozenset(read_above & bound)
        live = frozenset((_stored_names(module_code, own=False) & request_read) - bound)
        return cls(module_ns, names, live) if names or live else None

    def hide(self) -> None:
        """After the module ran: its values of the hidden names move aside, and the builtins are
        copied again (the notebook's imports may have added or replaced some, e.g. `builtins.print`)."""
        module_ns, hidden = self.module_ns, self.hidden
        for name in self.names:
            if name in module_ns:
                hidden[name] = module_ns.pop(name)
        if self.names:
            self.fallback.clear()
            self.fallback.update((k, v) for k, v in _BUILTINS.items() if k not in self.names)

    def namespace(self, module_ns: dict) -> dict:
        """A new request's namespace, before the parameters are laid over it."""
        if self.live:
            ns: dict = _RequestNamespace(module_ns)
            ns.scope = self  # type: ignore[attr-defined]
            for name in self.live:
                ns.pop(name, None)
        else:
            ns = dict(module_ns)
        ns.update(self.hidden)
        ns["__builtins__"] = self.request_builtins  # the copy holds the hidden names itself
        return ns

    def orphan(self, name: str) -> dict:
        """The namespace for a lookup outside any request's context (a thread the notebook started)."""
        active = list(self.active.values())
        if not active:
            return self.hidden
        if len(active) == 1:
            return active[0]
        raise RuntimeError(f"{name!r} was read outside its request's thread (a thread the notebook started?) "
                           f"while {len(active)} requests were running, so kagg cannot tell whose value it is; "
                           "pass the value to that code as an argument")

    def run(self, code: Any, ns: dict) -> None:
        if self.current is None:  # live names only
            exec(code, ns)
            return
        key = id(ns)
        self.active[key] = ns
        token = self.current.set(ns)
        try:
            exec(code, ns)
        finally:
            self.current.reset(token)
            del self.active[key]
            module_ns = self.module_ns
            for name in self.names:  # `global name` in a function defined above wrote the module's
                value = module_ns.pop(name, _ScriptScope)  # dict: keep it as module state, aside
                if value is not _ScriptScope:
                    self.hidden[name] = value


# --------------------------------------------------------------------------------------------
# The application
# --------------------------------------------------------------------------------------------

def _strip_runtime_frames(tb: Any) -> Any:
    """Start the logged traceback at the notebook's code, not in this file."""
    here = __file__
    while tb is not None and (tb.tb_frame.f_code.co_filename == here
                              or tb.tb_frame.f_code.co_filename.startswith("<frozen ")):
        tb = tb.tb_next
    return tb


def _log_exception(exc: BaseException) -> None:
    tb = _strip_runtime_frames(exc.__traceback__) or exc.__traceback__
    import traceback  # only when something failed

    traceback.print_exception(type(exc), exc, tb, file=sys.stderr)


def _new_instance_id() -> str:
    return os.urandom(8).hex()


def _exit_message(exc: BaseException) -> str:
    """The 500's message for a BaseException the notebook raised (its server keeps serving)."""
    if isinstance(exc, SystemExit):
        called = "sys.exit()" if exc.code is None else f"sys.exit({exc.code!r})"
        return (f"the notebook called exit ({called}); an endpoint cannot exit, so this request failed "
                "and the server keeps serving: return a value or raise an exception instead")
    if isinstance(exc, KeyboardInterrupt):
        return ("the notebook raised KeyboardInterrupt (as if it had been interrupted); this request "
                "failed and the server keeps serving: raise an ordinary exception instead")
    return str(exc) or type(exc).__name__


class App:
    """A loaded notebook: route, bind, call, encode, time. One per process (instance)."""

    def __init__(self, manifest: dict, module: Any, request_code: Any, init_ms: float,
                 log: bool = True, scope: Optional[_ScriptScope] = None) -> None:
        self.manifest = manifest
        self.name = manifest.get("name", "")
        self.mode = manifest.get("mode", "handler")
        self.init_ms = init_ms
        self.log = log
        self.module = module
        self._binder = _Binder(manifest.get("parameters") or [], bool(manifest.get("accepts_kwargs")))
        self._call: Callable[[dict], Any]
        if self.mode == "script":
            if request_code is None:
                raise LoadError(f"script mode needs {REQUEST_FILE} beside {NOTEBOOK_FILE}")
            self._globals = vars(module)
            self._scope = scope
            self._code = request_code
            self._defaults = {p["name"]: p.get("default") for p in manifest.get("parameters") or []
                              if not p.get("required")}
            self._mutable_defaults = {k for k, v in self._defaults.items()
                                      if isinstance(v, (list, dict))}
            self._call = self._call_script
        else:
            entry = manifest.get("entry") or "handler"
            handler = getattr(module, entry, None)
            if not callable(handler):
                raise LoadError(f"the notebook defines no function {entry!r} to serve")
            self._handler = handler
            self._call = self._call_handler
        health = {"status": "ok", "function": self.name,
                  "source_sha256": manifest.get("source_sha256"),
                  "kagg_version": manifest.get("kagg_version")}
        self._health_body = json.dumps(health).encode("utf-8")
        self.root: Optional[str] = None  # the artifact's folder (set by load)
        self._jobs: Any = None
        self._schema_body = json.dumps(manifest.get("schema") or {}).encode("utf-8")
        self._reset_instance()

    def _reset_instance(self) -> None:
        """A new instance: fresh id, and the next response is the cold one."""
        self._lock = threading.Lock()
        self.instance_id = _new_instance_id()
        self._cold_pending = True

    def _take_cold(self) -> bool:
        """True exactly once per instance, even with concurrent first requests."""
        if not self._cold_pending:
            return False
        with self._lock:
            if self._cold_pending:
                self._cold_pending = False
                return True
        return False

    # -- calling the notebook ------------------------------------------------------------
    def _call_handler(self, values: dict) -> Any:
        result = self._handler(**values)
        if hasattr(result, "__await__") and hasattr(result, "send"):  # an ``async def handler``
            result = _run_coroutine(result)
        return result

    def _call_script(self, values: dict) -> Any:
        scope = self._scope
        ns = dict(self._globals) if scope is None else scope.namespace(self._globals)
        ns.update(self._defaults)
        for name in self._mutable_defaults:  # a request must not see another's mutations
            if name not in values:
                import copy  # only notebooks with a mutable default pay for it, once

                ns[name] = copy.deepcopy(self._defaults[name])
        ns.update(values)
        if scope is None:
            exec(self._code, ns)
        else:
            scope.run(self._code, ns)
        if "result" not in ns:
            raise HTTPError(500, "MissingResult",
                            "the notebook's cells below the parameters cell did not set a "
                            "variable named 'result', which is the response")
        return ns["result"]

    # -- routing -------------------------------------------------------------------------
    def handle(self, req: Request) -> Response:
        """Answer one request. Never raises: every failure is a JSON error response.

        The cold flag (and ``init`` timing) goes to the instance's first *call of the
        function* (``GET /`` or ``POST /``, whatever its outcome): readiness probes on
        ``/health`` and ``/schema`` fetches must not hide the cold start from
        ``kagg monitor``.
        """
        start = time.perf_counter()
        path = req.path
        if path != "/" and path.endswith("/"):
            path = path.rstrip("/") or "/"
        method = req.method
        is_call = path == "/" and (method == "POST" or method == "GET")
        extra: Optional[dict[str, str]] = None
        try:
            if is_call:
                status, body = 200, self._invoke(req, method)
            elif path[:5] == "/jobs" and (len(path) == 5 or path[5] == "/"):
                status, body, extra = self._jobs_route(req, method, path)
            else:
                status, body = self._describe(method, path)
        except HTTPError as exc:
            status, body, extra = exc.status, _error_body(exc.type, exc.message), exc.headers
            if status >= 500:
                sys.stderr.write(f"kagg: {exc.type}: {exc.message}\n")
        except Exception as exc:  # the notebook's own code failed
            _log_exception(exc)
            status, body = 500, _error_body(type(exc).__name__, str(exc))
        except BaseException as exc:  # sys.exit(), KeyboardInterrupt... from the notebook: not the server's end
            _log_exception(exc)
            status, body = 500, _error_body(type(exc).__name__, _exit_message(exc))
        dur = (time.perf_counter() - start) * 1000.0
        cold = is_call and self._take_cold()
        headers = {
            "Content-Type": JSON_CONTENT_TYPE,
            "Server-Timing": (f"init;dur={self.init_ms:.3f}, handler;dur={dur:.3f}" if cold
                              else f"handler;dur={dur:.3f}"),
            "X-Kagg-Instance": self.instance_id,
            "X-Kagg-Cold": "1" if cold else "0",
        }
        if extra:
            headers.update(extra)
        if self.log:
            stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())  # the log is read later, by kagg logs
            sys.stderr.write(f"{stamp} kagg {method} {req.path} {status} {dur:.2f}ms\n")
        return Response(status, headers, body)

    def _invoke(self, req: Request, method: str) -> bytes:
        """``POST /`` or ``GET /``: bind, call the notebook, encode the result."""
        if method == "POST":
            values = self._binder.bind_json(_json_object(req.body))
        else:
            values = self._binder.bind_query(req.query)
        return self._encode_result(self._call(values))

    def _jobs_route(self, req: Request, method: str, path: str) -> tuple[int, bytes, Optional[dict]]:
        """``/jobs...``: the Kaggle jobs of a notebook with train cells (kagg_jobs.py, imported on
        the first such request, so ``/`` and ``/health`` never pay for it)."""
        jobs = self._jobs
        if jobs is None:
            with self._lock:
                jobs = self._jobs
                if jobs is None:
                    root = self.root or os.path.dirname(os.path.abspath(__file__))
                    if not os.path.exists(os.path.join(root, JOBS_FILE)):
                        raise HTTPError(404, "NotFound", "this function has no Kaggle jobs: /jobs needs a "
                                                         "notebook with cells tagged `train` (docs/jobs.md)")
                    import kagg_jobs

                    jobs = self._jobs = kagg_jobs.load(root, sys.modules[__name__])
        return jobs.handle(req, method, path)

    def _describe(self, method: str, path: str) -> tuple[int, bytes]:
        """Every other route: ``/health``, ``/schema``, or a 404/405."""
        if path == "/":
            raise _not_allowed(method, path, "GET, POST")
        if path == "/health" or path == "/schema":
            if method != "GET":
                raise _not_allowed(method, path, "GET")
            return 200, self._health_body if path == "/health" else self._schema_body
        raise HTTPError(404, "NotFound", f"no route {path}; use POST / or GET / to call the function, "
                                         f"GET /health or GET /schema")

    def _encode_result(self, result: Any) -> bytes:
        try:
            return encode(result)
        except TypeError as exc:
            raise HTTPError(500, "SerializationError", str(exc)) from None


def _not_allowed(method: str, path: str, allow: str) -> HTTPError:
    return HTTPError(405, "MethodNotAllowed", f"{method} is not allowed on {path}; use {allow}",
                     {"Allow": allow})


def _json_object(body: bytes) -> dict:
    if not body.strip():
        return {}
    try:
        data = _loads(body)
    except _BadValue as exc:
        raise HTTPError(400, "InvalidJSON", f"the request body cannot be used: {exc}") from None
    except ValueError as exc:  # includes UnicodeDecodeError
        raise HTTPError(400, "InvalidJSON", f"the request body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise HTTPError(400, "BadRequest",
                        f"the request body must be a JSON object of parameters, got {_json_type(data)}")
    return data


# --------------------------------------------------------------------------------------------
# Loading (the cold start)
# --------------------------------------------------------------------------------------------

_APPS: "weakref.WeakSet[App]" = weakref.WeakSet()


def _after_fork() -> None:
    """gunicorn loads the app, then forks workers: each worker is an instance of its own."""
    for app in list(_APPS):
        app._reset_instance()
    _LOOPS.__dict__.clear()  # an event loop's selector must not be shared with the parent


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)


def load(root_dir: str | os.PathLike[str], log: Optional[bool] = None) -> App:
    """Read kagg.json, run the notebook's module once and compile the request cells.

    This is the instance's initialization; its duration is reported as
    ``Server-Timing: init`` on the first response. A notebook that fails here
    has its traceback printed to stderr and the exception re-raised, so the
    process (a local deploy, a cloud instance) fails visibly.
    ``log=False`` (or ``KAGG_ACCESS_LOG=0``) turns off the per-request log line.
    """
    start = time.perf_counter()
    root = os.path.abspath(os.fspath(root_dir))
    if log is None:
        log = os.environ.get("KAGG_ACCESS_LOG", "1") not in ("0", "false", "no")
    try:
        with open(os.path.join(root, MANIFEST_FILE), "rb") as f:
            manifest = json.load(f)
        if root not in sys.path:
            sys.path.insert(0, root)  # the notebook may import vendored packages beside it
        request_code = None
        if manifest.get("mode") == "script":
            path = os.path.join(root, REQUEST_FILE)
            try:
                with open(path, encoding="utf-8") as f:
                    request_code = compile(f.read(), path, "exec")
            except FileNotFoundError:
                raise LoadError(f"script mode needs {REQUEST_FILE} in {root}") from None
        parameters = [p["name"] for p in manifest.get("parameters") or []]
        module, scope = _import_notebook(os.path.join(root, NOTEBOOK_FILE), request_code, parameters)
        app = App(manifest, module, request_code, (time.perf_counter() - start) * 1000.0, log=log,
                  scope=scope)
    except BaseException as exc:
        sys.stderr.write(f"kagg: cannot load the function in {root}:\n")
        _log_exception(exc)
        sys.stderr.flush()
        raise
    app.root = root
    _APPS.add(app)
    return app


def _import_notebook(path: str, request_code: Any = None,
                     parameters: tuple | list = ()) -> tuple[Any, Optional[_ScriptScope]]:
    """Import the notebook's module under its fixed name (pickle and dataclasses look it up).

    In script mode (``request_code`` given) the module may get a :class:`_ScriptScope`, which
    has to be in place before the module's functions are made.
    """
    import importlib.util  # usually loaded already by the platform's own bootstrap

    spec = importlib.util.spec_from_file_location(NOTEBOOK_MODULE, path)
    if spec is None or spec.loader is None:
        raise LoadError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    code = spec.loader.get_code(NOTEBOOK_MODULE)  # what exec_module runs, bytecode cache included
    namespace = vars(module)
    scope = (_ScriptScope.prepare(code, namespace, request_code, list(parameters))
             if request_code is not None else None)
    previous = sys.modules.get(NOTEBOOK_MODULE)
    sys.modules[NOTEBOOK_MODULE] = module
    try:
        exec(code, namespace)
    except BaseException:
        if previous is not None:
            sys.modules[NOTEBOOK_MODULE] = previous
        else:
            sys.modules.pop(NOTEBOOK_MODULE, None)
        raise
    if scope is not None:
        scope.hide()
    return module, scope
