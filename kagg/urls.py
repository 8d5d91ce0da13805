"""URLs as kagg's users give them: one test for "is this a URL", shared by every command,
and the two things to do with a URL that carries credentials: show it without them
(:func:`redact_url`) and send them as a header instead (:func:`split_userinfo`).

Standard library only, and nothing heavy: every command imports this.
"""

from __future__ import annotations

import base64
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
