"""kagg's runtime: serves a converted notebook over the endpoint contract (docs/architecture.md, "Endpoint contract").

This one file is copied into every artifact and runs on every provider, so it
uses the standard library only. A provider's entry shim turns its own request
type into a :class:`Request`, calls :meth:`App.handle` and turns the
:class:`Response` back. Everything per request is precomputed at :func:`load`
(the instance's cold start) so a request costs little more than the notebook's
own code.

Routes: ``POST /`` (JSON object body) and ``GET /?a=1`` call the function,
``GET /health`` and ``GET /schema`` describe it. Errors are JSON
``{"error": {"type": ..., "message": ...}}``; a notebook exception's traceback
goes to stderr (the function's log) only.
"""

from __future__ import annotations

import base64
import copy
import enum
import importlib.util
import json
import math
import os
import sys
import threading
import time
import weakref
from typing import Any, Callable, Optional

__all__ = ["App", "LoadError", "Request", "Response", "display", "load", "to_jsonable"]

JSON_CONTENT_TYPE = "application/json"
NOTEBOOK_MODULE = "kagg_notebook"
NOTEBOOK_FILE = "kagg_notebook.py"
REQUEST_FILE = "kagg_request.py"
MANIFEST_FILE = "kagg.json"


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
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            return float(value)
    elif type_ in _JSON_EXACT:
        if isinstance(value, _JSON_EXACT[type_]):
            return value
    else:  # an unknown type name in kagg.json: do not guess
        return value
    raise _wrong_type(name, type_, "null" if value is None else f"{_json_type(value)} {_short(value)}")


def _short(value: Any) -> str:
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _guess(text: str) -> Any:
    """A query value with no declared type: JSON if it parses, else the string itself."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def _from_text(name: str, type_: str, values: list[str]) -> Any:
    """Convert query-string values (always text) by the declared type."""
    if type_ == "list":
        if len(values) == 1 and values[0].lstrip().startswith("["):
            try:
                parsed = json.loads(values[0])
            except ValueError:
                raise _wrong_type(name, type_, f"invalid JSON {_short(values[0])}") from None
            if not isinstance(parsed, list):
                raise _wrong_type(name, type_, _json_type(parsed))
            return parsed
        return [_guess(v) for v in values]
    if len(values) != 1:
        if type_ == "any":
            return [_guess(v) for v in values]
        raise HTTPError(400, "InvalidParameter",
                        f"parameter {name!r} was given {len(values)} times; it takes one value")
    text = values[0]
    if type_ == "any":
        return _guess(text)
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
            return float(text)
        except ValueError:
            pass
    elif type_ == "bool":
        word = text.strip().lower()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
    elif type_ == "dict":
        try:
            parsed = json.loads(text)
        except ValueError:
            raise _wrong_type(name, type_, f"invalid JSON {_short(text)}") from None
        if isinstance(parsed, dict):
            return parsed
        raise _wrong_type(name, type_, _json_type(parsed))
    else:
        return text
    raise _wrong_type(name, type_, _short(text))


class _Binder:
    """Binds request values to the declared parameters, precomputed from kagg.json."""

    def __init__(self, parameters: list[dict], accepts_kwargs: bool) -> None:
        self.types = {p["name"]: p.get("type") or "any" for p in parameters}
        self.nullable = frozenset(p["name"] for p in parameters
                                  if not p.get("required") and p.get("default") is None)
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
        return base64.b64encode(bytes(obj)).decode("ascii")
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
    """JSON bytes for ``obj``; C encoder first, the sanitizing pass only when it refuses."""
    try:
        return _ENCODER.encode(obj).encode("utf-8")
    except (ValueError, TypeError):  # NaN/inf, keys JSON cannot take, or a type to_jsonable refused
        pass
    try:
        return _ENCODER.encode(_sanitize(obj)).encode("utf-8")
    except RecursionError:
        raise TypeError("the result contains a reference cycle (or nests too deeply) to convert "
                        "to JSON") from None


def _error_body(type_: str, message: str) -> bytes:
    return json.dumps({"error": {"type": type_, "message": message}}).encode("utf-8")


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


class App:
    """A loaded notebook: route, bind, call, encode, time. One per process (instance)."""

    def __init__(self, manifest: dict, module: Any, request_code: Any, init_ms: float,
                 log: bool = True) -> None:
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
            import asyncio

            result = asyncio.run(result)
        return result

    def _call_script(self, values: dict) -> Any:
        ns = dict(self._globals)
        ns.update(self._defaults)
        for name in self._mutable_defaults:  # a request must not see another's mutations
            if name not in values:
                ns[name] = copy.deepcopy(self._defaults[name])
        ns.update(values)
        exec(self._code, ns)
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
            else:
                status, body = self._describe(method, path)
        except HTTPError as exc:
            status, body, extra = exc.status, _error_body(exc.type, exc.message), exc.headers
            if status >= 500:
                sys.stderr.write(f"kagg: {exc.type}: {exc.message}\n")
        except Exception as exc:  # the notebook's own code failed
            _log_exception(exc)
            status, body = 500, _error_body(type(exc).__name__, str(exc))
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
            sys.stderr.write(f"kagg {method} {req.path} {status} {dur:.2f}ms\n")
        return Response(status, headers, body)

    def _invoke(self, req: Request, method: str) -> bytes:
        """``POST /`` or ``GET /``: bind, call the notebook, encode the result."""
        if method == "POST":
            values = self._binder.bind_json(_json_object(req.body))
        else:
            values = self._binder.bind_query(req.query)
        return self._encode_result(self._call(values))

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
        data = json.loads(body)
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
        module = _import_notebook(os.path.join(root, NOTEBOOK_FILE))
        request_code = None
        if manifest.get("mode") == "script":
            path = os.path.join(root, REQUEST_FILE)
            try:
                with open(path, encoding="utf-8") as f:
                    request_code = compile(f.read(), path, "exec")
            except FileNotFoundError:
                raise LoadError(f"script mode needs {REQUEST_FILE} in {root}") from None
        app = App(manifest, module, request_code, (time.perf_counter() - start) * 1000.0, log=log)
    except BaseException as exc:
        sys.stderr.write(f"kagg: cannot load the function in {root}:\n")
        _log_exception(exc)
        sys.stderr.flush()
        raise
    _APPS.add(app)
    return app


def _import_notebook(path: str) -> Any:
    """Import the notebook's module under its fixed name (pickle and dataclasses look it up)."""
    spec = importlib.util.spec_from_file_location(NOTEBOOK_MODULE, path)
    if spec is None or spec.loader is None:
        raise LoadError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    previous = sys.modules.get(NOTEBOOK_MODULE)
    sys.modules[NOTEBOOK_MODULE] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        if previous is not None:
            sys.modules[NOTEBOOK_MODULE] = previous
        else:
            sys.modules.pop(NOTEBOOK_MODULE, None)
        raise
    return module
