"""Where Azure credentials come from: azure-identity's chain, created on first use, or an injected one.

In production :func:`default_credential` is ``DefaultAzureCredential`` (az login,
environment service principal, managed identity, ...), made lazily because
azure-identity is slow to import and probes managed identity when asked for a token.
Library users and tests pass any object with ``get_token()`` to ``AzureProvider``.
``KAGG_AZURE_TEST_TOKEN`` is a test/CI switch only (docs/azure.md): a bearer token
obtained elsewhere (e.g. ``az account get-access-token``) used as it is, so a test
run never constructs ``DefaultAzureCredential``.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any, Optional

from kagg.errors import BadInput
from kagg.providers.azure.settings import CREDENTIAL_WAYS

TEST_TOKEN_VAR = "KAGG_AZURE_TEST_TOKEN"
_lock = threading.Lock()
_default: Optional[Any] = None


class StaticTokenCredential:
    """A credential that always answers with one bearer token (the test/CI switch)."""

    def __init__(self, token: str, lifetime: int = 3600):
        self._token = token
        self._lifetime = lifetime

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        from azure.core.credentials import AccessToken

        return AccessToken(self._token, int(time.time()) + self._lifetime)

    def __repr__(self) -> str:  # never show the token
        return "StaticTokenCredential(<redacted>)"


def default_credential() -> Any:
    """The process's credential: the test switch's, else DefaultAzureCredential (made once)."""
    global _default
    token = os.environ.get(TEST_TOKEN_VAR)
    if token:
        return StaticTokenCredential(token)
    with _lock:
        if _default is None:
            try:
                from azure.identity import DefaultAzureCredential
            except ModuleNotFoundError:
                raise BadInput("the azure provider needs azure-identity, which is not installed; "
                               "run: pip install 'kagg[azure]'") from None
            _default = DefaultAzureCredential(exclude_interactive_browser_credential=True)
        return _default


def bearer(credential: Any, scope: str) -> str:
    """A bearer token for ``scope``; BadInput naming the standard ways when there is none."""
    try:
        from azure.core.exceptions import ClientAuthenticationError
    except ModuleNotFoundError:
        raise BadInput("the azure provider needs azure-core; run: pip install 'kagg[azure]'") from None
    try:
        return credential.get_token(scope).token
    except ClientAuthenticationError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BadInput(f"no usable Azure credentials ({first[:200]}); {CREDENTIAL_WAYS}") from None
