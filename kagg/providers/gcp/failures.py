"""Google's errors as one line that says what to do.

The ones people meet (docs/gcp.md, "Errors"): an API not enabled (named, with
its ``gcloud services enable`` line), a missing permission (named), a build
that failed (its own error lines and the build log's URL), a container that
failed its health check (usually the notebook's code crashing at import),
credentials Google refuses, and an address that does not answer.
"""

from __future__ import annotations

import os
import re
from typing import Optional

from kagg.providers.gcp.retry import GCPCallFailed, http_code, status_name

#: APIs a deploy needs (Cloud Functions builds with Cloud Build, stores images in Artifact Registry
#: and runs on Cloud Run); the enable line names them all, so one command fixes a new project
NEEDED_APIS = ("cloudfunctions.googleapis.com", "cloudbuild.googleapis.com", "artifactregistry.googleapis.com",
               "run.googleapis.com", "logging.googleapis.com")

_SERVICE = re.compile(r"([a-z0-9-]+\.googleapis\.com)")
#: how Google names a missing permission, most specific first ("Permission 'x.y.z' denied on …",
#: "Caller is missing permission 'x.y.z' …", or the bare name)
_PERMISSION = (re.compile(r"[Pp]ermission '?([a-zA-Z0-9]+(?:\.[a-zA-Z0-9]+){2,})'? (?:denied|is required)"),
               re.compile(r"missing permission '?([a-zA-Z0-9]+(?:\.[a-zA-Z0-9]+){2,})"),
               re.compile(r"\b((?:iam|cloudfunctions|run|logging|storage|cloudbuild|artifactregistry)"
                          r"\.[a-zA-Z]+\.[a-zA-Z]+)\b"))
_LOG_URL = re.compile(r"https://console\.cloud\.google\.com/(?:cloud-build|logs)/\S+?(?=[.,;)]?(?:\s|$))")
_HEALTH = re.compile(r"health ?check|failed to start and listen on the port", re.I)


def api_message(exc: BaseException) -> str:
    """Google's own message, without the "GET http://…:" prefix the REST transport adds."""
    response = getattr(exc, "response", None)
    try:
        text = response.json()["error"]["message"]  # type: ignore[union-attr]
    except Exception:  # noqa: BLE001 - not a JSON error body
        text = getattr(exc, "message", None) or str(exc)
    return " ".join(str(text).split())


def enable_line(service: str, project: str) -> str:
    services = " ".join(dict.fromkeys((service, *NEEDED_APIS)))
    return f"gcloud services enable {services}" + (f" --project {project}" if project else "")


def describe(exc: BaseException, what: str, project: str, attempts: int = 1,
             gave_up: bool = False) -> Optional[GCPCallFailed]:
    """The one-line error for a failed call; None for an exception that is not Google's (a bug)."""
    import requests
    from google.api_core import exceptions as gexc
    from google.auth import exceptions as auth_exc

    tries = f" after {attempts} attempts" if attempts > 1 else ""
    if isinstance(exc, (requests.ConnectionError, requests.Timeout, auth_exc.TransportError)):
        return GCPCallFailed(f"Google Cloud call to {what} failed{tries}: cannot reach {_where(exc)}; "
                             f"{network_hint()}", "UNAVAILABLE", transient=True)
    if isinstance(exc, auth_exc.RefreshError):
        return GCPCallFailed(f"Google did not accept your credentials for {what} ({_short(exc)}); "
                             f"{CREDENTIALS_FIX}", "UNAUTHENTICATED")
    if isinstance(exc, auth_exc.GoogleAuthError):
        return GCPCallFailed(f"Google credentials cannot be used for {what} ({_short(exc)}); {CREDENTIALS_FIX}",
                             "UNAUTHENTICATED")
    if not isinstance(exc, gexc.GoogleAPICallError):
        return None
    status, message = status_name(exc) or str(http_code(exc)), api_message(exc)
    if gave_up:
        return GCPCallFailed(f"Google Cloud {what} still failing{tries} ({status}: {message}); Google may be "
                             f"throttling or unavailable, try again in a few minutes", status, transient=True)
    disabled = disabled_service(exc, message)
    if disabled:
        return GCPCallFailed(f"the {disabled} API is not enabled in project {project or '(yours)'}: enable it with "
                             f"`{enable_line(disabled, project)}`, then deploy again", "SERVICE_DISABLED")
    if isinstance(exc, gexc.PermissionDenied) or http_code(exc) == 403:
        permission = missing_permission(exc, message)
        return GCPCallFailed(f"Google refused {what}: your credentials lack the permission {permission} "
                             f"in project {project or '(yours)'}; grant a role that has it (docs/gcp.md lists "
                             f"them) or use credentials that have it", "PERMISSION_DENIED")
    if isinstance(exc, gexc.Unauthenticated):
        return GCPCallFailed(f"Google did not accept your credentials for {what} ({message}); {CREDENTIALS_FIX}",
                             "UNAUTHENTICATED")
    return GCPCallFailed(f"Google Cloud rejected {what} ({status}): {message}", status)


def disabled_service(exc: BaseException, message: str) -> Optional[str]:
    """The API's service name when the error says it is not enabled in the project."""
    if getattr(exc, "reason", None) == "SERVICE_DISABLED":
        service = (getattr(exc, "metadata", None) or {}).get("service")
        if service:
            return str(service)
    if re.search(r"has not been used in project|is disabled|SERVICE_DISABLED", message):
        found = _SERVICE.search(message)
        return found.group(1) if found else "cloudfunctions.googleapis.com"
    return None


def missing_permission(exc: BaseException, message: str) -> str:
    metadata = getattr(exc, "metadata", None) or {}
    if metadata.get("permission"):
        return str(metadata["permission"])
    for pattern in _PERMISSION:
        found = pattern.search(message)
        if found:
            return found.group(1)
    return f"(not named by Google: {message})"


def operation_failure(what: str, function_id: str, code: int, message: str, region: str,
                      project: str) -> GCPCallFailed:
    """A long-running operation that ended in an error: a failed build or a failed health check."""
    text = " ".join(message.split())
    log_url = _LOG_URL.search(text)
    where = f" (build log: {log_url.group(0)})" if log_url else ""
    if _HEALTH.search(text):
        return GCPCallFailed(f"{what}: the function built, but its container failed the health check: usually "
                             f"the notebook's code crashed at import (a missing requirement, an error in a setup "
                             f"cell) or took too long to start; see `kagg logs {function_id}`{where}: {text}",
                             "HEALTH_CHECK")
    if re.search(r"\bbuild\b", text, re.I):
        lines = _build_lines(text)
        return GCPCallFailed(f"{what}: the build failed: {lines}{where}; fix the requirements "
                             f"(requirements.txt or the notebook's %pip lines) and deploy again", "BUILD_FAILED")
    return GCPCallFailed(f"{what} failed (code {code}): {text}", str(code))


def _build_lines(text: str) -> str:
    """The build's own error lines ("ERROR: …"), or Google's message without the log URL."""
    errors = re.findall(r"ERROR: [^;]*?(?=(?:ERROR: |For more details| \[| ; |$))", text)
    shown = "; ".join(e.strip().rstrip(".") for e in errors) if errors else _LOG_URL.sub("", text).strip()
    return shown.rstrip(" .;")


CREDENTIALS_FIX = ("refresh them (`gcloud auth application-default login`) or point GOOGLE_APPLICATION_CREDENTIALS "
                   "at a service account key file")


def network_hint() -> str:
    base = os.environ.get("KAGG_GCP_API_URL")
    if base:
        return f"check that something answers there (KAGG_GCP_API_URL is {base})"
    return "check the network connection and any proxy (HTTPS_PROXY)"


def _where(exc: BaseException) -> str:
    request = getattr(exc, "request", None)
    url = getattr(request, "url", None)
    if url:
        from urllib.parse import urlsplit

        parts = urlsplit(url)
        return f"{parts.scheme}://{parts.netloc}"
    found = re.search(r"https?://[^/\s'\"]+", str(exc))
    return found.group(0) if found else "Google Cloud"


def _short(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300]
