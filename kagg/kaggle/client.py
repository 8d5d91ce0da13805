"""Every call kagg makes to Kaggle's API, through kagglesdk, with a deadline and retries.

The SDK sets no timeout and retries nothing, so each call here has a total deadline (each
attempt's socket timeouts come from the time left) and tenacity retries with exponential
backoff and jitter for what is transient on Kaggle: 429, 5xx, an HTML page where JSON was
expected ("Expecting value: line 1 column 1"), a reset connection. Refusals Kaggle returns
inside a 200 reply become one-line errors naming the cause. SaveKernel is never retried here:
:mod:`kagg.kaggle.push` looks the slug up first (a retried push would start a second session).
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Iterator, Optional, TypeVar

from kagg.errors import BadInput, NotFound, OperationFailed
from kagg.kaggle.credentials import Credentials, point_sdk_at_api
from kagg.kaggle.jobs import JobId

T = TypeVar("T")
SERVICE = "kernels.KernelsApiService"
USER_AGENT = "kagg"


class Transient(Exception):
    """An attempt that may succeed if made again (429, 5xx, HTML body, reset connection).

    ``retry_after``: the seconds the server asked for (its ``Retry-After`` header), if any."""

    def __init__(self, message: str, retry_after: Optional[float] = None):
        super().__init__(message)
        self.retry_after = retry_after


def _retry_after(response: Any) -> Optional[float]:
    """``Retry-After`` in seconds (the delta form; an HTTP date is ignored)."""
    try:
        value = float(response.headers.get("Retry-After", ""))
    except (TypeError, ValueError):
        return None
    return value if value >= 0 else None


class UnclearPush(OperationFailed):
    """SaveKernel failed in a way that does not say whether Kaggle accepted the push."""


class GpuCapReached(OperationFailed):
    """Kaggle refused a push: the account's GPU sessions are all in use (a 200 with ``error``)."""


@dataclass(frozen=True)
class CallPolicy:
    """How long one call may take in all, and how its retries wait."""

    deadline_s: float = 120.0
    attempts: int = 6
    first_wait_s: float = 0.5
    most_wait_s: float = 15.0
    connect_s: float = 10.0
    read_s: float = 60.0


@dataclass
class OutputPage:
    files: list[tuple[str, str]]   # (file name, url)
    log: str
    next_token: str


@dataclass
class SaveReply:
    ref: str
    url: str
    version: Optional[int]
    error: str
    invalid: dict[str, list[str]] = field(default_factory=dict)


def _deadline_adapter(policy_local: threading.local):
    """A requests adapter whose every send gets (connect, read) timeouts from the time left."""
    from requests.adapters import HTTPAdapter

    class DeadlineAdapter(HTTPAdapter):
        def send(self, request, **kwargs):  # type: ignore[override]
            limit = getattr(policy_local, "timeout", None)
            if limit is not None:
                kwargs["timeout"] = limit
            return super().send(request, **kwargs)

    return DeadlineAdapter()


def classify(exc: BaseException, what: str) -> BaseException:
    """The exception an SDK failure becomes: Transient (retry), or a kagg error (stop)."""
    import requests

    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        code = exc.response.status_code
        if code == 429 or code >= 500:
            return Transient(f"HTTP {code}{_html_hint(exc.response)}", _retry_after(exc.response))
        if code == 401:
            return BadInput(f"Kaggle refused the credentials (401) for {what}: check KAGGLE_USERNAME/KAGGLE_KEY "
                            "or KAGGLE_API_TOKEN (https://www.kaggle.com/settings)")
        if code == 404:
            return NotFound(f"{what}: Kaggle has no such kernel (404); check the name with `kagg kaggle jobs`")
        if code == 403:
            return BadInput(f"{what}: Kaggle denied access (403): the slug is wrong, or the kernel is private "
                            "to another account")
        return BadInput(f"{what}: Kaggle answered HTTP {code}: {_body(exc.response)}")
    if isinstance(exc, (requests.ConnectionError, requests.Timeout)):
        return Transient(f"no answer ({type(exc).__name__})")
    if isinstance(exc, (requests.exceptions.ChunkedEncodingError, ConnectionResetError)):
        return Transient("connection reset")
    if isinstance(exc, (json.JSONDecodeError, ValueError)) and "Expecting" in str(exc):
        return Transient("an HTML page where JSON was expected")
    return exc


def _address(req: Any, job: JobId) -> None:
    """Point a kernel request at the job's kernel, and at its pushed version when it has one
    (Kaggle answers for the latest version otherwise)."""
    req.user_name = job.owner
    req.kernel_slug = job.slug
    if job.version_label:
        req.version_label = job.version_label


def _html_hint(response: Any) -> str:
    kind = response.headers.get("Content-Type", "")
    return " (an HTML error page)" if "html" in kind else ""


def _body(response: Any) -> str:
    try:
        data = response.json()
        return str(data.get("message") or data.get("error") or data)[:200]
    except ValueError:
        return (response.text or "")[:120].replace("\n", " ")


class Kaggle:
    """Kaggle's kernels API for one user; thread-safe (batch runs share one)."""

    def __init__(self, creds: Credentials, policy: Optional[CallPolicy] = None):
        self.creds = creds
        self.policy = policy or CallPolicy()
        self.base_url = point_sdk_at_api()
        self._local = threading.local()
        self.calls = 0   # made to Kaggle (benchmarks count them)
        self._count_lock = threading.Lock()

    @property
    def user(self) -> str:
        return self.creds.username

    def _sdk(self):
        """This thread's kagglesdk client (requests sessions are not shared across threads)."""
        client = getattr(self._local, "client", None)
        if client is None:
            from kagglesdk import KaggleClient
            from kagglesdk.kaggle_env import KaggleEnv

            client = KaggleClient(env=KaggleEnv.PROD, username=self.creds.username, password=self.creds.key,
                                  api_token=self.creds.token, user_agent=USER_AGENT)
            http = client.http_client()
            http._endpoint = self.base_url
            http._init_session()
            session = http._session
            adapter = _deadline_adapter(self._local)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            self._local.client = client
        return client

    def _call(self, what: str, method: str, request: Any, response_type: Any,
              policy: Optional[CallPolicy] = None, retry: bool = True) -> Any:
        """One SDK call under ``policy``: deadline, retries for Transient, one-line errors."""
        from tenacity import (RetryError, Retrying, retry_if_exception_type, stop_after_attempt,
                              stop_after_delay, wait_exponential_jitter)

        policy = policy or self.policy
        start = time.monotonic()
        http = self._sdk().http_client()

        def attempt() -> Any:
            left = policy.deadline_s - (time.monotonic() - start)
            if left <= 0:
                raise Transient("deadline reached")
            self._local.timeout = (min(policy.connect_s, left), min(policy.read_s, left))
            with self._count_lock:
                self.calls += 1
            try:
                return http.call(SERVICE, method, request, response_type)
            except Exception as exc:  # the SDK raises requests' errors and JSON errors as they come
                mapped = classify(exc, what)
                if mapped is exc:
                    raise
                raise mapped from exc

        if not retry:
            return attempt()
        backoff = wait_exponential_jitter(multiplier=policy.first_wait_s, max=policy.most_wait_s,
                                          jitter=policy.first_wait_s)

        def wait(state: Any) -> float:  # the server's Retry-After when it gave one, within the policy
            asked = getattr(state.outcome.exception(), "retry_after", None)
            return min(asked, policy.most_wait_s) if asked is not None else backoff(state)

        retrying = Retrying(stop=stop_after_attempt(policy.attempts) | stop_after_delay(policy.deadline_s),
                            wait=wait, retry=retry_if_exception_type(Transient), reraise=False)
        try:
            return retrying(attempt)
        except RetryError as exc:
            last = exc.last_attempt.exception()
            took = time.monotonic() - start
            raise OperationFailed(f"{what}: Kaggle's API did not answer after {exc.last_attempt.attempt_number} "
                                  f"tries in {took:.0f} s (last: {last}); try again later") from None

    # -- kernels -------------------------------------------------------------------------
    def save_kernel(self, metadata: dict, text: str, timeout_s: Optional[int] = None) -> SaveReply:
        """One SaveKernel (the push), never retried: Transient becomes UnclearPush."""
        from kagglesdk.kernels.types.kernels_api_service import ApiSaveKernelRequest, ApiSaveKernelResponse

        req = ApiSaveKernelRequest()
        req.slug = metadata["id"]
        req.new_title = metadata.get("title") or metadata["id"].split("/")[1]
        req.text = text
        req.language = metadata.get("language", "python")
        req.kernel_type = metadata.get("kernel_type", "notebook")
        req.is_private = bool(metadata.get("is_private", True))
        req.enable_gpu = bool(metadata.get("enable_gpu", False))
        req.enable_tpu = bool(metadata.get("enable_tpu", False))
        req.enable_internet = bool(metadata.get("enable_internet", False))
        req.dataset_data_sources = list(metadata.get("dataset_sources") or [])
        req.competition_data_sources = list(metadata.get("competition_sources") or [])
        req.kernel_data_sources = list(metadata.get("kernel_sources") or [])
        req.model_data_sources = list(metadata.get("model_sources") or [])
        if metadata.get("machine_shape"):
            req.machine_shape = metadata["machine_shape"]
        if timeout_s:
            req.session_timeout_seconds = int(timeout_s)
        what = f"pushing {metadata['id']}"
        policy = CallPolicy(deadline_s=max(self.policy.deadline_s, 180.0), attempts=1,
                            connect_s=self.policy.connect_s, read_s=max(self.policy.read_s, 120.0))
        try:
            reply = self._call(what, "SaveKernel", req, ApiSaveKernelResponse, policy=policy, retry=False)
        except Transient as exc:
            raise UnclearPush(f"{what}: {exc}") from None
        invalid = {kind: list(getattr(reply, f"invalid_{kind}_sources") or [])
                   for kind in ("dataset", "competition", "kernel", "model")}
        return SaveReply(ref=reply.ref or "", url=reply.url or "", version=reply.version_number or None,
                         error=reply.error or "", invalid={k: v for k, v in invalid.items() if v})

    def current_version(self, owner: str, slug: str) -> Optional[int]:
        """The kernel's latest version, or None when Kaggle has no such kernel (the look-up
        made after an unclear push)."""
        from kagglesdk.kernels.types.kernels_api_service import ApiGetKernelRequest, ApiGetKernelResponse

        req = ApiGetKernelRequest()
        req.user_name = owner
        req.kernel_slug = slug
        try:
            reply = self._call(f"looking up {owner}/{slug}", "GetKernel", req, ApiGetKernelResponse)
        except NotFound:
            return None
        version = reply.metadata.current_version_number if reply.metadata else None
        return int(version) if version else 1

    def get_kernel(self, job: JobId) -> Any:
        """GetKernel: the kernel's metadata and source (``blob``)."""
        from kagglesdk.kernels.types.kernels_api_service import ApiGetKernelRequest, ApiGetKernelResponse

        req = ApiGetKernelRequest()
        _address(req, job)
        return self._call(f"kernel {job}", "GetKernel", req, ApiGetKernelResponse)

    def status(self, job: JobId) -> tuple[str, str]:
        """``(STATUS, failure message)`` of the job's version (QUEUED when Kaggle leaves it out)."""
        from kagglesdk.kernels.types.kernels_api_service import (ApiGetKernelSessionStatusRequest,
                                                                 ApiGetKernelSessionStatusResponse)

        req = ApiGetKernelSessionStatusRequest()
        _address(req, job)
        reply = self._call(f"status of {job}", "GetKernelSessionStatus", req, ApiGetKernelSessionStatusResponse)
        status = reply.status
        name = getattr(status, "name", None) or (str(status) if status is not None else "QUEUED")
        return name.upper(), reply.failure_message or ""

    def output_page(self, job: JobId, page_token: str = "", page_size: int = 100) -> OutputPage:
        from kagglesdk.kernels.types.kernels_api_service import (ApiListKernelSessionOutputRequest,
                                                                 ApiListKernelSessionOutputResponse)

        req = ApiListKernelSessionOutputRequest()
        _address(req, job)
        req.page_size = page_size
        if page_token:
            req.page_token = page_token
        reply = self._call(f"output of {job}", "ListKernelSessionOutput", req, ApiListKernelSessionOutputResponse)
        files = [(f.file_name, f.url) for f in (reply.files or []) if f is not None]
        return OutputPage(files=files, log=reply.log or "", next_token=reply.next_page_token or "")

    def output_files(self, job: JobId, page_size: int = 100) -> tuple[list[tuple[str, str]], str]:
        """Every output file of the job (all pages) and its log."""
        files: list[tuple[str, str]] = []
        token, log, seen = "", "", set()
        while True:
            page = self.output_page(job, token, page_size)
            files += page.files
            log = log or page.log
            if not page.next_token or page.next_token in seen:
                return files, log
            seen.add(page.next_token)
            token = page.next_token

    def log(self, job: JobId) -> str:
        return self.output_page(job, page_size=1).log

    def log_stream(self, job: JobId, idle_s: float = 120.0) -> Iterator[dict]:
        """The job's log events as Kaggle streams them (:mod:`kagg.kaggle.logstream`)."""
        from kagg.kaggle.logstream import log_events

        with self._count_lock:
            self.calls += 1
        http = self._sdk().http_client()
        http._init_session()
        self._local.timeout = (self.policy.connect_s, idle_s)
        return log_events(http._session, self.base_url, job)

    def delete(self, job: JobId) -> None:
        from kagglesdk.kernels.types.kernels_api_service import ApiDeleteKernelRequest, ApiDeleteKernelResponse

        req = ApiDeleteKernelRequest()
        req.user_name = job.owner
        req.kernel_slug = job.slug
        self._call(f"deleting {job.kernel}", "DeleteKernel", req, ApiDeleteKernelResponse)

    def list_kernels(self, user: Optional[str] = None, search: Optional[str] = None,
                     page_size: int = 100, most: int = 500) -> list[Any]:
        """Kernels (ApiKernelMetadata), newest run first; ``user`` narrows to one owner."""
        from kagglesdk.kernels.types.kernels_api_service import ApiListKernelsRequest, ApiListKernelsResponse
        from kagglesdk.kernels.types.kernels_enums import KernelsListSortType

        found: list[Any] = []
        token, page = "", 1
        while len(found) < most:
            req = ApiListKernelsRequest()
            if user:
                req.user = user
            if search:
                req.search = search
            req.sort_by = KernelsListSortType.DATE_RUN
            req.page_size = page_size
            req.page = page
            if token:
                req.page_token = token
            reply = self._call("listing kernels", "ListKernels", req, ApiListKernelsResponse)
            batch = [k for k in (reply.kernels or []) if k is not None]
            found += batch
            token = reply.next_page_token or ""
            if not batch or len(batch) < page_size and not token:
                break
            page += 1
        return found[:most]

    def quota(self) -> dict:
        """GPU/TPU quota: seconds used, reserved, allowed, and when it refreshes."""
        from kagglesdk.kernels.types.kernels_api_service import (ApiGetAcceleratorQuotaStatisticsRequest,
                                                                 ApiGetAcceleratorQuotaStatisticsResponse)

        reply = self._call("quota", "GetAcceleratorQuotaStatistics", ApiGetAcceleratorQuotaStatisticsRequest(),
                           ApiGetAcceleratorQuotaStatisticsResponse)
        out: dict[str, Any] = {"refresh_time": _text_time(reply.quota_refresh_time)}
        for kind in ("gpu", "tpu"):
            q = getattr(reply, f"{kind}_quota")
            if q is None:
                continue
            out[kind] = {name: _seconds(getattr(q, name, None))
                         for name in ("time_used", "time_reserved", "total_time_allowed", "minimum_time_allowed")}
            allowed, used = out[kind]["total_time_allowed"], out[kind]["time_used"]
            out[kind]["time_left"] = max(0.0, allowed - used) if allowed is not None and used is not None else None
        return out


def _seconds(value: Any) -> Optional[float]:
    """A protobuf Duration as seconds (the SDK gives a timedelta; the wire says "3600s")."""
    if value is None:
        return None
    if hasattr(value, "total_seconds"):
        return float(value.total_seconds())
    text = str(value).strip()
    return float(text[:-1]) if text.endswith("s") else float(text)


def _text_time(value: Any) -> Optional[str]:
    if value is None:
        return None
    return value.isoformat() if hasattr(value, "isoformat") else str(value)
