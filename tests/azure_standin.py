"""A stand-in for Azure over real sockets: ARM, the deployment host (SCM) and the app host.

It speaks the wire protocol the management SDKs and kagg's publish speak
(cloud-apis.md, Azure): resource groups, storage accounts and containers,
Flex Consumption plans, sites with functionAppConfig, app settings, listKeys,
checkNameAvailability, deletes, async operations (``Azure-AsyncOperation`` for
plans and sites, ``Location`` for storage accounts and group deletes); then
``/api/publish`` and ``/api/deployments/latest`` with Kudu's statuses and logs.
One server answers all three under path prefixes (``/scm/{app}``, ``/site/{app}``),
which the ``KAGG_AZURE_*_URL`` templates point at.

The "remote build" installs nothing: it fails for a requirement this Python does
not have (pip's own error lines), or when told to (:attr:`AzureStandIn.fail_build`).
A successful deployment is indexed by importing ``function_app`` (tests/azure_site.py):
an import error is "0 functions loaded". Every request is logged as (host, method,
path, op, mutating) so tests can assert that a redeploy only read.
"""

from __future__ import annotations

import io
import json
import re
import secrets
import tempfile
import threading
import zipfile
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from importlib import metadata
from pathlib import Path
from typing import Any, Optional
from urllib.parse import parse_qs, urlsplit

from azure_site import AppHost
from loopback import LoopbackServer

SUB = "00000000-1111-2222-3333-444444444444"
TOKEN = "test-token-not-a-secret"
LOCATIONS = {"eastus": "East US", "westeurope": "West Europe", "northeurope": "North Europe",
             "australiaeast": "Australia East", "eastasia": "East Asia"}
P = r"/subscriptions/(?P<sub>[^/]+)"
G = P + r"/resourcegroups/(?P<rg>[^/]+)"
SA = G + r"/providers/microsoft.storage/storageaccounts/(?P<sa>[^/]+)"
W = G + r"/providers/microsoft.web"
ROUTES = [  # (method, regex on the lower-cased path, op, mutating)
    ("GET", r"/subscriptions", "subscriptions.list", False),
    ("GET", P + r"/providers/microsoft.web", "providers.get", False),
    ("POST", P + r"/providers/microsoft.web/checknameavailability", "web.checkName", False),
    ("POST", P + r"/providers/microsoft.storage/checknameavailability", "storage.checkName", False),
    ("GET", P + r"/operations/(?P<op>[^/]+)", "operation.get", False),
    ("GET", G, "groups.get", False), ("PUT", G, "groups.put", True), ("DELETE", G, "groups.delete", True),
    ("GET", G + r"/resources", "groups.resources", False),
    ("GET", SA, "storage.get", False), ("PUT", SA, "storage.put", True), ("DELETE", SA, "storage.delete", True),
    ("POST", SA + r"/listkeys", "storage.listKeys", False),
    ("GET", SA + r"/blobservices/default/containers", "containers.list", False),
    ("GET", SA + r"/blobservices/default/containers/(?P<c>[^/]+)", "containers.get", False),
    ("PUT", SA + r"/blobservices/default/containers/(?P<c>[^/]+)", "containers.put", True),
    ("DELETE", SA + r"/blobservices/default/containers/(?P<c>[^/]+)", "containers.delete", True),
    ("GET", W + r"/serverfarms/(?P<plan>[^/]+)", "plans.get", False),
    ("PUT", W + r"/serverfarms/(?P<plan>[^/]+)", "plans.put", True),
    ("DELETE", W + r"/serverfarms/(?P<plan>[^/]+)", "plans.delete", True),
    ("GET", W + r"/sites/(?P<app>[^/]+)", "sites.get", False),
    ("PUT", W + r"/sites/(?P<app>[^/]+)", "sites.put", True),
    ("DELETE", W + r"/sites/(?P<app>[^/]+)", "sites.delete", True),
    ("POST", W + r"/sites/(?P<app>[^/]+)/config/appsettings/list", "settings.list", False),
    ("PUT", W + r"/sites/(?P<app>[^/]+)/config/appsettings", "settings.put", True),
    ("POST", W + r"/sites/(?P<app>[^/]+)/host/default/listkeys", "sites.listKeys", False),
    ("GET", W + r"/sites/(?P<app>[^/]+)/functions", "functions.list", False),
]
ROUTES_RE = [(m, re.compile(rx + "$"), op, mut) for m, rx, op, mut in ROUTES]
#: Microsoft.Web rejects functionAppConfig before this api-version
MIN_WEB_API = "2023-12-01"


@dataclass
class Seen:
    host: str  # arm, scm, site
    method: str
    path: str
    op: str
    mutating: bool
    status: int = 0


class Reply(Exception):
    def __init__(self, status: int, body: Any = None, headers: Optional[dict] = None):
        super().__init__(status)
        self.status, self.body, self.headers = status, body, headers or {}


def arm_error(status: int, code: str, message: str) -> Reply:
    return Reply(status, {"error": {"code": code, "message": message}})


@dataclass
class App:
    """A site's deployments and what runs."""

    deployments: list[dict] = field(default_factory=list)
    logs: dict[str, list[dict]] = field(default_factory=dict)
    host: Optional[AppHost] = None
    key: str = field(default_factory=lambda: secrets.token_urlsafe(16))


class AzureStandIn:
    """Start with :meth:`start`; the URLs to export are :attr:`arm`, :attr:`scm`, :attr:`site`."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.log: list[Seen] = []
        self.subscriptions = [SUB]
        self.web_registered = True
        self.groups: dict[str, dict] = {}
        self.accounts: dict[tuple[str, str], dict] = {}
        self.containers: dict[tuple[str, str], set[str]] = {}
        self.plans: dict[tuple[str, str], dict] = {}
        self.sites: dict[tuple[str, str], dict] = {}
        self.settings: dict[str, dict[str, str]] = {}
        self.apps: dict[str, App] = {}
        self.operations: dict[str, int] = {}
        self.taken_sites: set[str] = set()  # app names used in someone else's subscription
        self.taken_accounts: set[str] = set()
        #: faults: op -> [status, code, message, times]; app -> build error lines; 409s before a publish
        self.fail: dict[str, list] = {}
        self.fail_build: dict[str, list[str]] = {}
        self.publish_busy = 0
        self.polls_per_operation = 1
        #: a request to publish waits until this event is set (a test kills kagg meanwhile)
        self.hold_publish: Optional[threading.Event] = None
        self.publish_arrived = threading.Event()
        self.tmp = Path(tempfile.mkdtemp(prefix="azure-standin-"))
        self._http = LoopbackServer(self.handle)
        self.base = self._http.url
        self.arm, self.scm, self.site = self.base, self.base + "/scm/{app}", self.base + "/site/{app}"

    def start(self) -> "AzureStandIn":
        self._http.start()
        return self

    def stop(self) -> None:
        self._http.stop()
        for app in self.apps.values():
            if app.host is not None:
                app.host.stop()

    # -- what tests read ---------------------------------------------------------------------------------
    def clear(self) -> None:
        with self.lock:
            self.log.clear()

    def ops(self, mutating: Optional[bool] = None, host: Optional[str] = None) -> list[str]:
        with self.lock:
            return [s.op for s in self.log if (mutating is None or s.mutating == mutating)
                    and (host is None or s.host == host)]

    def count(self, op: str) -> int:
        return self.ops().count(op)

    # -- dispatch ------------------------------------------------------------------------------------------
    def handle(self, h: BaseHTTPRequestHandler) -> None:
        url = urlsplit(h.path)
        query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        path = url.path.rstrip("/") or "/"
        seen = Seen("arm", h.command, path, "?", h.command in ("PUT", "PATCH", "DELETE"))
        try:
            if path.startswith("/scm/"):
                seen.host = "scm"
                self._auth(h)
                result = self.scm_request(h, seen, path, query, body)
            elif path.startswith("/site/"):
                seen.host, seen.op = "site", "site.call"
                result = self.site_request(h, url, path, query, body)
            else:
                self._auth(h)
                result = self.arm_request(h, seen, path, query, body)
            status, payload, headers = result if isinstance(result, tuple) else (200, result, {})
        except Reply as r:
            status, payload, headers = r.status, r.body, r.headers
        seen.status = status
        with self.lock:
            self.log.append(seen)
        raw = payload if isinstance(payload, bytes) else (b"" if payload is None else json.dumps(payload).encode())
        h.send_response(status)
        for k, v in headers.items():
            h.send_header(k, v)
        if "Content-Type" not in headers:
            h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(raw)))
        h.send_header("x-ms-request-id", secrets.token_hex(8))
        h.end_headers()
        if h.command != "HEAD":
            h.wfile.write(raw)

    @staticmethod
    def _auth(h: BaseHTTPRequestHandler) -> None:
        if h.headers.get("Authorization") != f"Bearer {TOKEN}":
            raise arm_error(401, "InvalidAuthenticationToken", "The access token is missing or invalid.")

    def arm_request(self, h: Any, seen: Seen, path: str, query: dict, body: bytes) -> Any:
        lower = path.lower()
        for method, rx, op, mutating in ROUTES_RE:
            m = rx.match(lower)
            if m and method == h.command:
                seen.op, seen.mutating = op, mutating
                break
        else:
            raise arm_error(404, "NotFound", f"no route for {h.command} {path}")
        version = query.get("api-version")
        if not version:
            raise arm_error(400, "MissingApiVersionParameter", "The api-version query parameter is required.")
        if "/microsoft.web" in lower and version < MIN_WEB_API:
            raise arm_error(400, "NoRegisteredProviderFound", f"api-version {version} is too old for Microsoft.Web")
        fault = self.fail.get(op)
        if fault and fault[3] > 0:
            fault[3] -= 1
            raise Reply(fault[0], {"error": {"code": fault[1], "message": fault[2]}}, {"Retry-After": "0.01"})
        groups = {k: (v if k != "sub" else v) for k, v in m.groupdict().items()}
        if "sub" in groups and groups["sub"] not in self.subscriptions:
            raise arm_error(404, "SubscriptionNotFound", f"The subscription '{groups['sub']}' could not be found.")
        data = json.loads(body) if body else {}
        from azure_arm import handle_arm  # the resource logic, kept apart to keep both files short

        with self.lock:
            return handle_arm(self, op, groups, data, query, path)

    # -- the deployment host ------------------------------------------------------------------------------
    def scm_request(self, h: Any, seen: Seen, path: str, query: dict, body: bytes) -> Any:
        from azure_arm import handle_scm

        if path.endswith("/api/publish") and self.hold_publish is not None:
            self.publish_arrived.set()
            self.hold_publish.wait(60)
        return handle_scm(self, h, seen, path, query, body)

    def site_request(self, h: Any, url: Any, path: str, query: dict, body: bytes) -> Any:
        parts = path.split("/", 3)
        name = parts[2]
        rest = parts[3] if len(parts) > 3 else ""
        app = self.apps.get(name)
        if app is None or app.host is None:
            raise Reply(404, b"<html>site not found</html>", {"Content-Type": "text/html"})
        if not app.host.functions:
            raise Reply(404, b"", {})
        level = app.host.functions[0]["auth_level"]
        given = h.headers.get("x-functions-key") or query.get("code")
        if level != "anonymous" and given != app.key:
            raise Reply(401, b"", {})
        headers = {k: v for k, v in h.headers.items()}
        params = {k: v for k, v in query.items()}
        answer = app.host.call(h.command, f"https://{name}.azurewebsites.net/{rest}"
                               + (f"?{url.query}" if url.query else ""), rest, headers, params, body)
        return answer["status"], answer["body"], answer["headers"]

    # -- the "remote build" -------------------------------------------------------------------------------
    def build(self, name: str, zipped: bytes) -> tuple[int, list[str], Optional[AppHost]]:
        """(Kudu status, log lines, the host when it succeeded)."""
        lines = ["Starting deployment pipeline.", "Running pip install -r requirements.txt"]
        with zipfile.ZipFile(io.BytesIO(zipped)) as z:
            names = set(z.namelist())
            reqs = z.read("requirements.txt").decode() if "requirements.txt" in names else ""
            if name in self.fail_build:
                return 3, lines + self.fail_build[name], None
            for req in reqs.splitlines():
                dist = re.split(r"[<>=!~;\[ ]", req.strip(), maxsplit=1)[0]
                if not dist or dist.startswith("#"):
                    continue
                try:
                    metadata.distribution(dist)
                except metadata.PackageNotFoundError:
                    return 3, lines + [f"ERROR: Could not find a version that satisfies the requirement {req.strip()}",
                                       f"ERROR: No matching distribution found for {dist}"], None
            folder = self.tmp / f"{name}-{secrets.token_hex(4)}"
            z.extractall(folder)
        host = AppHost(folder, self.settings.get(name, {}))
        if host.error:
            lines.append(f"Syncing triggers: error indexing function_app.py: {host.error}")
            lines.append("0 functions found")
        else:
            lines.append(f"Syncing triggers: {len(host.functions)} function(s) found")
        return 4, lines + ["Deployment successful."], host
