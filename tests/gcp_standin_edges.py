"""The services around the Cloud Functions API that the Google stand-in also plays.

OAuth's token endpoint (a service account's JWT grant, for access and ID
tokens), the self-signed JWTs the SDK clients send instead (checked against
the key's public half), IAM Credentials (generateAccessToken, generateIdToken),
the signed upload URL, each function's URL (which checks the caller's ID
token unless ``allUsers`` may invoke) and Cloud Logging's entries:list.
:class:`EdgeServices` is a mixin of tests/gcp_standin.py's ``GoogleStandIn``.
"""

from __future__ import annotations

import base64
import json
import re
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler
from typing import Any


def jwt_payload(token: str) -> dict:
    part = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def make_jwt(claims: dict) -> str:
    """A JWT shaped like Google's (the signature is not Google's; clients read it unverified)."""
    def enc(obj: Any) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()
    return f"{enc({'alg': 'RS256', 'typ': 'JWT', 'kid': 'standin'})}.{enc(claims)}.{enc('sig')}"



class EdgeServices:
    """Needs the stand-in's ``lock``, ``faults``, ``tokens``, ``keys``, ``uploads``, ``functions``, ``entries``,
    ``url``, ``_next`` and ``is_public``."""

    def _token(self, body: bytes):
        form = dict(urllib.parse.parse_qsl(body.decode()))
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer" or "assertion" not in form:
            return 400, {"error": "unsupported_grant_type", "error_description": "expected a JWT bearer grant"}, {}
        claims = jwt_payload(form["assertion"])
        now = int(time.time())
        if "target_audience" in claims:
            return 200, {"id_token": make_jwt({"aud": claims["target_audience"], "iss": "https://accounts.google.com",
                                               "email": claims["iss"], "sub": "1", "iat": now, "exp": now + 3600})}, {}
        token = f"ya29.standin-{self._next('t')}"
        with self.lock:
            self.tokens.add(token)
        return 200, {"access_token": token, "expires_in": 3599, "token_type": "Bearer"}, {}

    def _upload(self, h: BaseHTTPRequestHandler, path: str, body: bytes):
        """The signed URL: only ``content-type: application/zip``; an Authorization header is refused
        as Cloud Storage refuses one next to a signature."""
        obj = path[len("/upload/"):]
        if h.headers.get("Authorization"):
            return 400, b"<Error><Code>InvalidArgument</Code><Message>signed URL with Authorization</Message></Error>", \
                {"Content-Type": "application/xml"}
        if h.headers.get("Content-Type") != "application/zip":
            return 403, b"<Error><Code>SignatureDoesNotMatch</Code></Error>", {"Content-Type": "application/xml"}
        with self.lock:
            if self.faults.upload_forbidden > 0:
                self.faults.upload_forbidden -= 1
                return 403, b"<Error><Code>AccessDenied</Code></Error>", {"Content-Type": "application/xml"}
            if obj not in self.uploads:
                return 404, b"<Error><Code>NoSuchUpload</Code></Error>", {"Content-Type": "application/xml"}
            self.uploads[obj] = body
        return 200, b"", {"Content-Type": "text/plain"}

    def trust(self, key_file: str) -> None:
        """Accept self-signed JWTs of the service account in ``key_file`` (the SDK clients send those
        instead of fetching an access token, as Google allows), checking their RS256 signature."""
        from cryptography.hazmat.primitives import serialization

        info = json.loads(open(key_file).read())
        private = serialization.load_pem_private_key(info["private_key"].encode(), password=None)
        with self.lock:
            self.keys[info["client_email"]] = private.public_key()

    def _authorized(self, h: BaseHTTPRequestHandler) -> bool:
        value = h.headers.get("Authorization", "")
        if not value.startswith("Bearer "):
            return False
        token = value[7:]
        with self.lock:
            if token in self.tokens:
                return True
        return self._self_signed_ok(token)

    def _self_signed_ok(self, token: str) -> bool:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        try:
            claims = jwt_payload(token)
            head, payload, signature = token.split(".")
            raw = base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4))
        except (ValueError, IndexError):
            return False
        with self.lock:
            key = self.keys.get(claims.get("iss", ""))
        if key is None or claims.get("exp", 0) < time.time():
            return False
        try:
            key.verify(raw, f"{head}.{payload}".encode(), padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            return False
        return True

    def _iam_credentials(self, action: str, account: str, doc: dict):
        now = int(time.time())
        if action == "iam.generateIdToken":
            return 200, {"token": make_jwt({"aud": doc.get("audience"), "iss": "https://accounts.google.com",
                                            "email": account, "sub": "2", "iat": now, "exp": now + 3600})}, {}
        token = f"ya29.impersonated-{self._next('t')}"
        with self.lock:
            self.tokens.add(token)
        expire = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now + 3600))
        return 200, {"accessToken": token, "expireTime": expire}, {}

    def _entries(self, doc: dict) -> dict:
        service = re.search(r'service_name="([^"]+)"', doc.get("filter", ""))
        with self.lock:
            chosen = [e for e in self.entries if service and e["resource"]["labels"]["service_name"] == service.group(1)]
        return {"entries": chosen}

    # -- functions and operations ------------------------------------------------------------------
    def _invoke(self, h: BaseHTTPRequestHandler, seen: Any, path: str):
        fid = path.split("/")[2]
        with self.lock:
            function = next((f for n, f in self.functions.items() if n.endswith(f"/functions/{fid}")), None)
        if function is None:
            return 404, b"<html>Page not found</html>", {"Content-Type": "text/html"}
        audience = f"{self.url}/run/{fid}"
        region = function["name"].split("/")[3]
        caller = "allUsers"
        if not self.is_public(fid, region):
            value = h.headers.get("Authorization", "")
            if not value.startswith("Bearer "):
                return 403, b"<html>Your client does not have permission to get URL</html>", {"Content-Type": "text/html"}
            try:
                claims = jwt_payload(value[7:])
            except (ValueError, IndexError):
                return 401, b"<html>invalid token</html>", {"Content-Type": "text/html"}
            if claims.get("aud") not in (audience, self.url) or claims.get("exp", 0) < time.time():
                return 401, b"<html>The access token could not be verified</html>", {"Content-Type": "text/html"}
            caller = claims.get("email", "?")
        with self.lock:
            self.entries.append({"insertId": self._next("log"), "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ"),
                                 "resource": {"type": "cloud_run_revision", "labels": {"service_name": fid}},
                                 "textPayload": f"{seen.method} {path} from {caller}"})
        return 200, {"served_by": "gcp-standin", "function": fid, "caller": caller, "path": path}, {}


