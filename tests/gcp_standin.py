"""A Google Cloud stand-in over a real socket: Cloud Functions v2, Cloud Run IAM, OAuth and more.

kagg reaches it through ``KAGG_GCP_API_URL`` (the SDKs' ``api_endpoint``) and a
service-account key whose ``token_uri`` points at ``/token`` here. It speaks the
wire protocol of the notes (shared/notes/cloud-apis.md, "Google"): the REST
request lines the SDKs send, camelCase JSON bodies with integer enums,
long-running operations that finish after a few polls, google.rpc errors.
It also serves the upload URL it hands out, each function's URL (checking the
bearer ID token's audience unless ``allUsers`` may invoke), Cloud Logging's
entries:list and IAM Credentials' generateIdToken / generateAccessToken.

Every request is logged as a :class:`Seen` (action, mutating or not), so a test
can say "an unchanged redeploy made one read and no write". :class:`Faults`
injects 429/503/ABORTED, a failed build or health check, a permission error and
a disabled API.
"""

from __future__ import annotations

import base64
import copy
import json
import re
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any, Optional

from gcp_standin_edges import EdgeServices
from gcp_standin_faults import PROJECT_NUMBER, Faults, _error, inject
from loopback import LoopbackServer

PROJECT = "kagg-test-project"
REGIONS = ("us-central1", "us-east1", "europe-west1", "asia-northeast1")
DEFAULT_SA = f"{PROJECT_NUMBER}-compute@developer.gserviceaccount.com"
FUNCTION_TYPE = "type.googleapis.com/google.cloud.functions.v2.Function"
METADATA_TYPE = "type.googleapis.com/google.cloud.functions.v2.OperationMetadata"
EMPTY_TYPE = "type.googleapis.com/google.protobuf.Empty"

_FN = re.compile(r"^/v2/projects/([^/]+)/locations/([^/]+)/functions/([^/:]+)$")
_FNS = re.compile(r"^/v2/projects/([^/]+)/locations/([^/]+)/functions$")
_UPLOAD_URL = re.compile(r"^/v2/projects/([^/]+)/locations/([^/]+)/functions:generateUploadUrl$")
_OP = re.compile(r"^/v2/(projects/[^/]+/locations/[^/]+/operations/[^/]+)$")
_LOCATIONS = re.compile(r"^/v2/projects/([^/]+)/locations$")
_IAM = re.compile(r"^/v2/(projects/[^/]+/locations/[^/]+/services/[^/:]+):(getIamPolicy|setIamPolicy)$")
_SA = re.compile(r"^/v1/projects/-/serviceAccounts/([^/:]+):(generateIdToken|generateAccessToken)$")


@dataclass
class Seen:
    """One request the stand-in answered."""

    action: str  # "functions.get", "token", "upload.put", "invoke", …
    method: str
    path: str
    query: str
    mutating: bool
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names
    body: bytes = b""

    @property
    def line(self) -> str:
        return f"{self.method} {self.path}" + (f"?{self.query}" if self.query else "")


class GoogleStandIn(EdgeServices, LoopbackServer):
    """The stand-in server; ``url`` is what KAGG_GCP_API_URL points at."""

    def __init__(self, polls: int = 2, locations_page: int = 2):
        self.polls = polls  # how many polls an operation answers "not done" before it finishes
        self.locations_page = locations_page  # regions per page of locations.list
        self.lock = threading.RLock()
        self.log: list[Seen] = []
        self.faults = Faults()
        self.functions: dict[str, dict] = {}  # full name -> Function (camelCase JSON)
        self.operations: dict[str, dict] = {}  # name -> {"polls", "result", "error", "type"}
        self.uploads: dict[str, Optional[bytes]] = {}  # object name -> the zip PUT there
        self.policies: dict[str, dict] = {}  # Cloud Run service name -> IAM policy
        self.tokens: set[str] = set()  # access tokens handed out
        self.keys: dict[str, Any] = {}  # service account email -> public key (self-signed JWTs)
        self.entries: list[dict] = []  # Cloud Logging entries
        self._n = 0
        super().__init__(self._serve)

    def clear(self) -> None:
        with self.lock:
            self.log.clear()
            self.faults = Faults()

    # -- what tests read ---------------------------------------------------------------------------
    def actions(self, mutating: Optional[bool] = None, api_only: bool = True) -> list[str]:
        with self.lock:
            return [s.action for s in self.log if (mutating is None or s.mutating == mutating)
                    and (not api_only or s.action not in ("token", "invoke"))]

    def lines(self) -> list[str]:
        with self.lock:
            return [s.line for s in self.log]

    def function(self, function_id: str, region: str = "us-central1", project: str = PROJECT) -> Optional[dict]:
        with self.lock:
            found = self.functions.get(f"projects/{project}/locations/{region}/functions/{function_id}")
            return copy.deepcopy(found)

    def policy(self, function_id: str, region: str = "us-central1", project: str = PROJECT) -> dict:
        with self.lock:
            return copy.deepcopy(self.policies.get(f"projects/{project}/locations/{region}/services/{function_id}",
                                                   {}))

    def is_public(self, function_id: str, region: str = "us-central1") -> bool:
        return any(b.get("role") == "roles/run.invoker" and "allUsers" in b.get("members", [])
                   for b in self.policy(function_id, region).get("bindings", []))

    def uploaded(self, function_id: str, region: str = "us-central1") -> Optional[bytes]:
        fn = self.function(function_id, region) or {}
        obj = fn.get("buildConfig", {}).get("source", {}).get("storageSource", {}).get("object")
        with self.lock:
            return self.uploads.get(obj) if obj else None

    # -- the server --------------------------------------------------------------------------------
    def _next(self, prefix: str) -> str:
        with self.lock:
            self._n += 1
            return f"{prefix}-{self._n}"

    def _serve(self, h: BaseHTTPRequestHandler) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        parts = urllib.parse.urlsplit(h.path)
        path, query = parts.path, parts.query
        params = dict(urllib.parse.parse_qsl(query, keep_blank_values=True))
        action, mutating = self._classify(h.command, path)
        seen = Seen(action, h.command, path, query, mutating, headers={k.lower(): v for k, v in h.headers.items()},
                    body=body)
        with self.lock:
            self.log.append(seen)
        try:
            status, payload, headers = self._route(h, seen, path, params, body)
        except Exception as exc:  # noqa: BLE001 - a bug of the stand-in shows as a 500 with its message
            status, payload, headers = 500, _error(500, "INTERNAL", f"stand-in error: {exc!r}"), {}
        seen.status = status
        with self.lock:
            lose = self.faults.lose_reply.get(action, 0) > 0
            if lose:
                self.faults.lose_reply[action] -= 1
        if lose:  # it happened, but the client never hears so
            import socket

            h.close_connection = True
            h.connection.shutdown(socket.SHUT_RDWR)
            return
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        h.send_response(status)
        h.send_header("Content-Type", headers.pop("Content-Type", "application/json; charset=UTF-8"))
        for key, value in headers.items():
            h.send_header(key, value)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    @staticmethod
    def _classify(method: str, path: str) -> tuple[str, bool]:
        if path == "/token":
            return "token", False
        if path.startswith("/upload/"):
            return "upload.put", True
        if path.startswith("/run/"):
            return "invoke", False
        if path == "/v2/entries:list":
            return "logging.list", False
        if _SA.match(path):
            return f"iam.{_SA.match(path).group(2)}", False  # type: ignore[union-attr]
        if _LOCATIONS.match(path):
            return "locations.list", False
        if _OP.match(path):
            return "operations.get", False
        if _UPLOAD_URL.match(path):
            return "functions.generateUploadUrl", True
        if _IAM.match(path):
            verb = _IAM.match(path).group(2)  # type: ignore[union-attr]
            return f"run.services.{verb}", verb == "setIamPolicy"
        if _FNS.match(path):
            return ("functions.list" if method == "GET" else "functions.create"), method != "GET"
        if _FN.match(path):
            verb = {"GET": "get", "PATCH": "patch", "DELETE": "delete"}.get(method, method)
            return f"functions.{verb}", method != "GET"
        return f"{method} {path}", method != "GET"

    def _route(self, h: BaseHTTPRequestHandler, seen: Seen, path: str, params: dict, body: bytes):
        if seen.action == "token":
            return self._token(body)
        if seen.action == "upload.put":
            return self._upload(h, path, body)
        if seen.action == "invoke":
            return self._invoke(h, seen, path)
        if not self._authorized(h):
            return 401, _error(401, "UNAUTHENTICATED", "Request had invalid authentication credentials. "
                                                       "Expected OAuth 2 access token."), {}
        with self.lock:
            injected = inject(self.faults, seen)
        if injected is not None:
            return injected
        doc = json.loads(body) if body else {}
        if seen.action.startswith("iam."):
            return self._iam_credentials(seen.action, _SA.match(path).group(1), doc)  # type: ignore[union-attr]
        if seen.action == "logging.list":
            return 200, self._entries(doc), {}
        if seen.action == "locations.list":
            project = _LOCATIONS.match(path).group(1)  # type: ignore[union-attr]
            start, size = int(params.get("pageToken") or 0), self.locations_page  # clients must follow pages
            page = {"locations": [{"name": f"projects/{project}/locations/{r}", "locationId": r}
                                  for r in REGIONS[start:start + size]]}
            if start + size < len(REGIONS):
                page["nextPageToken"] = str(start + size)
            return 200, page, {}
        if seen.action == "operations.get":
            return self._operation(_OP.match(path).group(1))  # type: ignore[union-attr]
        if seen.action == "functions.generateUploadUrl":
            project, region = _UPLOAD_URL.match(path).groups()  # type: ignore[union-attr]
            obj = f"{self._next('upload')}.zip"
            with self.lock:
                self.uploads[obj] = None
            return 200, {"uploadUrl": f"{self.url}/upload/{obj}?GoogleAccessId=sa&Signature=x",
                         "storageSource": {"bucket": f"gcf-v2-uploads-{PROJECT_NUMBER}-{region}", "object": obj}}, {}
        if seen.action.startswith("run.services."):
            service, verb = _IAM.match(path).groups()  # type: ignore[union-attr]
            return self._iam_policy(service, verb, doc)
        if seen.action == "functions.create":
            project, region = _FNS.match(path).groups()  # type: ignore[union-attr]
            return self._create(project, region, params.get("functionId", ""), doc)
        match = _FN.match(path)
        if match:
            name = path[len("/v2/"):]
            with self.lock:
                found = self.functions.get(name)
            if found is None:
                return 404, _error(404, "NOT_FOUND", f"Resource '{name}' was not found"), {}
            if seen.action == "functions.get":
                return 200, found, {}
            if seen.action == "functions.patch":
                return self._patch(name, params.get("updateMask", ""), doc)
            if seen.action == "functions.delete":
                with self.lock:
                    del self.functions[name]
                    self.policies.pop(name.replace("/functions/", "/services/"), None)
                return 200, self._start_operation(name, None, EMPTY_TYPE, "deleteFunction"), {}
        return 404, _error(404, "NOT_FOUND", f"no route for {seen.line}"), {}

    def _start_operation(self, target: str, result: Optional[dict], rtype: str, verb: str,
                         error: Optional[dict] = None) -> dict:
        project, _, region = target.split("/")[1:4]
        name = f"projects/{project}/locations/{region}/operations/{self._next('operation')}"
        with self.lock:
            self.operations[name] = {"polls": self.polls, "result": result, "type": rtype, "error": error,
                                     "target": target, "verb": verb}
        return {"name": name, "done": False, "metadata": self._metadata(target, verb, "BUILD")}

    @staticmethod
    def _metadata(target: str, verb: str, stage: str) -> dict:
        return {"@type": METADATA_TYPE, "target": target, "verb": verb, "apiVersion": "v2",
                "stages": [{"name": 2 if stage == "BUILD" else 3, "state": 2,
                            "message": "Building function" if stage == "BUILD" else "Creating Cloud Run service"}]}

    def _operation(self, name: str):
        with self.lock:
            op = self.operations.get(name)
            if op is None:
                return 404, _error(404, "NOT_FOUND", f"Operation {name} not found"), {}
            if op["polls"] > 0:
                op["polls"] -= 1
                stage = "BUILD" if op["polls"] >= 1 else "SERVICE"
                return 200, {"name": name, "done": False, "metadata": self._metadata(op["target"], op["verb"], stage)}, {}
            answer: dict[str, Any] = {"name": name, "done": True,
                                      "metadata": {"@type": METADATA_TYPE, "target": op["target"], "verb": op["verb"]}}
            if op["error"]:
                answer["error"] = op["error"]
            else:
                result = self.functions.get(op["target"]) if op["result"] == "function" else None
                answer["response"] = {"@type": op["type"], **(copy.deepcopy(result) if result else {})}
            return 200, answer, {}

    def _finish(self, name: str, function: dict) -> Optional[dict]:
        """Fill in what GCF fills in; the error of a failed build / health check (the function is FAILED)."""
        project, _, region, _, fid = name.split("/")[1:6]
        service = function.setdefault("serviceConfig", {})
        service["service"] = f"projects/{project}/locations/{region}/services/{fid}"
        service["uri"] = f"{self.url}/run/{fid}"
        service.setdefault("serviceAccountEmail", DEFAULT_SA)
        service.setdefault("environmentVariables", {})["LOG_EXECUTION_ID"] = "true"
        service.setdefault("maxInstanceCount", 100)
        function["buildConfig"]["build"] = f"projects/{PROJECT_NUMBER}/locations/{region}/builds/{self._next('b')}"
        function["updateTime"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        function["state"] = 1
        obj = function["buildConfig"].get("source", {}).get("storageSource", {}).get("object")
        if obj is None or self.uploads.get(obj) is None:
            function["state"] = 2
            return {"code": 3, "message": f"Failed to retrieve function source code: object {obj} was not uploaded"}
        if self.faults.build_failure:
            self.faults.build_failure = False
            function["state"] = 2
            build_id = function["buildConfig"]["build"].rsplit("/", 1)[-1]
            return {"code": 3, "message": (
                "Build failed with status: FAILURE and message: ERROR: Could not find a version that satisfies "
                "the requirement nosuchpackage==9.9 (from versions: none) ERROR: No matching distribution found "
                "for nosuchpackage==9.9; Error ID: 656dcb3f. For more details see the logs at "
                f"https://console.cloud.google.com/cloud-build/builds;region={region}/{build_id}?project={PROJECT_NUMBER}.")}
        if self.faults.health_failure:
            self.faults.health_failure = False
            function["state"] = 2
            return {"code": 3, "message": (
                f"Could not create or update Cloud Run service {fid}, Container Healthcheck failed. Revision "
                f"'{fid}-00001-abc' is not ready and cannot serve traffic. The user-provided container failed to "
                "start and listen on the port defined provided by the PORT=8080 environment variable within the "
                "allocated timeout.")}
        return None

    def _create(self, project: str, region: str, function_id: str, doc: dict):
        name = f"projects/{project}/locations/{region}/functions/{function_id}"
        if not re.fullmatch(r"[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?", function_id):
            return 400, _error(400, "INVALID_ARGUMENT", f"Invalid function id {function_id!r}"), {}
        with self.lock:
            if name in self.functions:
                return 409, _error(409, "ALREADY_EXISTS", f"Function {function_id} in region {region} in project "
                                                          f"{project} already exists"), {}
            function = copy.deepcopy(doc)
            function["name"] = name
            function.setdefault("buildConfig", {})
            error = self._finish(name, function)
            self.functions[name] = function
        return 200, self._start_operation(name, "function", FUNCTION_TYPE, "create", error), {}

    def _patch(self, name: str, mask: str, doc: dict):
        if not mask:
            return 400, _error(400, "INVALID_ARGUMENT", "update_mask is required"), {}
        with self.lock:
            function = copy.deepcopy(self.functions[name])
            for path in mask.split(","):
                keys = path.split(".")
                src: Any = doc
                for k in keys:
                    src = src.get(k) if isinstance(src, dict) else None
                dst = function
                for k in keys[:-1]:
                    dst = dst.setdefault(k, {})
                if src is None:
                    dst.pop(keys[-1], None)
                else:
                    dst[keys[-1]] = copy.deepcopy(src)
            error = self._finish(name, function)
            self.functions[name] = function
        return 200, self._start_operation(name, "function", FUNCTION_TYPE, "update", error), {}

    def _iam_policy(self, service: str, verb: str, doc: dict):
        with self.lock:
            if service.replace("/services/", "/functions/") not in self.functions:
                return 404, _error(404, "NOT_FOUND", f"Resource '{service}' was not found"), {}
            policy = self.policies.setdefault(service, {"version": 1, "etag": _etag(1), "bindings": []})
            if verb == "getIamPolicy":
                return 200, {k: v for k, v in policy.items() if v}, {}
            new = doc.get("policy") or {}
            if new.get("etag") and base64.b64decode(new["etag"]) != base64.b64decode(policy["etag"]):
                return 409, _error(409, "ABORTED", "There were concurrent policy changes. Please retry the whole "
                                                   "read-modify-write with exponential backoff."), {}
            serial = int.from_bytes(base64.b64decode(policy["etag"]), "big") + 1
            stored = {"version": new.get("version", 1), "bindings": new.get("bindings", []), "etag": _etag(serial)}
            self.policies[service] = stored
            return 200, stored, {}


def _etag(serial: int) -> str:
    return base64.b64encode(serial.to_bytes(8, "big")).decode()
