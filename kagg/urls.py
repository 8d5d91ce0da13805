"""URLs as kagg's users give them: one test for "is this a URL", shared by every command,
and the two things to do with a URL that carries credentials: show it without them
(:func:`redact_url`) and send them as a header instead (:func:`split_userinfo`); and
:func:`http_exchange`, one request under a total deadline, which ``kagg invoke`` and the
notebook fetch share.

Standard library only, and nothing heavy: every command imports this (the HTTP modules are
imported by :func:`http_exchange` when it is first called).
"""

from __future__ import annotations

import base64
from typing import Any, Optional
from urllib.parse import unquote, unquote_plus

#: what a credential is replaced with in a URL that is shown or stored
REDACTED = "***"

#: query parameter names whose values are credentials (compared in lower case, ``-`` read as ``_``)
CREDENTIAL_PARAMS = frozenset({
    "token", "key", "sig", "signature", "password", "passwd", "pwd", "secret", "api_key", "apikey",
    "access_token", "refresh_token", "id_token", "session_token", "client_secret", "code", "auth",
    "x_amz_signature", "x_amz_credential", "x_amz_security_token",
})
#: ...and names ending in one of these (``aws_session_token``, ``subscription_key``, ``db_password``)
CREDENTIAL_SUFFIXES = ("_token", "_secret", "_password", "_signature", "_key", "apikey")


def is_url(text: str) -> bool:
    """True for an ``http://`` or ``https://`` URL (any case); False for a path, a name or a slug."""
    return isinstance(text, str) and text[:8].lower().startswith(("http://", "https://"))


def is_credential_param(name: str) -> bool:
    """True for a query parameter name that means a credential (``token``, ``sig``, ``api-key`` ...)."""
    norm = unquote_plus(name).strip().lower().replace("-", "_")
    return norm in CREDENTIAL_PARAMS or norm.endswith(CREDENTIAL_SUFFIXES)


def _split(url: str) -> tuple[str, str, str, str]:
    """``(scheme://, userinfo@ or "", host[:port], rest)``; every character of ``url`` kept.

    Done by hand rather than with urlsplit so that the rest of the URL is never re-encoded
    and a URL urlsplit refuses (a bad IPv6 host) is still redacted.
    """
    scheme_end = url.find("://")
    if scheme_end < 0:
        return "", "", "", url
    head, after = url[:scheme_end + 3], url[scheme_end + 3:]
    cut = min((i for i in (after.find(c) for c in "/?#") if i >= 0), default=len(after))
    authority, rest = after[:cut], after[cut:]
    userinfo, at, hostport = authority.rpartition("@")  # a raw "@" in a password stays in userinfo
    return head, userinfo + at, hostport, rest


def _redact_pairs(text: str) -> str:
    pieces = []
    for piece in text.split("&"):
        name, eq, value = piece.partition("=")
        pieces.append(f"{name}={REDACTED}" if eq and value and is_credential_param(name) else piece)
    return "&".join(pieces)


def redact_url(url: str) -> str:
    """``url`` fit to show or store: credentials replaced by ``***``, everything else as it was.

    * a password in the userinfo: ``http://alice:s3cret@host/`` -> ``http://alice:***@host/``
      (the user name stays, so two accounts can still be told apart);
    * a userinfo with no password is taken to be a token (``https://TOKEN@host/``):
      ``https://***@host/``;
    * the values of query (and fragment) parameters named like credentials:
      ``?token=abc&x=1`` -> ``?token=***&x=1`` (see :data:`CREDENTIAL_PARAMS`).

    Never raises; anything that is not a string is returned as it is.
    """
    if not isinstance(url, str):
        return url
    head, userinfo, hostport, rest = _split(url)
    if userinfo:
        user, colon, _password = userinfo[:-1].partition(":")
        userinfo = f"{user}:{REDACTED}@" if colon else f"{REDACTED}@"
    rest, hash_, fragment = rest.partition("#")
    path, qmark, query = rest.partition("?")
    if query:
        query = _redact_pairs(query)
    if "=" in fragment:
        fragment = _redact_pairs(fragment)
    return head + userinfo + hostport + path + qmark + query + hash_ + fragment


def split_userinfo(url: str) -> tuple[str, dict[str, str]]:
    """``(url without its userinfo, headers)``: the credentials of ``http://user:pw@host/`` as a
    Basic ``Authorization`` header (percent-escapes decoded), so they never travel in a URL
    that might be logged, and the request still authenticates. ``{}`` when there are none."""
    head, userinfo, hostport, rest = _split(url)
    if not userinfo:
        return url, {}
    user, _, password = userinfo[:-1].partition(":")
    token = base64.b64encode(f"{unquote(user)}:{unquote(password)}".encode("utf-8")).decode("ascii")
    return head + hostport + rest, {"Authorization": f"Basic {token}"}


# -- one HTTP exchange with a total deadline ------------------------------------------------------
#
# urllib's ``timeout`` bounds each socket operation, not the call: a server that sends a byte
# every second keeps a client with ``timeout=10`` waiting forever. :func:`http_exchange` runs
# the exchange in a worker thread under a deadline; when the deadline passes, the sockets it
# opened are shut down (so the worker stops too, and cleans up after itself) and the caller
# gets :class:`DeadlinePassed` at once. The modules it needs are imported on first use.

#: seconds a worker gets, after its sockets were shut down at the deadline, to clean up
_CLEANUP_SECONDS = 2.0


class DeadlinePassed(TimeoutError):
    """An exchange that had not finished when its total time ran out; ``stage`` says how far it got."""

    def __init__(self, seconds: float, stage: str):
        super().__init__(f"no complete answer within {seconds:g} s ({stage})")
        self.seconds, self.stage = seconds, stage


class _Deadline:
    """The end of one exchange, and the sockets opened under it (shut down when it passes)."""

    def __init__(self, seconds: float):
        import threading
        import time

        self._clock = time.monotonic
        self.seconds = seconds
        self.end = self._clock() + seconds
        self.passed = False
        self.sockets: list = []
        self.headers_in = False
        self.received = 0
        self._lock = threading.Lock()

    def remaining(self) -> float:
        return max(0.001, self.end - self._clock())

    def watch(self, sock) -> None:
        with self._lock:
            self.sockets.append(sock)
            if self.passed:
                _shut(sock)

    def expire(self) -> None:
        with self._lock:
            self.passed = True
            for sock in self.sockets:
                _shut(sock)

    def stage(self) -> str:
        if self.headers_in:
            return f"{self.received} bytes of the body had arrived"
        if self.sockets:
            return "connected, but the status line and headers had not all arrived"
        return "no connection was made"


def _shut(sock) -> None:
    import socket

    try:  # the plain socket's shutdown, also for a TLS socket (whose own would unwrap it)
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except OSError:  # closed already
        pass


def _watched(connection_class: type, deadline: _Deadline) -> type:
    """``connection_class`` (http.client's) whose sockets time out with the deadline and are watched."""

    class Watched(connection_class):  # type: ignore[misc, valid-type]
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            create = self._create_connection

            def create_watched(address, timeout, source_address=None):
                sock = create(address, deadline.remaining(), source_address)
                deadline.watch(sock)
                return sock

            self._create_connection = create_watched

    return Watched


def _opener(deadline: _Deadline):
    import urllib.request

    class Watching:
        def do_open(self, http_class, req, **kwargs):
            return super().do_open(_watched(http_class, deadline), req, **kwargs)

    handlers = [type("HTTPHandler", (Watching, urllib.request.HTTPHandler), {})()]
    if hasattr(urllib.request, "HTTPSHandler"):
        handlers.append(type("HTTPSHandler", (Watching, urllib.request.HTTPSHandler), {})())
    return urllib.request.build_opener(*handlers)


def http_exchange(url: str, consume, *, method: str = "GET", headers: Optional[dict[str, str]] = None,
                  body: Optional[bytes] = None, secret_headers: Optional[dict[str, str]] = None,
                  timeout: float = 60.0):
    """Send one request to ``url`` and hand the answer to ``consume(status, headers, read)``,
    all within ``timeout`` seconds; return what ``consume`` returns.

    ``consume`` runs in a worker thread and gets the status, the answer's headers (lower-case
    names) and ``read(n)``, which gives the next piece of the body (at most ``n`` bytes, ``b""``
    at its end). An error status is an answer too (no HTTPError).
    ``secret_headers`` (``Authorization`` from :func:`split_userinfo`) are not sent on to
    where a redirect points. The errors are urllib's and http.client's, as a plain
    ``urlopen`` raises them (``consume``'s own pass through), or :class:`DeadlinePassed`; a body
    cut short is ``http.client.IncompleteRead`` with ``received``, the bytes that did arrive.
    """
    import http.client
    import threading
    import urllib.error
    import urllib.request

    deadline = _Deadline(timeout)
    request = urllib.request.Request(url, data=body, headers=dict(headers or {}), method=method)
    for key, value in (secret_headers or {}).items():
        request.add_unredirected_header(key, value)
    outcome: dict[str, Any] = {}

    def exchange() -> None:
        try:
            try:
                response = _opener(deadline).open(request, timeout=deadline.remaining())
            except urllib.error.HTTPError as exc:  # an answer all the same
                response = exc
            if deadline.passed:  # headers cut short by the shut-down socket
                response.close()
                raise DeadlinePassed(timeout, deadline.stage())
            deadline.headers_in = True
            with response:
                piece = getattr(response, "read1", None) or response.read

                def read(size: int = 1 << 20) -> bytes:
                    try:
                        data = piece(size)
                    except http.client.IncompleteRead as exc:
                        exc.received = deadline.received + len(exc.partial)
                        raise
                    if deadline.passed:  # what a shut-down socket gives is no answer
                        raise DeadlinePassed(timeout, deadline.stage())
                    left = getattr(response, "length", None)
                    if not data and size and left:  # read1 does not notice a body cut short
                        exc = http.client.IncompleteRead(b"", left)
                        exc.received = deadline.received
                        raise exc
                    deadline.received += len(data)
                    return data

                status = getattr(response, "status", None) or response.code
                outcome["value"] = consume(status, {k.lower(): v for k, v in response.headers.items()}, read)
        except BaseException as exc:  # handed to the caller's thread
            outcome["error"] = exc

    worker = threading.Thread(target=exchange, name="kagg-http", daemon=True)
    worker.start()
    try:
        worker.join(deadline.remaining())
    finally:
        if worker.is_alive():  # the deadline passed, or the caller was interrupted
            deadline.expire()
            worker.join(_CLEANUP_SECONDS)
    if deadline.passed:  # whatever the worker made of the shut-down socket is not the answer
        raise DeadlinePassed(timeout, deadline.stage())
    if "value" in outcome:
        return outcome["value"]
    if isinstance(outcome["error"], TimeoutError) or _timed_out(outcome["error"]):
        raise DeadlinePassed(timeout, deadline.stage())  # a socket timeout: it is the deadline's
    raise outcome["error"]


def _timed_out(exc: BaseException) -> bool:
    return isinstance(getattr(exc, "reason", None), TimeoutError)
