"""Calling a private function: a bearer ID token whose audience is the function's URL.

Cloud Run accepts a Google-signed ID token of a caller that has
roles/run.invoker. A service account key file mints one offline-signed
assertion and exchanges it at its ``token_uri``; impersonation asks IAM
Credentials' ``generateIdToken`` for one (from any credentials, a user's
too). A user's own application default credentials cannot mint one: then
the error says what to do. Tokens are cached per audience until shortly
before they expire.
"""

from __future__ import annotations

import json
import os
import threading
import time
from typing import Any, Optional

from kagg.errors import BadInput
from kagg.providers.gcp.clients import iam_credentials_url, shared
from kagg.providers.gcp.retry import RetryPolicy, call

#: an account to impersonate when signing (``kagg invoke`` has no flag of its own for it)
IMPERSONATE_ENV = "KAGG_GCP_IMPERSONATE"
_tokens: dict[tuple[str, str, str], tuple[str, float]] = {}
_lock = threading.Lock()


def cannot_mint(kind: str, audience: str) -> BadInput:
    return BadInput(f"your Google credentials ({kind.replace('_', ' ')}) cannot mint the ID token a private "
                    f"function needs (audience {audience}); deploy or invoke with a service account to impersonate "
                    f"(`--impersonate SA@PROJECT.iam.gserviceaccount.com` at deploy, or {IMPERSONATE_ENV}=SA; "
                    f"you need roles/iam.serviceAccountTokenCreator on it), or point GOOGLE_APPLICATION_CREDENTIALS "
                    f"at a service account key file")


def audience_of(url: str) -> str:
    """The function's URL without path or query: the audience Cloud Run checks."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def id_token(audience: str, impersonate: Optional[str] = None, policy: Optional[RetryPolicy] = None) -> str:
    """An ID token for ``audience``, from the key file, by impersonation, or a one-line refusal."""
    policy = policy or RetryPolicy.from_extra({})
    impersonate = impersonate or os.environ.get(IMPERSONATE_ENV) or None
    key = (audience, impersonate or "", os.environ.get("GOOGLE_APPLICATION_CREDENTIALS", ""))
    with _lock:
        cached = _tokens.get(key)
        if cached and cached[1] - 60 > time.time():
            return cached[0]
    if impersonate:
        token = _impersonated(audience, impersonate, policy)
    else:
        token = _from_key_file(audience, policy)
    with _lock:
        _tokens[key] = (token, _expiry(token))
    return token


def _from_key_file(audience: str, policy: RetryPolicy) -> str:
    from google.auth.transport.requests import Request
    from google.oauth2 import service_account

    found = shared().found  # BadInput when there are no credentials at all
    path = os.environ.get("GOOGLE_APPLICATION_CREDENTIALS")
    if found.kind != "service_account" or not path:
        raise cannot_mint(found.kind, audience)
    credentials = service_account.IDTokenCredentials.from_service_account_file(path, target_audience=audience)
    call(credentials.refresh, policy, f"mint an ID token for {audience}", sdk=False, request=Request())
    return credentials.token


def _impersonated(audience: str, account: str, policy: RetryPolicy) -> str:
    session = shared().session  # the caller's own credentials; IAM Credentials mints for ``account``
    url = f"{iam_credentials_url()}/v1/projects/-/serviceAccounts/{account}:generateIdToken"

    def post() -> Any:
        answer = session.post(url, json={"audience": audience, "includeEmail": True},
                              timeout=(10, policy.call_timeout))
        if answer.status_code == 429 or answer.status_code >= 500:
            import requests

            raise requests.ConnectionError(f"{answer.status_code} from {url}")
        return answer

    answer = call(post, policy, f"mint an ID token as {account}", sdk=False)
    if answer.status_code != 200:
        raise BadInput(f"IAM Credentials refused an ID token as {account} ({answer.status_code}: "
                       f"{' '.join(answer.text.split())[:200]}); you need roles/iam.serviceAccountTokenCreator "
                       f"on that service account (permission iam.serviceAccounts.getOpenIdToken)")
    return answer.json()["token"]


def _expiry(token: str) -> float:
    """The token's ``exp`` (unverified: it is ours, only its lifetime is read)."""
    import base64

    try:
        payload = token.split(".")[1]
        return float(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["exp"])
    except (IndexError, ValueError, KeyError):
        return time.time() + 300
