"""What to probe: a registry NAME or a URL, turned into one fixed request.

The request is fixed before the run (URL, method, body), so the probe loop only signs and
sends. A name goes through the registry and its provider's ``sign()`` (private AWS
function URLs need SigV4 on every request); a URL is probed as it is, without a registry.

Credentials in a URL (``http://user:pw@host/``) are taken out of it here: they are sent as
a Basic ``Authorization`` header, and what is shown or stored (:attr:`Target.name`,
:attr:`Target.display_url`) is the URL through :func:`kagg.urls.redact_url`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Callable, Optional
from urllib.parse import urlencode, urljoin

from kagg.errors import BadInput
from kagg.model import Endpoint
from kagg.urls import is_url, redact_url, split_userinfo

Signer = Callable[[str, str, dict, bytes], dict]


@dataclass
class Target:
    """One endpoint to probe and the exact request to send to it."""

    name: str  # the registry name, or the URL (redacted: no credentials)
    url: str  # where requests go (already with /health or a query string; no userinfo)
    method: str = "GET"
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    endpoint: Optional[Endpoint] = None
    signer: Optional[Signer] = None
    preflight: dict[str, Any] = field(default_factory=dict)  # what the /schema fetch saw
    auth_headers: dict[str, str] = field(default_factory=dict)  # Basic auth from the URL's userinfo

    def __post_init__(self) -> None:
        self.url, from_userinfo = split_userinfo(self.url)
        if self.signer is None:  # a provider that signs owns the Authorization header
            self.auth_headers = {**from_userinfo, **self.auth_headers}
        if is_url(self.name):
            self.name = redact_url(self.name)

    @property
    def display_url(self) -> str:
        """The URL to show or store: credentials in the query string replaced by ``***``."""
        return redact_url(self.url)

    def request_headers(self) -> dict[str, str]:
        """Headers for one request; signed again each time (signatures carry a timestamp)."""
        if self.signer is None:
            return {**self.auth_headers, **self.headers} if self.auth_headers else self.headers
        return self.signer(self.method, self.url, dict(self.headers), self.body)

    def schema_headers(self) -> dict[str, str]:
        """Headers for ``GET /schema``: signed, or the URL's Basic auth."""
        if self.signer is None:
            return dict(self.auth_headers)
        return self.signer("GET", schema_url(self), {}, b"")



def base_url(url: str) -> str:
    return url if url.endswith("/") else url + "/"


def resolve(spec: str, registry, signer_for: Callable[[Endpoint], Optional[Signer]]) -> Target:
    """A Target for a URL or a registry name (request details are filled in by ``prepare``)."""
    if is_url(spec):
        return Target(name=spec, url=spec)
    if "://" in spec:
        raise BadInput(f"cannot probe {redact_url(spec)!r}: only http:// and https:// URLs are supported")
    endpoint = registry.get(spec)
    return Target(name=spec, url=endpoint.url, endpoint=endpoint, signer=signer_for(endpoint))


def schema_defaults(schema: dict, where: str) -> dict:
    """The request a user would send with every parameter left at its default."""
    props = schema.get("properties") or {}
    missing = [n for n in schema.get("required") or [] if "default" not in props.get(n, {})]
    if missing:
        raise BadInput(f"{where} requires {', '.join(missing)} with no default: "
                       "pass --payload '{...}' or use --health")
    return {name: prop["default"] for name, prop in props.items() if "default" in prop}


def needs_schema(payload: Optional[dict], health: bool) -> bool:
    return payload is None and not health


def schema_url(target: Target) -> str:
    return urljoin(base_url(target.url), "schema")


def prepare(target: Target, method: Optional[str], payload: Optional[dict], health: bool,
            schema: Optional[dict] = None, probe: str = "health") -> None:
    """Fix the request: ``GET /health`` (or another fixed ``probe`` path, ``jobs?limit=1`` for
    ``--jobs``), the given payload, or the defaults of ``schema``."""
    root = base_url(target.url)
    if health:
        target.url = urljoin(root, probe)
        target.method = (method or "GET").upper()
        return
    if payload is None:
        payload = schema_defaults(schema or {}, f"{target.name} (from its /schema)")
    target.method = (method or "POST").upper()
    if target.method in ("GET", "HEAD", "DELETE"):
        query = {k: v if isinstance(v, str) else json.dumps(v) for k, v in payload.items()}
        target.url = target.url + (("&" if "?" in target.url else "?") + urlencode(query) if query else "")
    else:
        target.body = json.dumps(payload, separators=(",", ":")).encode()
        target.headers = {**target.headers, "Content-Type": "application/json"}


def parse_payload(text: Optional[str]) -> Optional[dict]:
    """``--payload`` as a JSON object (or ``@file.json``)."""
    if text is None:
        return None
    if text.startswith("@"):
        try:
            with open(text[1:], encoding="utf-8") as fh:
                text = fh.read()
        except OSError as exc:
            raise BadInput(f"cannot read --payload file {text[1:]}: {exc.strerror}")
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadInput(f"--payload is not valid JSON: {exc.msg} at column {exc.colno}")
    if not isinstance(value, dict):
        raise BadInput("--payload must be a JSON object, such as '{\"x\": 1}'")
    return value


def read_schema(body: bytes) -> Optional[dict]:
    """The JSON object a ``/schema`` answered, or None if it is not one."""
    try:
        data = json.loads(body)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None
