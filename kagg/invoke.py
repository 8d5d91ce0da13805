"""Call a deployed endpoint by registry name or URL, signed by its provider.

Uses the standard library's HTTP client so that ``kagg invoke`` starts fast;
private endpoints (e.g. AWS function URLs with ``AWS_IAM`` auth) are signed
through the provider's ``sign()``, so they are as easy to call as public ones.

Hostile answers are bounded: ``timeout`` is the time for the whole call, however slowly
the endpoint sends (:func:`kagg.urls.http_exchange`); an answer larger than ``max_size`` is
refused after reading at most that much, unless ``output`` streams it to a file. Credentials
in a URL (``http://user:pw@host/``) are sent as Basic auth, and every URL kagg shows
(messages, :attr:`InvokeResult.url`) is redacted (:func:`kagg.urls.redact_url`).
"""

from __future__ import annotations

import http.client
import io
import json
import os
import re
import urllib.error
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from kagg.errors import BadInput, KaggError, OperationFailed, TransientError
from kagg.model import Endpoint
from kagg.registry import Registry
from kagg.urls import DeadlinePassed, http_exchange, is_url, redact_url, split_userinfo

#: the largest answer kept in memory (``--max-size``); a larger one needs ``output`` (``-o FILE``)
MAX_SIZE = 64 * 1024 * 1024
#: the most read from the connection at once
CHUNK = 1 << 20

_SIZE = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*([kmgt]?)(?:i?b)?\s*$", re.IGNORECASE)
_SCALE = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


@dataclass
class InvokeResult:
    """An endpoint's answer: status, headers (lower-case names), raw body and parsed JSON if any.

    ``url`` is the URL called, fit to show (credentials replaced by ``***``). An answer
    written to a file (``output``) has an empty ``body``, ``saved_to`` its path; ``size`` is
    the body's length either way.
    """

    url: str
    status: int
    headers: dict[str, str]
    body: bytes
    data: Any = None
    saved_to: Optional[str] = None
    size: int = 0

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

    def shown_headers(self) -> list[tuple[str, str]]:
        """The headers sorted by name, fit to print: a URL in one (``Location``) is redacted."""
        return [(key, redact_url(value) if is_url(value.strip()) else value)
                for key, value in sorted(self.headers.items())]


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


def parse_size(text: str, option: str = "--max-size") -> int:
    """``1000`` (bytes), ``64k``, ``64M``, ``1.5G`` (also ``KiB``/``KB``...: all binary, 1M = 1 MiB) -> bytes."""
    match = _SIZE.match(str(text))
    size = int(float(match.group(1)) * _SCALE[match.group(2).lower()]) if match else 0
    if not match:
        raise BadInput(f"invalid {option} {text!r}: use a number of bytes with an optional unit, "
                       "such as 500k, 64M or 1G (binary: 1M is 1 MiB)")
    if size < 1:
        raise BadInput(f"invalid {option} {text!r}: it must be at least one byte")
    return size


def format_size(size: int) -> str:
    """``64 MiB``, ``1.5 GiB``, ``2 KiB``, ``8 bytes``."""
    for unit, scale in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= scale:
            return f"{size / scale:.1f}".rstrip("0").rstrip(".") + f" {unit}"
    return f"{size} byte{'' if size == 1 else 's'}"


def build_url(base: str, path: str = "/", query: Sequence[tuple[str, str]] = ()) -> str:
    """``path`` joined onto the path of ``base``, its query string kept, ``query`` added to it:
    ``build_url("http://h/fn/?token=t", "/health", [("x", "1")])`` is ``http://h/fn/health?token=t&x=1``.
    A fragment in ``base`` is dropped (it is never sent)."""
    rest = base.partition("#")[0]
    base_path, _, base_query = rest.partition("?")
    path_part, _, path_query = path.partition("?")
    url = base_path.rstrip("/") + "/" + path_part.lstrip("/")
    queries = [q for q in (base_query, path_query, urllib.parse.urlencode(list(query)) if query else "") if q]
    return url + ("?" + "&".join(queries) if queries else "")


def call(target: str, registry: Optional[Registry] = None, payload: Any = None,
         query: Sequence[tuple[str, str]] = (), method: Optional[str] = None, path: str = "/",
         timeout: float = 60.0, raise_for_status: bool = True, max_size: int = MAX_SIZE,
         output: Optional[os.PathLike | str] = None,
         headers: Optional[dict[str, str]] = None) -> InvokeResult:
    """Send one request. POST with a JSON body when ``payload`` is given, else GET.

    ``timeout``: seconds for the whole call, from connecting to the last byte. ``max_size``:
    a successful answer larger than this is refused (OperationFailed) once that much has
    arrived; an error answer is cut there (its start is the message). ``output``: a
    successful answer is streamed to that file instead (any size; written to a temporary
    file beside it and renamed at the end, so a broken transfer leaves the old file).
    ``headers``: more request headers (signed with the rest).
    """
    base, endpoint = resolve(target, registry)
    clean_base, basic_auth = split_userinfo(base)
    url = build_url(clean_base, path, query)
    shown = redact_url(build_url(base, path, query))
    out = _output_path(output) if output is not None else None
    body = b"" if payload is None else json.dumps(payload).encode("utf-8")
    method = (method or ("POST" if payload is not None else "GET")).upper()
    extra_headers = headers or {}
    headers = {"accept": "application/json", "user-agent": "kagg"}
    headers.update({k.lower(): v for k, v in extra_headers.items()})  # e.g. Idempotency-Key (kagg jobs)
    if payload is not None:
        headers["content-type"] = "application/json"
    if endpoint is not None:
        from kagg.providers import get_provider

        provider = get_provider(endpoint.provider, state_dir=(registry or Registry()).state_dir)
        headers = provider.sign(endpoint, method, url, headers, body)
        if any(key.lower() == "authorization" for key in headers):
            basic_auth = {}  # the provider's own authentication wins

    def consume(status: int, answer_headers: dict[str, str], read: Callable[[int], bytes]) -> InvokeResult:
        if out is not None and 200 <= status < 300:
            size = _save(read, out)
            return InvokeResult(shown, status, answer_headers, b"", saved_to=str(out), size=size)
        data = _read_body(read, answer_headers, max_size, shown, cut=not 200 <= status < 300)
        return InvokeResult(shown, status, answer_headers, data, size=len(data))

    try:
        result = http_exchange(url, consume, method=method, headers=headers,
                               body=body if method not in ("GET", "HEAD") else None,
                               secret_headers=basic_auth, timeout=timeout)
    except KaggError:
        raise
    except DeadlinePassed as exc:
        raise OperationFailed(f"{shown} did not answer within {timeout:g} s ({exc.stage}); "
                              "raise --timeout or check `kagg logs`") from None
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, (ConnectionResetError, BrokenPipeError, ConnectionAbortedError)):
            raise _dropped(shown, exc.reason) from None  # while the request was being sent
        if isinstance(exc.reason, str):  # urllib's own complaints: "no host given"
            raise BadInput(f"{shown} is not a valid URL ({exc.reason})") from None
        raise OperationFailed(f"cannot reach {shown}: {exc.reason}; is the endpoint running? "
                              "(`kagg endpoints list`, `kagg logs NAME`)") from None
    except (http.client.InvalidURL, ValueError) as exc:
        what = str(exc).split(":", 1)[0].strip() or type(exc).__name__
        raise BadInput(f"{shown} is not a valid URL ({what})") from None
    except (http.client.HTTPException, ConnectionError) as exc:
        raise _dropped(shown, exc) from None
    if result.saved_to is None:
        try:
            result.data = json.loads(result.body) if result.body else None
        except ValueError:
            result.data = None
    if raise_for_status and not result.ok:
        raise OperationFailed(f"{shown} answered {result.status}: {result.error_message()}")
    return result


def _read_body(read: Callable[[int], bytes], headers: dict[str, str], limit: int, shown: str,
               cut: bool) -> bytes:
    """The body, read in pieces; past ``limit`` refused (OperationFailed) or, with ``cut``, cut there."""
    declared = headers.get("content-length", "").strip()
    if not cut and declared.isdigit() and int(declared) > limit:
        raise _too_large(shown, limit)  # known before reading any of it
    buffer, size = io.BytesIO(), 0  # its getvalue() hands over the buffer: no second copy
    while True:
        piece = read(min(CHUNK, limit + 1 - size))
        if not piece:
            break
        size += len(piece)
        if size > limit:
            if cut:
                buffer.write(piece[: len(piece) - (size - limit)])
                break
            raise _too_large(shown, limit)
        buffer.write(piece)
    return buffer.getvalue()


def _too_large(shown: str, limit: int) -> OperationFailed:
    return OperationFailed(f"the answer from {shown} is larger than {format_size(limit)}; "
                           "write it to a file with -o FILE (or raise --max-size)")


def _output_path(output: os.PathLike | str) -> Path:
    """The file to write the answer to; BadInput, before anything is sent, if it cannot be."""
    out = Path(output).expanduser()
    if out.is_dir():
        raise BadInput(f"cannot write the answer to {out}: it is a folder; give a file name")
    folder = out.parent
    if not folder.is_dir():
        raise BadInput(f"cannot write the answer to {out}: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise BadInput(f"cannot write the answer to {out}: the folder {folder} is not writable")
    return out


def _save(read: Callable[[int], bytes], out: Path) -> int:
    """Stream the body into ``out`` through a temporary file beside it; the size written.

    The temporary file is removed if anything goes wrong (a broken connection, the deadline),
    so ``out`` is the whole answer or what it was before.
    """
    try:
        mode = os.stat(out).st_mode & 0o7777
    except OSError:
        mode = None
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
    tmp = out.parent / f".{out.name}.{os.urandom(6).hex()}.tmp"
    try:
        fd = os.open(tmp, flags, 0o666)
    except OSError as exc:
        raise OperationFailed(f"cannot write the answer to {out}: {exc.strerror or exc}") from None
    size = 0
    try:
        with os.fdopen(fd, "wb") as fh:
            while True:
                piece = read(CHUNK)
                if not piece:
                    break
                try:
                    fh.write(piece)
                except OSError as exc:
                    raise OperationFailed(f"cannot write the answer to {out} after {format_size(size)}: "
                                          f"{exc.strerror or exc}") from None
                size += len(piece)
            try:
                fh.flush()
                os.fsync(fh.fileno())
                if mode is not None:
                    os.chmod(tmp, mode)
                os.replace(tmp, out)
            except OSError as exc:
                raise OperationFailed(f"cannot write the answer to {out}: {exc.strerror or exc}") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return size


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
        received = getattr(exc, "received", len(exc.partial))  # set by kagg.urls.http_exchange
        expected = f" of {received + exc.expected}" if exc.expected is not None else ""
        return TransientError(f"the endpoint closed the connection in the middle of its answer ({url}): "
                              f"{received}{expected} bytes of the body arrived; {_LOG_HINT}")
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
