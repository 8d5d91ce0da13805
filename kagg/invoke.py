"""Call a deployed endpoint by registry name or URL, signed by its provider.

Uses the standard library's HTTP client so that ``kagg invoke`` starts fast;
private endpoints (e.g. AWS function URLs with ``AWS_IAM`` auth) are signed
through the provider's ``sign()``, so they are as easy to call as public ones.
"""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any, Optional, Sequence

from kagg.errors import BadInput, OperationFailed, TransientError
from kagg.model import Endpoint
from kagg.registry import Registry
from kagg.urls import is_url


@dataclass
class InvokeResult:
    """An endpoint's answer: status, headers (lower-case names), raw body and parsed JSON if any."""

    url: str
    status: int
    headers: dict[str, str]
    body: bytes
    data: Any = None

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def error_message(self) -> str:
        """The ``error.message`` of the HTTP contract, else the body's text."""
        if isinstance(self.data, dict) and isinstance(self.data.get("error"), dict):
            err = self.data["error"]
            return f"{err.get('type', 'Error')}: {err.get('message', '')}"
        text = self.body.decode("utf-8", "replace").strip().splitlines()
        return text[0][:300] if text else "(empty body)"



def resolve(target: str, registry: Optional[Registry] = None) -> tuple[str, Optional[Endpoint]]:
    """A URL as given, or the URL of the registry entry ``target``."""
    if is_url(target):
        return target, None
    endpoint = (registry or Registry()).get(target)
    return endpoint.url, endpoint


def parse_query(pairs: Sequence[str]) -> list[tuple[str, str]]:
    """``["k=v", ...]`` from ``-q k=v``; BadInput for an item without ``=``."""
    out = []
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise BadInput(f"query parameter {pair!r} is not of the form key=value")
        out.append((key, value))
    return out


def build_url(base: str, path: str = "/", query: Sequence[tuple[str, str]] = ()) -> str:
    url = base.rstrip("/") + "/" + path.lstrip("/")
    if query:
        url += ("&" if "?" in url else "?") + urllib.parse.urlencode(list(query))
    return url


def call(target: str, registry: Optional[Registry] = None, payload: Any = None,
         query: Sequence[tuple[str, str]] = (), method: Optional[str] = None, path: str = "/",
         timeout: float = 60.0, raise_for_status: bool = True) -> InvokeResult:
    """Send one request. POST with a JSON body when ``payload`` is given, else GET."""
    base, endpoint = resolve(target, registry)
    url = build_url(base, path, query)
    body = b"" if payload is None else json.dumps(payload).encode("utf-8")
    method = (method or ("POST" if payload is not None else "GET")).upper()
    headers = {"accept": "application/json", "user-agent": "kagg"}
    if payload is not None:
        headers["content-type"] = "application/json"
    if endpoint is not None:
        from kagg.providers import get_provider

        provider = get_provider(endpoint.provider, state_dir=(registry or Registry()).state_dir)
        headers = provider.sign(endpoint, method, url, headers, body)
    request = urllib.request.Request(url, data=body if method not in ("GET", "HEAD") else None,
                                     headers=headers, method=method)
    try:
        try:
            with urllib.request.urlopen(request, timeout=timeout) as resp:
                result = InvokeResult(url, resp.status, {k.lower(): v for k, v in resp.headers.items()},
                                      resp.read())
        except urllib.error.HTTPError as exc:
            result = InvokeResult(url, exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read())
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, (ConnectionResetError, BrokenPipeError, ConnectionAbortedError)):
            raise _dropped(url, exc.reason) from None  # while the request was being sent
        raise OperationFailed(f"cannot reach {url}: {exc.reason}; is the endpoint running? "
                              "(`kagg endpoints list`, `kagg logs NAME`)") from None
    except TimeoutError:
        raise OperationFailed(f"{url} did not answer within {timeout:g} s; "
                              "raise --timeout or check `kagg logs`") from None
    except (http.client.HTTPException, ConnectionError) as exc:
        raise _dropped(url, exc) from None
    try:
        result.data = json.loads(result.body) if result.body else None
    except ValueError:
        result.data = None
    if raise_for_status and not result.ok:
        raise OperationFailed(f"{url} answered {result.status}: {result.error_message()}")
    return result


#: what to look at when an endpoint misbehaves at the HTTP level
_LOG_HINT = "check the endpoint's log (`kagg logs NAME`)"


def _dropped(url: str, exc: BaseException) -> OperationFailed:
    """The one-line error for a connection the endpoint broke or an answer that is not HTTP.

    A closed or reset connection and a cut-off body are :class:`TransientError` (a restarting
    server; ``kagg batch`` tries the item again); a garbled answer is not.
    """
    if isinstance(exc, http.client.RemoteDisconnected):  # before BadStatusLine and ConnectionResetError
        return TransientError(f"the endpoint closed the connection without answering ({url}); {_LOG_HINT}")
    if isinstance(exc, http.client.IncompleteRead):
        expected = f" of {len(exc.partial) + exc.expected}" if exc.expected is not None else ""
        return TransientError(f"the endpoint closed the connection in the middle of its answer ({url}): "
                              f"{len(exc.partial)}{expected} bytes of the body arrived; {_LOG_HINT}")
    if isinstance(exc, (ConnectionResetError, ConnectionAbortedError)):
        return TransientError(f"the endpoint reset the connection without answering ({url}); {_LOG_HINT}")
    if isinstance(exc, BrokenPipeError):
        return TransientError(f"the endpoint closed the connection before the request was sent ({url}); "
                              f"{_LOG_HINT}")
    if isinstance(exc, ConnectionError):
        return TransientError(f"the connection to the endpoint broke ({url}): {exc}; {_LOG_HINT}")
    if isinstance(exc, http.client.BadStatusLine):
        line = str(exc.args[0] if exc.args else exc).strip()[:60]
        return OperationFailed(f"the endpoint did not answer with HTTP ({url}): it sent {line!r}; "
                               f"is that URL a kagg endpoint? {_LOG_HINT}")
    detail = str(exc).strip().splitlines()[0][:120] if str(exc).strip() else type(exc).__name__
    return OperationFailed(f"the endpoint sent an answer that is not valid HTTP ({url}): {detail}; {_LOG_HINT}")


def load_payload(text: Optional[str], data_file: Optional[str]) -> Any:
    """The JSON payload from a command-line argument or ``-d @file.json``; BadInput if it does not parse."""
    if data_file is not None:
        if data_file.startswith("@"):
            data_file = data_file[1:]
            try:
                text = open(data_file, encoding="utf-8").read()
            except OSError as exc:
                raise BadInput(f"cannot read payload file {data_file}: {exc.strerror}")
        else:
            text = data_file
    if text is None:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadInput(f"the payload is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})")
