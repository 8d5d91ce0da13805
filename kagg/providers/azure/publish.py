"""The one-deploy publish on the app's deployment host (Flex Consumption has no zipdeploy).

``POST {scm}/api/publish?RemoteBuild=true`` with the zip and a bearer token (no
basic auth on Flex), then ``GET {scm}/api/deployments/latest`` about once a
second until the deployment succeeds (status 4) or fails (3 failed, 5 conflict,
6 partial, -1 cancelled); on failure the deployment's log lines are the error.
409 (another deployment is running), 429 and 5xx are retried with backoff and
jitter (tenacity). The token goes only to the configured SCM URL, which
:mod:`.endpoints` allows over plain http for a loopback stand-in alone.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any, Callable, Optional

import kagg
from kagg.errors import DeployFailed, OperationFailed, TransientError

SUCCESS, FAILED, CONFLICT, PARTIAL, CANCELLED = 4, 3, 5, 6, -1
TERMINAL = {SUCCESS: "succeeded", FAILED: "failed", CONFLICT: "was superseded by another deployment",
            PARTIAL: "partly succeeded", CANCELLED: "was cancelled"}
_RETRY_STATUS = {409, 429, 500, 502, 503, 504}
_ERROR_LINE = re.compile(r"error|exception|failed|cannot|could not|no module|not found", re.I)
UPLOAD_TIMEOUT = (10, 600)  # connect, read: the zip may be large and the host slow to accept it
READ_TIMEOUT = (10, 60)


@dataclass(frozen=True)
class PublishSettings:
    attempts: int = 8
    backoff: float = 1.0
    poll_seconds: float = 1.0
    deadline: float = 1800.0  # the whole deployment, remote build included

    @classmethod
    def from_extra(cls, extra: dict) -> "PublishSettings":
        return cls(attempts=int(extra.get("azure_attempts", cls.attempts)),
                   backoff=float(extra.get("azure_backoff", cls.backoff)),
                   poll_seconds=float(extra.get("azure_deploy_poll_seconds", cls.poll_seconds)),
                   deadline=float(extra.get("azure_deploy_deadline", cls.deadline)))


class BuildFailed(DeployFailed):
    """The deployment failed on Azure's side (remote build); the app keeps its previous package."""


class _Retry(Exception):
    """A reply worth asking again (409 a deployment in progress, 429, 5xx)."""

    def __init__(self, status: int, text: str):
        super().__init__(f"{status} {text[:200]}")
        self.status = status


class DeploymentHost:
    """The deployment endpoints of one app, reached with one bearer token."""

    def __init__(self, scm: str, token: str, app: str, settings: PublishSettings):
        import requests

        self.scm, self.app, self.settings = scm, app, settings
        self.session = requests.Session()
        self.session.headers.update({"Authorization": f"Bearer {token}", "User-Agent": f"kagg/{kagg.__version__}"})

    def _send(self, method: str, url: str, what: str, **kwargs: Any) -> Any:
        """One request, retried for transient answers and dropped connections."""
        import requests
        from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, stop_after_delay
        from tenacity import wait_exponential_jitter

        def once() -> Any:
            response = self.session.request(method, url, **kwargs)
            if response.status_code in _RETRY_STATUS:
                raise _Retry(response.status_code, response.text)
            return response

        try:
            for attempt in Retrying(stop=stop_after_attempt(self.settings.attempts) | stop_after_delay(300),
                                    wait=wait_exponential_jitter(initial=self.settings.backoff, max=20),
                                    retry=retry_if_exception_type((_Retry, requests.ConnectionError,
                                                                   requests.Timeout)), reraise=True):
                with attempt:
                    response = once()
        except _Retry as exc:
            busy = " (another deployment is in progress)" if exc.status == 409 else ""
            raise TransientError(f"{what} on {self.app} kept failing{busy}: {exc}; try again later") from None
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise TransientError(f"{what}: the deployment host of {self.app} could not be reached "
                                 f"({type(exc).__name__}); check the network (or KAGG_AZURE_SCM_URL)") from None
        if response.status_code in (401, 403):
            raise OperationFailed(f"{what}: the deployment host of {self.app} refused the token "
                                  f"({response.status_code}); the identity needs Website Contributor (or Contributor) "
                                  "on the function app")
        if response.status_code == 404:
            raise OperationFailed(f"{what}: the deployment host of {self.app} answered 404; on Flex Consumption this "
                                  "often hides a deployment storage error (the app cannot reach its container): "
                                  "check the DEPLOYMENT_STORAGE_CONNECTION_STRING app setting")
        if response.status_code >= 400:
            raise OperationFailed(f"{what} on {self.app} failed ({response.status_code}): {response.text[:200]}")
        return response

    def publish(self, zip_bytes: bytes) -> None:
        self._send("POST", f"{self.scm}/api/publish?RemoteBuild=true&Deployer=kagg", "the upload",
                   data=zip_bytes, headers={"Content-Type": "application/zip", "If-Match": "*"},
                   timeout=UPLOAD_TIMEOUT)

    def latest(self) -> dict:
        return self._send("GET", f"{self.scm}/api/deployments/latest", "reading the deployment",
                          timeout=READ_TIMEOUT).json()

    def follow(self, progress: Callable[[str], None], sleep: Callable[[float], None] = time.sleep) -> dict:
        """Poll the latest deployment until it ends; DeployFailed with its log lines unless it succeeded."""
        deadline = time.monotonic() + self.settings.deadline
        said = None
        while True:
            found = self.latest()
            status = found.get("status")
            text = found.get("status_text") or found.get("progress") or ""
            if status in TERMINAL:
                break
            if text and text != said:
                progress(f"{self.app}: {text}")
                said = text
            if time.monotonic() > deadline:
                raise OperationFailed(f"the deployment of {self.app} did not finish in {self.settings.deadline:.0f} s "
                                      f"(last status {status}: {text}); see the Deployment Center in the Azure portal")
            sleep(self.settings.poll_seconds)
        if status == SUCCESS:
            return found
        lines = self.error_lines(found)
        shown = " | ".join(lines) if lines else (text or "no log lines")
        raise BuildFailed(f"the remote build of {self.app} {TERMINAL[status]}: {shown}; fix requirements.txt "
                          "(or the notebook's imports) and deploy again")

    def log_lines(self, deployment: dict) -> list[str]:
        """Every message of the deployment's log, details included (only from this same host)."""
        ident = deployment.get("id")
        if not ident:
            return []
        entries = self._send("GET", f"{self.scm}/api/deployments/{ident}/log", "reading the deployment log",
                             timeout=READ_TIMEOUT).json() or []
        lines: list[str] = []
        for entry in entries:
            lines.append(str(entry.get("message") or "").strip())
            details = entry.get("details_url")
            if details and str(details).startswith(self.scm + "/"):
                for sub in self._send("GET", details, "reading the deployment log",
                                      timeout=READ_TIMEOUT).json() or []:
                    lines.append(str(sub.get("message") or "").strip())
        return [line for line in lines if line]

    def error_lines(self, deployment: dict, limit: int = 5) -> list[str]:
        lines = self.log_lines(deployment)
        errors = [line for line in lines if _ERROR_LINE.search(line)]
        return (errors or lines)[-limit:]


def zero_functions_error(app: str, host: Optional[DeploymentHost], deployment: Optional[dict]) -> DeployFailed:
    """"0 functions loaded": an import error at indexing hides every function; show what the log says."""
    lines = host.error_lines(deployment) if host is not None and deployment else []
    said = (": " + " | ".join(lines)) if lines else ""
    return DeployFailed(f"{app} deployed, but its host loaded 0 functions: function_app.py failed at indexing, "
                        f"usually an import error{said}; check requirements.txt and the notebook's imports "
                        "(`kagg convert NB -o DIR` shows what runs), then deploy again")
