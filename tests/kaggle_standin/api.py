"""The RPC methods of the stand-in: each takes the caller's user name and the camelCase JSON body
of ``POST /v1/{service}/{Method}`` and returns the reply body, or raises ApiError, which the server
sends the way Kaggle does (HTTP status + ``{"code", "message"}``, what kagglesdk turns into an
HTTPError). Refusals Kaggle sends in a 200 (the GPU session cap, "Notebook not found" for an
unknown ``id``) are returned as ``{"error": ...}``."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional
from urllib.parse import quote

from .model import FINISHED, StandInKernel, Version, kaggle_log
from .runner import Session

if TYPE_CHECKING:
    from . import KaggleStandIn

LANGUAGES = {"python", "r", "rmarkdown", "julia", "sqlite"}
KERNEL_TYPES = {"script", "notebook"}
NOT_FOUND = "Notebook not found"


class ApiError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def _token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode()


def _offset(token: Optional[str]) -> int:
    if not token:
        return 0
    try:
        kind, _, value = base64.urlsafe_b64decode(token.encode()).decode().partition(":")
        if kind == "offset" and value.isdigit():
            return int(value)
    except (ValueError, UnicodeDecodeError):
        pass
    raise ApiError(400, f"Invalid page token: {token}")


def _is_gpu(body: dict) -> bool:
    shape = body.get("machineShape") or ""
    return bool(body.get("enableGpu")) or shape.startswith("Nvidia")


class Api:
    """The methods, bound to one stand-in's state (all under its lock)."""

    def __init__(self, standin: "KaggleStandIn"):
        self.s = standin

    def dispatch(self, name: str) -> Optional[Callable[[str, dict], dict]]:
        return {
            "SaveKernel": self.save_kernel, "GetKernelSessionStatus": self.get_status,
            "ListKernelSessionOutput": self.list_output, "DeleteKernel": self.delete_kernel,
            "ListKernels": self.list_kernels, "GetKernel": self.get_kernel,
            "GetAcceleratorQuotaStatistics": self.quota, "IntrospectToken": self.introspect,
            "ListKernelFiles": self.list_files,
        }.get(name)

    # -- look-ups ----------------------------------------------------------------------------------
    def find(self, user: str, owner: str, slug: str) -> StandInKernel:
        kernel = self.s.kernels.get((owner, slug))
        if kernel is None or kernel.deleted:
            raise ApiError(404, NOT_FOUND)
        if kernel.is_private and owner != user:
            raise ApiError(403, "Permission 'kernels.get' was denied")
        return kernel

    def find_version(self, user: str, body: dict) -> tuple[StandInKernel, Version]:
        kernel = self.find(user, body.get("userName", ""), body.get("kernelSlug", ""))
        version = kernel.version(body.get("versionLabel"))
        if version is None:
            raise ApiError(404, NOT_FOUND)
        return kernel, version

    # -- SaveKernel --------------------------------------------------------------------------------
    def save_kernel(self, user: str, body: dict) -> dict:
        s = self.s
        text, language, kernel_type = body.get("text"), body.get("language"), body.get("kernelType")
        if not text:
            raise ApiError(400, "The kernel has no source text")
        if language not in LANGUAGES:
            raise ApiError(400, f"Invalid language: {language}")
        if kernel_type not in KERNEL_TYPES:
            raise ApiError(400, f"Invalid kernel type: {kernel_type}")
        if kernel_type == "notebook":
            try:
                json.loads(text)
            except ValueError:
                raise ApiError(400, "The notebook text is not valid JSON")
        title = body.get("newTitle")
        if title is not None and len(title) < 5:
            raise ApiError(400, "Title must be at least five characters")
        kernel = self._target(user, body, title)
        if isinstance(kernel, dict):
            return kernel  # a refusal in a 200
        gpu = _is_gpu(body)
        running_gpu = sum(1 for k in s.kernels.values() if not k.deleted
                          for v in k.versions if v.gpu and v.run and v.status not in FINISHED)
        if gpu and running_gpu >= s.gpu_cap:
            return {"error": f"Maximum batch GPU session count of {s.gpu_cap} reached"}
        sources, invalid = self._sources(user, body)
        if kernel.id == 0:  # new: it exists from now on
            s.next_id += 1
            kernel.id = s.next_id
            s.kernels[(kernel.owner, kernel.slug)] = kernel
        elif title:
            kernel.title = title
        number = len(kernel.versions) + 1
        run = body.get("kernelExecutionType") != "QUICK_SAVE"
        version = Version(number=number, text=text, request=dict(body), gpu=gpu and run,
                          timeout_s=float(body.get("sessionTimeoutSeconds") or s.default_timeout_s),
                          folder=s.run_folder(kernel, number), run=run)
        version.folder.mkdir(parents=True)
        version.stuck = s.take_stuck(kernel.slug)
        kernel.versions.append(version)
        if run:
            s.sessions[(kernel.owner, kernel.slug, number)] = Session(version, sources, s.blocker_dir,
                                                                      s.queued_s).start()
        else:
            version.status = "COMPLETE"
        return {"ref": f"/code/{kernel.ref}", "url": f"{s.web_url}/code/{kernel.ref}", "versionNumber": number,
                "kernelId": kernel.id, **invalid}

    def _target(self, user: str, body: dict, title: Optional[str]) -> "StandInKernel | dict":
        """The kernel a push goes to: by numeric ``id``, else by ``slug`` ("owner/slug"). A new
        kernel is named by its title's slug, as Kaggle does (a title that does not slugify to the
        id's slug leaves the id naming nothing: later calls on it get 404)."""
        s = self.s
        if body.get("id"):
            found = next((k for k in s.kernels.values() if k.id == body["id"] and not k.deleted), None)
            if found is None or found.owner != user:
                return {"error": NOT_FOUND}
            return found
        ref = body.get("slug") or ""
        owner, _, slug = ref.rpartition("/")
        owner = owner or user
        if owner != user:
            raise ApiError(403, "Permission 'kernels.create' was denied")
        if not slug:
            raise ApiError(400, "A kernel slug or id is required")
        existing = s.kernels.get((owner, slug))
        if existing is not None and not existing.deleted:
            return existing
        if not title:
            raise ApiError(400, "A new kernel needs a title")
        from slugify import slugify  # python-slugify, kaggle's own dependency (the rule kaggle-cli checks)

        slug = slugify(title)
        existing = s.kernels.get((owner, slug))
        if existing is not None and not existing.deleted:
            return existing
        return StandInKernel(owner=owner, slug=slug, title=title, id=0, language=body["language"],
                             kernel_type=body["kernelType"], is_private=body.get("isPrivate", True) is not False)

    def _sources(self, user: str, body: dict) -> tuple[dict[str, Path], dict[str, list[str]]]:
        """The folders to mount under input/<slug>/, and the sources Kaggle would not add."""
        s = self.s
        mounts: dict[str, Path] = {}
        invalid: dict[str, list[str]] = {}
        for ref in body.get("datasetDataSources", []):
            folder = s.datasets.get(ref)
            if folder is None:
                invalid.setdefault("invalidDatasetSources", []).append(ref)
            else:
                mounts[ref.rpartition("/")[2]] = folder
        for slug in body.get("competitionDataSources", []):
            folder = s.competitions.get(slug)
            if folder is None:
                invalid.setdefault("invalidCompetitionSources", []).append(slug)
            else:
                mounts[slug] = folder
        for ref in body.get("kernelDataSources", []):
            owner, _, slug = ref.rpartition("/")
            source = s.kernels.get((owner or user, slug))
            done = source.last_complete() if source is not None and not source.deleted else None
            if done is None or (source.is_private and source.owner != user):
                invalid.setdefault("invalidKernelSources", []).append(ref)
            else:
                mounts[slug] = done.working
        for ref in body.get("modelDataSources", []):
            invalid.setdefault("invalidModelSources", []).append(ref)
        return mounts, invalid

    # -- sessions ----------------------------------------------------------------------------------
    def get_status(self, user: str, body: dict) -> dict:
        _, version = self.find_version(user, body)
        out: dict[str, Any] = {"status": version.status}
        if version.failure_message:
            out["failureMessage"] = version.failure_message
        return out

    def list_output(self, user: str, body: dict) -> dict:
        kernel, version = self.find_version(user, body)
        s = self.s
        size = min(int(body.get("pageSize") or 20), s.page_size)
        if size <= 0:
            raise ApiError(400, "pageSize must be positive")
        start = _offset(body.get("pageToken"))
        done = version.finished and not version.stuck
        names = s.output_names(version) if done else []
        page = names[start:start + size]
        base = f"{s.url}/outputs/{kernel.owner}/{kernel.slug}/{version.label}/"
        out: dict[str, Any] = {"files": [{"url": base + quote(n), "fileName": n} for n in page]}
        if done or s.live_log_in_output:
            log = kaggle_log(list(version.log))
            if log:
                out["log"] = log
        if start + size < len(names):
            out["nextPageToken"] = _token(start + size)
        return out

    def list_files(self, user: str, body: dict) -> dict:
        """ListKernelFiles (``kaggle kernels files``): the output files with sizes, paged."""
        kernel, version = self.find_version(user, body)
        names = self.s.output_names(version) if version.finished and not version.stuck else []
        size = min(int(body.get("pageSize") or 20), self.s.page_size)
        start = _offset(body.get("pageToken"))
        created = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(version.ended or version.created))
        out: dict[str, Any] = {"files": [{"name": n, "size": (version.working / n).stat().st_size,
                                          "creationDate": created} for n in names[start:start + size]]}
        if start + size < len(names):
            out["nextPageToken"] = _token(start + size)
        return out

    def delete_kernel(self, user: str, body: dict) -> dict:
        owner, slug = body.get("userName", ""), body.get("kernelSlug", "")
        kernel = self.find(user, owner, slug)
        if kernel.owner != user:
            raise ApiError(403, "Permission 'kernels.delete' was denied")
        kernel.deleted = True
        del self.s.kernels[(owner, slug)]
        self.s.gpu_used_s += sum(v.gpu_seconds() for v in kernel.versions)  # quota spent stays spent
        self.s.stop_sessions(kernel)
        return {}

    # -- kernels -----------------------------------------------------------------------------------
    def list_kernels(self, user: str, body: dict) -> dict:
        group = body.get("group", "")
        who = body.get("user") or (user if group in ("PROFILE", "KERNELS_LIST_VIEW_TYPE_PROFILE") else "")
        search = (body.get("search") or "").lower()
        rows = [k for k in self.s.kernels.values() if not k.deleted
                and (not k.is_private or k.owner == user)
                and (not who or k.owner == who)
                and (not search or search in k.title.lower() or search in k.slug)]
        rows.sort(key=lambda k: (k.latest.created, k.id), reverse=True)
        size = int(body.get("pageSize") or 20)
        if body.get("pageToken"):
            start = _offset(body["pageToken"])
        else:
            start = (int(body.get("page") or 1) - 1) * size
        page = rows[start:start + size]
        out: dict[str, Any] = {"kernels": [k.metadata() for k in page]}
        if start + size < len(rows):
            out["nextPageToken"] = _token(start + size)
        return out

    def get_kernel(self, user: str, body: dict) -> dict:
        kernel, version = self.find_version(user, body)
        return {"metadata": kernel.metadata(),
                "blob": {"source": version.text, "language": kernel.language,
                         "kernelType": kernel.kernel_type, "slug": kernel.slug}}

    # -- account -----------------------------------------------------------------------------------
    def quota(self, user: str, body: dict) -> dict:
        s = self.s
        now = time.time()
        used = s.gpu_used_s + sum(v.gpu_seconds(now) for k in s.kernels.values() for v in k.versions)
        reserved = sum(v.timeout_s - v.gpu_seconds(now) for k in s.kernels.values() for v in k.versions
                       if v.gpu and v.status not in FINISHED)
        refresh = now + 7 * 86400 - (now % (7 * 86400))

        def seconds(value: float) -> str:  # a protobuf Duration in JSON, as kagglesdk reads it
            return f"{max(0.0, value):.3f}s"

        gpu = {"timeUsed": seconds(used), "timeReserved": seconds(reserved),
               "totalTimeAllowed": seconds(s.gpu_quota_s), "minimumTimeAllowed": seconds(s.gpu_quota_s),
               "hasEverRun": used > 0}
        tpu = {"timeUsed": "0s", "timeReserved": "0s", "totalTimeAllowed": "72000s",
               "minimumTimeAllowed": "72000s"}
        return {"quotaRefreshTime": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(refresh)),
                "gpuQuota": gpu, "tpuQuota": tpu}

    def introspect(self, user: str, body: dict) -> dict:
        if body.get("token") == self.s.key:
            return {"active": True, "username": self.s.user, "clientId": "kaggle-cli", "scope": "resources.admin:*",
                    "exp": int(time.time()) + 3600}
        return {"active": False}

