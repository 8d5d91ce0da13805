"""The Kaggle calls a deployed function makes for ``/jobs``: kagglesdk, a deadline, bounded retries.

Copied into an artifact only when its notebook has ``train`` cells, beside ``kagg_jobs.py``; it
needs kagglesdk (and so requests and protobuf), listed in that artifact's requirements. The base
URL is ``KAGG_KAGGLE_API_URL`` (the one seam kagg's command line uses too). Credentials come from
the function's environment (``KAGGLE_USERNAME`` with ``KAGGLE_KEY`` or ``KAGGLE_API_TOKEN``),
set at deploy time; they are never logged or returned.

A 429, a 5xx, an HTML page where JSON was expected or a dropped connection is retried with
jittered backoff until ``KAGG_JOBS_RETRY_S`` (default 20 s) has passed; then :class:`Unavailable`
(the endpoint's 503). SaveKernel is never retried blindly: see ``kagg_jobs.Jobs._push``.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time

DEFAULT_API_URL = "https://api.kaggle.com"
SERVICE = "kernels.KernelsApiService"
RETRY_VAR = "KAGG_JOBS_RETRY_S"


class Unavailable(Exception):
    """Kaggle did not answer usefully within the request's budget (a 503 with Retry-After)."""


class Transient(Exception):
    """One attempt that may succeed if made again."""


class NotFound(Exception):
    """Kaggle has no such kernel (or version)."""


class Refused(Exception):
    """Kaggle answered with a refusal that trying again will not change (401, 403, 400)."""


class NoCredentials(Exception):
    """The function was deployed without Kaggle credentials."""


def _classify(exc: BaseException) -> BaseException:
    import requests

    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        code = exc.response.status_code
        if code == 429 or code >= 500:
            return Transient(f"HTTP {code}")
        if code == 404:
            return NotFound("Kaggle has no such kernel")
        if code in (401, 403):
            return Refused(f"Kaggle refused the function's credentials (HTTP {code}); deploy it again "
                           "with valid Kaggle credentials")
        return Refused(f"Kaggle answered HTTP {code}")
    if isinstance(exc, (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError,
                        ConnectionResetError)):
        return Transient(f"no answer ({type(exc).__name__})")
    if isinstance(exc, ValueError) and "Expecting" in str(exc):
        return Transient("an HTML page where JSON was expected")
    return exc


class Kaggle:
    """Kaggle's kernels API for the function's own account; one per instance, thread-safe."""

    def __init__(self, env: "os._Environ[str] | dict[str, str]" = os.environ):
        self.username = (env.get("KAGGLE_USERNAME") or "").strip()
        self._key = env.get("KAGGLE_KEY") or None
        self._token = env.get("KAGGLE_API_TOKEN") or None
        if not self.username or not (self._key or self._token):
            raise NoCredentials("the function has no Kaggle credentials; deploy it again with kagg from a "
                                "machine where Kaggle's credentials are set up (docs/jobs.md)")
        self.base_url = (env.get("KAGG_KAGGLE_API_URL") or DEFAULT_API_URL).strip().rstrip("/")
        self.budget_s = float(env.get(RETRY_VAR) or 20.0)
        self._local = threading.local()

    def _http(self):
        """This thread's kagglesdk HTTP client (requests sessions are not shared across threads)."""
        http = getattr(self._local, "http", None)
        if http is None:
            from kagglesdk import KaggleClient
            from kagglesdk.kaggle_env import KaggleEnv
            from requests.adapters import HTTPAdapter

            local = self._local

            class DeadlineAdapter(HTTPAdapter):
                def send(self, request, **kwargs):  # type: ignore[override]
                    kwargs["timeout"] = getattr(local, "timeout", (5.0, 15.0))
                    return super().send(request, **kwargs)

            client = KaggleClient(env=KaggleEnv.PROD, username=self.username, password=self._key,
                                  api_token=self._token, user_agent="kagg-function")
            http = client.http_client()
            http._endpoint = self.base_url
            http._init_session()
            http._session.mount("http://", DeadlineAdapter())
            http._session.mount("https://", DeadlineAdapter())
            self._local.http = http
        return http

    def call(self, method: str, request, response_type, deadline: float, retry: bool = True):
        """One SDK call, retried while transient until ``deadline`` (a ``time.monotonic()``)."""
        wait = 0.2
        last = "no attempt"
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise Unavailable(f"Kaggle's API did not answer in time (last: {last})")
            self._local.timeout = (min(5.0, left), min(15.0, left))
            try:
                return self._http().call(SERVICE, method, request, response_type)
            except Exception as exc:  # requests' and the JSON parser's errors, as the SDK lets them out
                mapped = _classify(exc)
                if not isinstance(mapped, Transient):
                    if mapped is exc:
                        raise
                    raise mapped from None
                if not retry:
                    raise mapped from None
                last = str(mapped)
            pause = min(wait * (0.5 + random.random()), max(0.0, deadline - time.monotonic()))
            time.sleep(pause)
            wait = min(wait * 2, 3.0)

    def deadline(self) -> float:
        return time.monotonic() + self.budget_s

    # -- the calls -------------------------------------------------------------------------
    def save(self, metadata: dict, text: str, deadline: float) -> tuple[int, str]:
        """One SaveKernel (not retried): ``(version, error)``; Transient when the outcome is unclear."""
        from kagglesdk.kernels.types.kernels_api_service import ApiSaveKernelRequest, ApiSaveKernelResponse

        req = ApiSaveKernelRequest()
        req.slug = metadata["id"]
        req.new_title = metadata["title"]
        req.text = text
        req.language = metadata.get("language", "python")
        req.kernel_type = metadata.get("kernel_type", "notebook")
        req.is_private = bool(metadata.get("is_private", True))
        req.enable_gpu = bool(metadata.get("enable_gpu"))
        req.enable_tpu = bool(metadata.get("enable_tpu"))
        req.enable_internet = bool(metadata.get("enable_internet"))
        req.dataset_data_sources = list(metadata.get("dataset_sources") or [])
        req.competition_data_sources = list(metadata.get("competition_sources") or [])
        req.kernel_data_sources = list(metadata.get("kernel_sources") or [])
        req.model_data_sources = list(metadata.get("model_sources") or [])
        if metadata.get("machine_shape"):
            req.machine_shape = metadata["machine_shape"]
        reply = self.call("SaveKernel", req, ApiSaveKernelResponse, deadline, retry=False)
        error = reply.error or ""
        invalid = [ref for kind in ("dataset", "competition", "kernel", "model")
                   for ref in (getattr(reply, f"invalid_{kind}_sources") or [])]
        if not error and invalid:
            error = f"no such source: {', '.join(invalid)}"
        return int(reply.version_number or 1), error

    def current_version(self, owner: str, slug: str, deadline: float) -> "int | None":
        """The kernel's latest version, or None when Kaggle has no such kernel."""
        from kagglesdk.kernels.types.kernels_api_service import ApiGetKernelRequest, ApiGetKernelResponse

        req = ApiGetKernelRequest()
        req.user_name = owner
        req.kernel_slug = slug
        try:
            reply = self.call("GetKernel", req, ApiGetKernelResponse, deadline)
        except NotFound:
            return None
        version = reply.metadata.current_version_number if reply.metadata else None
        return int(version) if version else 1

    def status(self, owner: str, slug: str, version: int, deadline: float) -> tuple[str, str]:
        from kagglesdk.kernels.types.kernels_api_service import (ApiGetKernelSessionStatusRequest,
                                                                 ApiGetKernelSessionStatusResponse)

        req = ApiGetKernelSessionStatusRequest()
        req.user_name = owner
        req.kernel_slug = slug
        req.version_label = f"v{version}"
        reply = self.call("GetKernelSessionStatus", req, ApiGetKernelSessionStatusResponse, deadline)
        status = reply.status
        name = getattr(status, "name", None) or (str(status) if status is not None else "QUEUED")
        return name.upper(), reply.failure_message or ""

    def outputs(self, owner: str, slug: str, version: int, deadline: float,
                most: int = 1000) -> tuple[list[tuple[str, str]], str]:
        """Every output file ``(name, url)`` of that version (all pages) and its log."""
        from kagglesdk.kernels.types.kernels_api_service import (ApiListKernelSessionOutputRequest,
                                                                 ApiListKernelSessionOutputResponse)

        files: list[tuple[str, str]] = []
        token, log, seen = "", "", set()
        while len(files) < most:
            req = ApiListKernelSessionOutputRequest()
            req.user_name = owner
            req.kernel_slug = slug
            req.version_label = f"v{version}"
            req.page_size = 100
            if token:
                req.page_token = token
            reply = self.call("ListKernelSessionOutput", req, ApiListKernelSessionOutputResponse, deadline)
            files += [(f.file_name, f.url) for f in (reply.files or []) if f is not None]
            log = log or reply.log or ""
            token = reply.next_page_token or ""
            if not token or token in seen:
                break
            seen.add(token)
        return files, log

    def live_log(self, owner: str, slug: str, version: int, wait_s: float) -> str:
        """A running session's log so far: Kaggle's log stream (server-sent events, replayed from the
        start) read for about ``wait_s`` seconds, then closed. Best effort: "" when it cannot be read."""
        import requests

        http = self._http()
        session = http._session
        headers = {k: v for k, v in session.headers.items() if k.lower() != "content-type"}
        headers["Accept"] = "text/event-stream, */*"
        self._local.timeout = (min(5.0, wait_s), wait_s)
        stop = time.monotonic() + wait_s
        parts: list[str] = []
        try:
            reply = session.get(f"{self.base_url}/v1/kernels/logs/stream/{owner}/{slug}", stream=True,
                                headers=headers, params={"versionLabel": f"v{version}"})
            reply.raise_for_status()
        except requests.RequestException:
            return ""
        with reply:
            if not (reply.headers.get("Content-Type") or "").lower().startswith("text/event-stream"):
                return _joined(reply.text)
            buffer = b""
            try:
                while time.monotonic() < stop:
                    block = reply.raw.read1(65536)
                    if not block:
                        break
                    buffer += block
                    *lines, buffer = buffer.split(b"\n")
                    for line in lines:
                        text = line.rstrip(b"\r").decode("utf-8", "replace")
                        if not text.startswith("data:"):
                            continue
                        payload = text[5:].strip()
                        if payload == "END_OF_LOG":
                            return "".join(parts)
                        try:
                            event = json.loads(payload)
                        except ValueError:
                            event = {"data": payload + "\n"}
                        parts.append(str(event.get("data", "")) if isinstance(event, dict) else str(event))
            except Exception:  # the read timed out or the stream broke: what came so far is the answer
                pass
        return "".join(parts)

    def delete(self, owner: str, slug: str, deadline: float) -> None:
        from kagglesdk.kernels.types.kernels_api_service import ApiDeleteKernelRequest, ApiDeleteKernelResponse

        req = ApiDeleteKernelRequest()
        req.user_name = owner
        req.kernel_slug = slug
        self.call("DeleteKernel", req, ApiDeleteKernelResponse, deadline)

    def kernels(self, owner: str, search: str, limit: int, deadline: float) -> list[tuple[str, int, "str | None"]]:
        """``(slug, latest version, last run time)`` of the owner's kernels matching ``search``, newest first."""
        from kagglesdk.kernels.types.kernels_api_service import ApiListKernelsRequest, ApiListKernelsResponse
        from kagglesdk.kernels.types.kernels_enums import KernelsListSortType

        req = ApiListKernelsRequest()
        req.user = owner
        req.search = search
        req.sort_by = KernelsListSortType.DATE_RUN
        req.page_size = limit
        req.page = 1
        reply = self.call("ListKernels", req, ApiListKernelsResponse, deadline)
        out = []
        for k in reply.kernels or []:
            if k is None or not (k.slug or k.ref):
                continue
            slug = k.slug or k.ref.rstrip("/").rpartition("/")[2]
            run = k.last_run_time
            out.append((slug, int(k.current_version_number or 1),
                        run.isoformat() if hasattr(run, "isoformat") else (str(run) if run else None)))
        return out

    def fetch_json(self, url: str, deadline: float) -> "dict | None":
        """A small JSON output file (the kernel's kagg-result.json): a plain GET, no credentials."""
        import requests

        left = deadline - time.monotonic()
        if left <= 0:
            return None
        try:
            reply = requests.get(url, timeout=(min(5.0, left), min(15.0, left)))
            reply.raise_for_status()
            data = json.loads(reply.content[:1 << 20])
        except (requests.RequestException, ValueError):
            return None
        return data if isinstance(data, dict) else None


def _joined(text: str) -> str:
    """Kaggle's stored log (a JSON list of ``{stream_name, time, data}``) as plain text."""
    try:
        entries = json.loads(text)
    except ValueError:
        return text
    if not isinstance(entries, list):
        return text
    return "".join(str(e.get("data", "")) if isinstance(e, dict) else str(e) for e in entries)
