"""What the Kaggle stand-in keeps: kernels, their versions (one session each), the calls it saw,
the faults it was told to inject. Plain dataclasses; the server and the runner share them under
the stand-in's lock."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

#: KernelWorkerStatus names as kagglesdk's EnumSerializer writes and reads them
QUEUED, RUNNING, COMPLETE, ERROR = "QUEUED", "RUNNING", "COMPLETE", "ERROR"
CANCEL_ACKNOWLEDGED = "CANCEL_ACKNOWLEDGED"
FINISHED = {COMPLETE, ERROR, CANCEL_ACKNOWLEDGED}
#: machine shapes Kaggle retired and silently replaces (notes: "Accelerators")
RETIRED_SHAPES = {"NvidiaTeslaP100": "NvidiaTeslaT4", "TpuV38": "TpuV5E8"}


@dataclass
class Call:
    """One request the stand-in received (the tests' view of the traffic)."""

    method: str                 # HTTP verb
    path: str                   # path with query
    service_method: str         # "SaveKernel", "IntrospectToken", "output-file", "logs-stream", ...
    body: dict                  # the JSON body (empty for GETs)
    headers: dict[str, str]


@dataclass
class Fault:
    """An answer to give instead of (or after) the real one, ``times`` times."""

    method: str                 # service method name, "output-file", "logs-stream" or "*"
    status: int = 500
    html: bool = False          # an HTML error page, as Kaggle's front end sends for 429/503
    times: int = 1
    accept_first: bool = False  # do the real work (e.g. the push IS accepted), then answer `status`
    drop: bool = False          # close the connection without any reply
    retry_after: Optional[int] = None
    delay_s: float = 0.0        # wait this long first (a hung call, for a client's deadline)


@dataclass
class LogEntry:
    stream_name: str            # "stdout" | "stderr"
    time: float                 # seconds since the session started
    data: str


def kaggle_log(entries: list[LogEntry]) -> str:
    """The log as Kaggle stores it: a JSON array, one entry per line, each line after the first
    starting with a comma (that odd layout is what ``kaggle kernels output`` saves)."""
    if not entries:
        return ""
    lines = [json.dumps({"stream_name": e.stream_name, "time": round(e.time, 6), "data": e.data})
             for e in entries]
    return "[" + "\n,".join(lines) + "]"


@dataclass
class Version:
    """One pushed version of a kernel, and the session that runs it."""

    number: int
    text: str                   # the notebook (or script) text exactly as pushed
    request: dict               # the SaveKernel body
    gpu: bool
    timeout_s: float
    folder: Path                # run folder: in.ipynb, out.ipynb, root/{input,working}
    status: str = QUEUED
    failure_message: str = ""
    log: list[LogEntry] = field(default_factory=list)
    created: float = field(default_factory=time.time)
    started: Optional[float] = None
    ended: Optional[float] = None
    returncode: Optional[int] = None
    stuck: bool = False         # stays RUNNING whatever happens (Kaggle/kaggle-cli #473)
    run: bool = True            # False for a quick save (kernelExecutionType QUICK_SAVE) or a seeded kernel
    pid: Optional[int] = None
    changed: threading.Condition = field(default_factory=threading.Condition)

    @property
    def root(self) -> Path:
        return self.folder / "root"

    @property
    def working(self) -> Path:
        return self.root / "working"

    @property
    def label(self) -> str:
        return f"v{self.number}"

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    def log_text(self) -> str:
        return "".join(e.data for e in self.log)

    def gpu_seconds(self, now: Optional[float] = None) -> float:
        if not self.gpu or self.started is None:
            return 0.0
        return (self.ended or now or time.time()) - self.started

    def notify(self) -> None:
        with self.changed:
            self.changed.notify_all()


@dataclass
class StandInKernel:
    """A kernel on the stand-in: its metadata and every version pushed to it."""

    owner: str
    slug: str
    title: str
    id: int
    language: str
    kernel_type: str
    versions: list[Version] = field(default_factory=list)
    is_private: bool = True
    deleted: bool = False
    created: float = field(default_factory=time.time)

    @property
    def ref(self) -> str:
        return f"{self.owner}/{self.slug}"

    @property
    def latest(self) -> Version:
        return self.versions[-1]

    def version(self, label: Optional[str]) -> Optional[Version]:
        """The version a request names: ``"vN"``, or the latest when absent. A bare ``"N"`` names
        nothing (Kaggle answers it with a 404)."""
        if not label:
            return self.latest
        if not (label.startswith("v") and label[1:].isdigit()):
            return None
        number = int(label[1:])
        return next((v for v in self.versions if v.number == number), None)

    def last_complete(self) -> Optional[Version]:
        done = [v for v in self.versions if v.status == COMPLETE]
        return done[-1] if done else None

    def metadata(self) -> dict[str, Any]:
        """ApiKernelMetadata as camelCase JSON."""
        latest = self.latest
        req = latest.request
        out: dict[str, Any] = {
            "id": self.id, "ref": self.ref, "title": self.title, "author": self.owner, "slug": self.slug,
            "lastRunTime": _iso(latest.started or latest.created), "language": self.language,
            "kernelType": self.kernel_type, "isPrivate": self.is_private, "enableGpu": latest.gpu,
            "enableInternet": bool(req.get("enableInternet", False)),
            "enableTpu": bool(req.get("enableTpu", False)),
            "categoryIds": list(req.get("categoryIds", [])),
            "datasetDataSources": list(req.get("datasetDataSources", [])),
            "kernelDataSources": list(req.get("kernelDataSources", [])),
            "competitionDataSources": list(req.get("competitionDataSources", [])),
            "modelDataSources": list(req.get("modelDataSources", [])),
            "currentVersionNumber": latest.number,
        }
        shape = req.get("machineShape")
        if shape:
            out["machineShape"] = RETIRED_SHAPES.get(shape, shape)
        if req.get("dockerImage"):
            out["dockerImage"] = req["dockerImage"]
        return out


def _iso(ts: float) -> str:
    """A timestamp as kagglesdk's DateTimeSerializer reads it."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts * 1000) % 1000:03d}Z"
