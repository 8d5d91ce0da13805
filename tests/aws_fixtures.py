"""moto in server mode behind a small proxy that records and perturbs the traffic.

boto3 is pointed at the proxy with ``AWS_ENDPOINT_URL`` (the code path a user
runs); the proxy forwards to moto and logs each call as (service, action,
mutating), so a test can say "no UpdateFunctionCode was sent" or "a dry run
sent only reads". It can also answer the next mutating calls with 429/500 or a
dropped connection, answer a chosen action with a 403 AccessDenied (or any
error) the way AWS does, or forward a request to moto and then drop the reply
("accepted but reply lost"), to exercise kagg's retry policy and its error
messages.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import logging
import os
import re
import threading
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Optional

import pytest
from loopback import LoopbackServer

from kagg.model import ConvertedFunction, Parameter, SourceInfo
from notebooks import HELLO, notebook_json  # noqa: F401  (the cloud tests import them from here too)

ACCOUNT = "123456789012"
_HOP = {"connection", "keep-alive", "transfer-encoding", "expect", "proxy-connection", "upgrade"}
_CREDENTIAL = re.compile(r"Credential=[^/]+/[^/]+/([^/]+)/([^/]+)/")


# -- what a request is --------------------------------------------------------------------------------
class _Routes:
    """Maps a REST request (method, path, query) to its operation name with botocore's own model."""

    def __init__(self) -> None:
        import botocore.session

        session = botocore.session.get_session()
        self.routes: dict[str, list[tuple[str, re.Pattern, set[str], int, str]]] = {}
        for service in ("lambda", "s3", "logs"):
            model = session.get_service_model(service)
            table = []
            for op in model.operation_names:
                http = model.operation_model(op).http
                uri = http.get("requestUri", "/")
                path, _, query = uri.partition("?")
                keys = {q.split("=")[0] for q in query.split("&") if q}
                regex = re.escape(path)
                regex = re.sub(r"\\\{[^}]+\\\+\\\}", ".+", regex)
                regex = re.sub(r"\\\{[^}]+\\\}", "[^/]+", regex)
                literal = len(re.sub(r"\{[^}]+\}", "", path))
                table.append((http.get("method", "POST"), re.compile(regex + "/?$"), keys, literal, op))
            self.routes[service] = table

    def operation(self, service: str, method: str, path: str, query: str, copy: bool = False) -> Optional[str]:
        present = {k for k, _ in urllib.parse.parse_qsl(query, keep_blank_values=True)}
        best: tuple[int, str] | None = None
        for verb, regex, keys, literal, op in self.routes.get(service, []):
            if op == "CopyObject" and not copy:  # same URI as PutObject, told apart by a header
                continue
            if verb == method and regex.match(path) and keys <= present:
                score = literal + 1000 * len(keys)
                if best is None or score > best[0]:
                    best = (score, op)
        return best[1] if best else None


@dataclass
class Seen:
    """One request the proxy saw."""

    service: str
    action: str
    method: str
    path: str
    mutating: bool
    status: int = 0
    injected: bool = False
    region: str = "?"
    #: False when the proxy answered (or dropped) the request itself and moto never saw it
    forwarded: bool = True


@dataclass
class Faults:
    """What the proxy does to the next requests."""

    mutating_failures: int = 0
    failure_status: int = 429  # 429, 500 or 0 (drop the connection)
    deny: set[str] = field(default_factory=set)  # actions answered 403 AccessDenied
    #: action -> [status, error code, message, how many times]: AWS's answer to a bad request
    reject: dict[str, list] = field(default_factory=dict)
    #: (action, region) -> [status, error code, message, how many times]: the same, in one region only
    reject_in: dict[tuple[str, str], list] = field(default_factory=dict)
    #: action -> how many times: forwarded to moto, which acts on it, then the reply is dropped
    lose_reply: dict[str, int] = field(default_factory=dict)


class FaultProxy(LoopbackServer):
    """A threaded HTTP proxy in front of moto (see the module docstring)."""

    def __init__(self, upstream: str):
        parsed = urllib.parse.urlparse(upstream)
        self.upstream = (parsed.hostname, parsed.port)
        self.log: list[Seen] = []
        self.faults = Faults()
        self.lock = threading.Lock()
        self.routes = _Routes()
        super().__init__(self._serve)

    def clear(self) -> None:
        with self.lock:
            self.log.clear()
            self.faults = Faults()

    # -- what tests read -----------------------------------------------------------------------------
    def actions(self, mutating: Optional[bool] = None) -> list[str]:
        """"service:Action" of each call forwarded or answered, in order."""
        with self.lock:
            return [f"{s.service}:{s.action}" for s in self.log
                    if mutating is None or s.mutating == mutating]

    def count(self, action: str) -> int:
        return self.actions().count(action)

    def reached_moto(self, action: str) -> int:
        """How many ``service:Action`` requests moto itself received (and so acted on)."""
        with self.lock:
            return sum(1 for s in self.log if f"{s.service}:{s.action}" == action and s.forwarded)

    # -- the proxy itself ----------------------------------------------------------------------------
    def classify(self, method: str, path: str, query: str, headers, body: bytes) -> tuple[str, str, bool]:
        match = _CREDENTIAL.search(headers.get("Authorization", ""))
        service = match.group(2) if match else "?"
        action = None
        if headers.get("Content-Type", "").startswith("application/x-www-form-urlencoded"):
            action = dict(urllib.parse.parse_qsl(body.decode("utf-8", "replace"))).get("Action")
        if action is None:
            action = (self.routes.operation(service, method, path, query, "x-amz-copy-source" in headers)
                      or f"{method} {path}")
        mutating = not action.startswith(("Get", "List", "Describe", "Head", "GET ", "HEAD ", "FilterLogEvents"))
        return service, action, mutating

    def _serve(self, h: BaseHTTPRequestHandler) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        parsed = urllib.parse.urlsplit(h.path)
        if parsed.path.startswith("/moto-api"):
            return self._forward(h, body, None)
        service, action, mutating = self.classify(h.command, parsed.path, parsed.query, h.headers, body)
        match = _CREDENTIAL.search(h.headers.get("Authorization", ""))
        seen = Seen(service, action, h.command, parsed.path, mutating, region=match.group(1) if match else "?")
        with self.lock:
            self.log.append(seen)
            inject = None
            rejection = self.faults.reject_in.get((action, seen.region)) or self.faults.reject.get(action)
            if action in self.faults.deny:
                inject = "deny"
            elif rejection is not None and rejection[3] > 0:
                rejection[3] -= 1
                inject = "reject"
            elif self.faults.lose_reply.get(action, 0) > 0:
                self.faults.lose_reply[action] -= 1
                inject = "lose"
            elif mutating and self.faults.mutating_failures > 0:
                self.faults.mutating_failures -= 1
                inject = "fail"
            if inject in ("deny", "reject", "fail"):
                seen.forwarded = False
        if inject == "lose":
            seen.injected = True
            return self._forward(h, body, seen, drop_reply=True)
        if inject == "deny":
            seen.injected, seen.status = True, 403
            return self._error(h, service, 403, "AccessDeniedException" if service == "lambda" else "AccessDenied",
                               f"User: arn:aws:iam::{ACCOUNT}:user/kagg-test is not authorized to perform: "
                               f"{service}:{action} on resource: * because no identity-based policy allows "
                               f"the {service}:{action} action")
        if inject == "reject":
            status, code, message, _ = rejection
            seen.injected, seen.status = True, status
            return self._error(h, service, status, code, message)
        if inject == "fail":
            seen.injected, seen.status = True, self.faults.failure_status
            if self.faults.failure_status == 0:  # a connection reset: no answer at all
                return self._drop(h)
            status = self.faults.failure_status
            code = {429: "TooManyRequestsException" if service == "lambda" else "Throttling"}.get(
                status, "ServiceException" if service == "lambda" else "ServiceUnavailable")
            return self._error(h, service, status, code, "Rate exceeded" if status == 429 else "Internal error")
        self._forward(h, body, seen)

    @staticmethod
    def _drop(h: BaseHTTPRequestHandler) -> None:
        """Close the connection without an answer."""
        import socket

        h.close_connection = True
        try:
            h.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _forward(self, h: BaseHTTPRequestHandler, body: bytes, seen: Optional[Seen], drop_reply: bool = False) -> None:
        conn = http.client.HTTPConnection(*self.upstream, timeout=60)
        headers = {k: v for k, v in h.headers.items() if k.lower() not in _HOP}
        conn.request(h.command, h.path, body=body if body or h.command in ("POST", "PUT", "PATCH") else None,
                     headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        conn.close()
        if seen is not None:
            seen.status = resp.status
        if drop_reply:  # moto acted on the request; its answer never reaches the client
            return self._drop(h)
        h.send_response(resp.status)
        for k, v in resp.getheaders():
            if k.lower() not in _HOP and k.lower() != "content-length":
                h.send_header(k, v)
        h.send_header("Content-Length", resp.getheader("Content-Length", str(len(data)))
                      if h.command == "HEAD" else str(len(data)))
        h.end_headers()
        if h.command != "HEAD":
            h.wfile.write(data)

    def _error(self, h: BaseHTTPRequestHandler, service: str, status: int, code: str, message: str) -> None:
        if service == "lambda" or service == "logs":
            payload = json.dumps({"Type": "User", "message": message, "Message": message}).encode()
            headers = {"Content-Type": "application/json", "x-amzn-ErrorType": code}
        elif service == "s3":
            payload = (f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>{code}</Code>"
                       f"<Message>{message}</Message><RequestId>kagg</RequestId></Error>").encode()
            headers = {"Content-Type": "application/xml"}
        else:
            payload = (f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}"
                       f"</Message></Error><RequestId>kagg</RequestId></ErrorResponse>").encode()
            headers = {"Content-Type": "text/xml"}
        h.send_response(status)
        for k, v in headers.items():
            h.send_header(k, v)
        h.send_header("Content-Length", str(len(payload)))
        h.end_headers()
        if h.command != "HEAD":
            h.wfile.write(payload)


class MotoStack:
    """moto's server and the proxy in front of it; ``url`` is what AWS_ENDPOINT_URL points at."""

    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self._env_before = os.environ.get("MOTO_IAM_LOAD_MANAGED_POLICIES")
        os.environ["MOTO_IAM_LOAD_MANAGED_POLICIES"] = "true"
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.server.start()
        host, port = self.server.get_host_and_port()
        self.moto_url = f"http://{host}:{port}"
        self.proxy = FaultProxy(self.moto_url).start()

    @property
    def url(self) -> str:
        return self.proxy.url

    def reset(self) -> None:
        """Forget every resource. Slow (moto reloads IAM's managed policies): tests use unique names instead."""
        req = urllib.request.Request(self.moto_url + "/moto-api/reset", method="POST")
        urllib.request.urlopen(req, timeout=30).read()
        self.proxy.clear()

    def forget_role(self, role: str = "kagg-lambda-role") -> None:
        """Delete a role (and detach its policies) behind kagg's back, so a test sees a fresh account."""
        iam = self.direct("iam")
        try:
            for p in iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]:
                iam.detach_role_policy(RoleName=role, PolicyArn=p["PolicyArn"])
            iam.delete_role(RoleName=role)
        except iam.exceptions.NoSuchEntityException:
            pass

    def forget_functions(self, role: str = "kagg-lambda-role") -> None:
        """Delete, behind kagg's back, every function of any region that uses ``role``: IAM roles are
        global, so a test of ``--purge-role`` must not see other tests' functions."""
        import boto3.session

        for region in boto3.session.Session().get_available_regions("lambda"):
            lam = self.direct("lambda", region)
            for page in lam.get_paginator("list_functions").paginate():
                for f in page.get("Functions", []):
                    if f.get("Role", "").endswith(f":role/{role}"):
                        lam.delete_function(FunctionName=f["FunctionName"])

    def direct(self, service: str, region: str = "us-east-1"):
        """A boto3 client that talks to moto without the proxy, so checks do not show in its log."""
        import boto3

        return boto3.client(service, region_name=region, endpoint_url=self.moto_url,
                            aws_access_key_id="testing", aws_secret_access_key="testing")

    def stop(self) -> None:
        self.proxy.stop()
        self.server.stop()
        if self._env_before is None:
            os.environ.pop("MOTO_IAM_LOAD_MANAGED_POLICIES", None)
        else:
            os.environ["MOTO_IAM_LOAD_MANAGED_POLICIES"] = self._env_before


# -- functions to deploy --------------------------------------------------------------------------------
def hello_function(name: str = "hello", source: str = HELLO, requirements: Optional[list[str]] = None) -> ConvertedFunction:
    """A handler-mode function as conversion would produce it for a two-cell notebook."""
    return ConvertedFunction(
        name=name, mode="handler", entry="handler", module_source=source, request_source=None,
        parameters=[Parameter("name", "str", "world", False, "who to greet"),
                    Parameter("times", "int", 1, False, None)],
        accepts_kwargs=False, requirements=list(requirements or []), requirements_origin="inferred",
        source=SourceInfo(path=f"{name}.ipynb", sha256=hashlib.sha256(source.encode()).hexdigest()))


# -- pytest fixtures (import them into a test module to use them) ---------------------------------
#: retry and waiter settings that keep tests fast; the policy is the same, only the waits shrink
FAST = {"retry_base": 0.01, "retry_cap": 0.05, "waiter_delay": 1}


@pytest.fixture(scope="session")
def moto_stack():
    stack = MotoStack()
    yield stack
    stack.stop()


@pytest.fixture
def aws(moto_stack, monkeypatch):
    """moto behind a cleared proxy, with AWS_ENDPOINT_URL pointing boto3 at the proxy.

    moto is shared by the whole run (a reset costs seconds): each test deploys
    functions of its own names (see ``fname``) and says which shared state it needs.
    """
    moto_stack.proxy.clear()
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_stack.url)
    yield moto_stack
    moto_stack.proxy.clear()


@pytest.fixture
def fname(request) -> str:
    """A Lambda function name unique to this test."""
    digest = hashlib.sha1(request.node.nodeid.encode()).hexdigest()[:10]
    return f"t-{digest}"


@pytest.fixture(scope="session")
def deps_cache(tmp_path_factory):
    """One dependency cache for the whole run, so a package is installed once."""
    return tmp_path_factory.mktemp("kagg-cache")
