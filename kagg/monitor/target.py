"""What to probe: a registry NAME or a URL, turned into one fixed request.

The request is fixed before the run (URL, method, body), so the probe loop only signs and
sends. A name goes through the registry and its provider's ``sign()`` (private AWS
function URLs need SigV4 on every request); a URL is probed as it is, without a registry.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Callable, Optional
from urllib.parse import urlencode, urljoin

from kagg.errors import BadInput, OperationFailed
from kagg.model import Endpoint
from kagg.urls import is_url

Signer = Callable[[str, str, dict, bytes], dict]


@dataclass
class Target:
    """One endpoint to probe and the exact request to send to it."""

    name: str  # the registry name, or the URL itself
    url: str  # where requests go (already with /health or a query string)
    method: str = "GET"
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    endpoint: Optional[Endpoint] = None
    signer: Optional[Signer] = None
    preflight: dict[str, Any] = field(default_factory=dict)  # what the /schema fetch saw

    def request_headers(self) -> dict[str, str]:
        """Headers for one request; signed again each time (signatures carry a timestamp)."""
        if self.signer is None:
            return self.headers
        return self.signer(self.method, self.url, dict(self.headers), self.body)



def base_url(url: str) -> str:
    return url if url.endswith("/") else url + "/"


def resolve(spec: str, registry, signer_for: Callable[[Endpoint], Optional[Signer]]) -> Target:
    """A Target for a URL or a registry name (request details are filled in by ``prepare``)."""
    if is_url(spec):
        return Target(name=spec, url=spec)
    if "://" in spec:
        raise BadInput(f"cannot probe {spec!r}: only http:// and https:// URLs are supported")
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
            schema: Optional[dict] = None) -> None:
    """Fix the request: ``GET /health``, the given payload, or the defaults of ``schema``."""
    root = base_url(target.url)
    if health:
        target.url = urljoin(root, "health")
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
        target.headers = {"Content-Type": "application/json"}


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


def check_schema(data: Any, target: Target) -> dict:
    if not isinstance(data, dict):
        raise OperationFailed(f"{target.name}: /schema did not return a JSON object; "
                              "pass --payload or use --health")
    return data
