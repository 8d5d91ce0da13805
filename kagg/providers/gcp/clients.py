"""The SDK clients, pointed at Google or (for tests and air-gapped mirrors) at one base URL.

``KAGG_GCP_API_URL`` is the single seam: when it is set, Cloud Functions,
Cloud Run, Cloud Logging and IAM Credentials are all reached at that base
(``client_options.api_endpoint`` for the SDK clients; an ``http://`` base is
taken as plain HTTP, anything without a scheme as HTTPS). Unset, each
service uses Google's own host. Clients are made once per process, per
environment and impersonated account, and shared by threads (a batch).
"""

from __future__ import annotations

import hashlib
import os
import threading
from typing import Any, Optional

API_ENV = "KAGG_GCP_API_URL"
_ALSO = ("GOOGLE_APPLICATION_CREDENTIALS", "CLOUDSDK_CONFIG", "HOME", *(
    "GOOGLE_CLOUD_PROJECT", "GCLOUD_PROJECT", "CLOUDSDK_CORE_PROJECT"))
MAX_CACHED = 16

_lock = threading.RLock()
_cache: dict[str, "Clients"] = {}


def api_base() -> Optional[str]:
    value = os.environ.get(API_ENV, "").strip().rstrip("/")
    return value or None


def iam_credentials_url() -> str:
    return api_base() or "https://iamcredentials.googleapis.com"


def logging_url() -> str:
    return api_base() or "https://logging.googleapis.com"


class Clients:
    """The credentials found and the clients made with them."""

    def __init__(self, impersonate: Optional[str]):
        from kagg.providers.gcp import credentials

        self.found = credentials.load(impersonate)
        self._functions: Any = None
        self._run: Any = None
        self._session: Any = None
        #: project -> the regions the API lists for it (a batch of new endpoints asks once)
        self.regions: dict[str, list[str]] = {}

    def _options(self) -> Any:
        base = api_base()
        return {"api_endpoint": base} if base else None

    @property
    def functions(self) -> Any:
        """A ``functions_v2.FunctionServiceClient`` over REST."""
        with _lock:
            if self._functions is None:
                from google.cloud import functions_v2

                self._functions = functions_v2.FunctionServiceClient(
                    transport="rest", credentials=self.found.credentials, client_options=self._options())
            return self._functions

    @property
    def run(self) -> Any:
        """A ``run_v2.ServicesClient`` over REST (the function's Cloud Run service: its IAM policy)."""
        with _lock:
            if self._run is None:
                from google.cloud import run_v2

                self._run = run_v2.ServicesClient(transport="rest", credentials=self.found.credentials,
                                                  client_options=self._options())
            return self._run

    @property
    def session(self) -> Any:
        """An authorized requests session, for the REST calls with no SDK here (logging, IAM credentials)."""
        with _lock:
            if self._session is None:
                from google.auth.transport.requests import AuthorizedSession

                self._session = AuthorizedSession(self.found.credentials)
            return self._session


def environment_key(impersonate: Optional[str]) -> str:
    items = sorted((k, v) for k, v in os.environ.items() if k.startswith("KAGG_GCP") or k in _ALSO)
    return hashlib.sha256(repr((items, impersonate)).encode()).hexdigest()


def shared(impersonate: Optional[str] = None) -> Clients:
    """The credentials and clients for this environment, made on first use."""
    key = environment_key(impersonate)
    with _lock:
        found = _cache.get(key)
        if found is None:
            found = _cache[key] = Clients(impersonate)
            while len(_cache) > MAX_CACHED:
                _cache.pop(next(iter(_cache)))
        return found


def forget() -> None:
    with _lock:
        _cache.clear()
