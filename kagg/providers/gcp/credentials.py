"""Google credentials: the standard chain, the project they name, and impersonation.

A key file named by ``GOOGLE_APPLICATION_CREDENTIALS`` is loaded directly;
otherwise ``google.auth.default()`` walks the chain (gcloud's application
default credentials, then the metadata server). ``--impersonate SA`` wraps
whatever was found in short-lived credentials of that service account
(the caller needs roles/iam.serviceAccountTokenCreator on it). Nothing here
is ever written to the registry or a log: only the service account's email.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Optional

from kagg.errors import BadInput

SCOPES = ["https://www.googleapis.com/auth/cloud-platform"]
#: environment variables, in gcloud's order, that name a project when the credentials do not
PROJECT_ENV = ("GOOGLE_CLOUD_PROJECT", "GCLOUD_PROJECT", "CLOUDSDK_CORE_PROJECT")
CREDENTIAL_WAYS = ("run `gcloud auth application-default login`, or point GOOGLE_APPLICATION_CREDENTIALS at a "
                   "service account key file")
NO_CREDENTIALS = "no Google Cloud credentials found; " + CREDENTIAL_WAYS
NO_PROJECT = ("no Google Cloud project chosen; pass --project, set GOOGLE_CLOUD_PROJECT, or run "
              "`gcloud config set project PROJECT`")


@dataclass
class Found:
    """Credentials and what they tell: their project (None: they name none) and their kind."""

    credentials: Any
    project: Optional[str]
    kind: str  # "service_account", "impersonated", "authorized_user", or the class's name


def load(impersonate: Optional[str] = None) -> Found:
    """The chain's credentials (impersonating ``impersonate`` when given); BadInput when none."""
    try:
        import google.auth
        from google.auth import exceptions as auth_exc
    except ModuleNotFoundError:
        raise BadInput("the gcp provider needs google-cloud-functions and google-auth, which are not installed; "
                       "run: pip install 'kagg[gcp]'") from None
    path = os.environ.get("GOOGLE_APPLICATION_CREDENTIALS")
    try:
        if path:
            credentials, project = from_file(path)
        else:
            credentials, project = google.auth.default(scopes=SCOPES)
    except auth_exc.DefaultCredentialsError as exc:
        if path:
            raise BadInput(f"GOOGLE_APPLICATION_CREDENTIALS names {path}, which cannot be used "
                           f"({' '.join(str(exc).split())[:200]}); {CREDENTIAL_WAYS}") from None
        raise BadInput(NO_CREDENTIALS) from None
    project = project or next((os.environ[v] for v in PROJECT_ENV if os.environ.get(v)), None)
    found = Found(credentials, project, kind_of(credentials))
    if impersonate:
        found = Found(impersonated(credentials, impersonate), project, "impersonated")
    return found


def from_file(path: str) -> tuple[Any, Optional[str]]:
    """A key file by its type (service account or a user's), so only those two kinds are loaded from
    it directly; any other kind (external accounts) goes through google-auth's general loader."""
    import json
    import warnings

    import google.auth
    from google.auth import exceptions as auth_exc

    try:
        with open(path, encoding="utf-8") as fh:
            info = json.load(fh)
    except (OSError, ValueError) as exc:
        raise auth_exc.DefaultCredentialsError(f"cannot read it as JSON: {exc}") from None
    kind = info.get("type") if isinstance(info, dict) else None
    if kind == "service_account":
        from google.oauth2 import service_account

        try:
            return service_account.Credentials.from_service_account_info(info, scopes=SCOPES), info.get("project_id")
        except (ValueError, KeyError) as exc:
            raise auth_exc.DefaultCredentialsError(f"not a usable service account key: {exc}") from None
    if kind == "authorized_user":
        from google.oauth2 import credentials as user

        try:
            return user.Credentials.from_authorized_user_info(info, scopes=SCOPES), None
        except ValueError as exc:
            raise auth_exc.DefaultCredentialsError(f"not usable user credentials: {exc}") from None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return google.auth.load_credentials_from_file(path, scopes=SCOPES)


def kind_of(credentials: Any) -> str:
    from google.oauth2 import service_account

    if isinstance(credentials, service_account.Credentials):
        return "service_account"
    name = type(credentials).__module__ + "." + type(credentials).__name__
    if name.startswith("google.oauth2.credentials"):
        return "authorized_user"
    if "impersonated" in name:
        return "impersonated"
    return type(credentials).__name__


def impersonated(source: Any, service_account: str) -> Any:
    """Credentials of ``service_account`` minted from ``source`` through IAM Credentials."""
    from google.auth import impersonated_credentials

    from kagg.providers.gcp.clients import iam_credentials_url

    return impersonated_credentials.Credentials(
        source_credentials=source, target_principal=service_account, target_scopes=SCOPES, lifetime=3600,
        iam_endpoint_override=f"{iam_credentials_url()}/v1/projects/-/serviceAccounts/{service_account}"
                              f":generateAccessToken")
