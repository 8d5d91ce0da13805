"""The Azure management clients (resource, storage, web), pointed at ``KAGG_AZURE_ARM_URL``.

Every client gets kagg's retry policy (azure-core's, with backoff, Retry-After and a
total deadline; POST included, because every POST kagg sends to ARM is a read such as
listKeys or checkNameAvailability), a per-request timeout and, only when the ARM URL
is a loopback stand-in, a per-call policy that lets the bearer policy send over
http. The SDKs are imported here, on the azure code path only.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import kagg
from kagg.errors import BadInput
from kagg.providers.azure import endpoints

#: seconds to connect, and to wait for a reply, on one request
CONNECT_TIMEOUT, READ_TIMEOUT = 10, 60


@dataclass(frozen=True)
class RetrySettings:
    """How hard ARM calls are retried; tests shrink the backoff through ``options.extra``."""

    attempts: int = 6
    backoff: float = 0.8
    deadline: float = 300.0  # seconds for one call, its retries included
    poll_seconds: float = 2.0  # between polls of a long-running operation (when ARM gives no Retry-After)

    @classmethod
    def from_extra(cls, extra: dict) -> "RetrySettings":
        return cls(attempts=int(extra.get("azure_attempts", cls.attempts)),
                   backoff=float(extra.get("azure_backoff", cls.backoff)),
                   deadline=float(extra.get("azure_deadline", cls.deadline)),
                   poll_seconds=float(extra.get("azure_poll_seconds", cls.poll_seconds)))


def _require() -> None:
    try:
        import azure.mgmt.web  # noqa: F401
        import azure.mgmt.storage  # noqa: F401
        import azure.mgmt.resource  # noqa: F401
    except ModuleNotFoundError:
        raise BadInput("the azure provider needs the Azure management SDKs, which are not installed; "
                       "run: pip install 'kagg[azure]'") from None


def _policies(arm: str, retry: RetrySettings) -> dict[str, Any]:
    from azure.core.pipeline.policies import RetryPolicy, SansIOHTTPPolicy

    class ArmRetry(RetryPolicy):
        """azure-core's retry, POST included (kagg's ARM POSTs are all reads)."""

        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self._method_whitelist = frozenset(self._method_whitelist | {"POST"})

    class LoopbackHttp(SansIOHTTPPolicy):
        """Lets the bearer policy send over http; installed only for a loopback stand-in."""

        def on_request(self, request: Any) -> None:
            if endpoints.insecure_ok(request.http_request.url):
                request.context["enforce_https"] = False

    kwargs: dict[str, Any] = {
        "retry_policy": ArmRetry(retry_total=retry.attempts - 1, retry_status=retry.attempts - 1,
                                 retry_connect=min(3, retry.attempts - 1), retry_backoff_factor=retry.backoff,
                                 retry_backoff_max=30, timeout=retry.deadline),
        "polling_interval": retry.poll_seconds,
        "connection_timeout": CONNECT_TIMEOUT, "read_timeout": READ_TIMEOUT,
        "user_agent": f"kagg/{kagg.__version__}",
        "credential_scopes": [endpoints.token_scope(arm)],
    }
    if endpoints.insecure_ok(arm):
        kwargs["per_call_policies"] = [LoopbackHttp()]
    return kwargs


class Clients:
    """The three management clients of one subscription, made on first use and shared by threads."""

    def __init__(self, credential: Any, subscription: str, retry: RetrySettings):
        _require()
        self.credential = credential
        self.subscription = subscription
        self.arm = endpoints.arm_url()
        self._kwargs = _policies(self.arm, retry)
        self._lock = threading.Lock()
        self._made: dict[str, Any] = {}

    def _client(self, kind: str) -> Any:
        with self._lock:
            if kind not in self._made:
                if kind == "resource":
                    from azure.mgmt.resource.resources import ResourceManagementClient as C
                elif kind == "storage":
                    from azure.mgmt.storage import StorageManagementClient as C  # type: ignore[no-redef]
                else:
                    from azure.mgmt.web import WebSiteManagementClient as C  # type: ignore[no-redef]
                self._made[kind] = C(self.credential, self.subscription, base_url=self.arm, **self._kwargs)
            return self._made[kind]

    @property
    def resource(self) -> Any:
        return self._client("resource")

    @property
    def storage(self) -> Any:
        return self._client("storage")

    @property
    def web(self) -> Any:
        return self._client("web")

    def get_json(self, path: str) -> Any:
        """A GET of an ARM path kagg has no SDK operation for (``/subscriptions``), as JSON."""
        from azure.core.rest import HttpRequest

        from kagg.providers.azure.errors import raise_for

        response = self.resource.send_request(HttpRequest("GET", self.arm + path))
        if response.status_code >= 400:
            raise_for(response, f"GET {path.split('?')[0]}")
        return response.json()
