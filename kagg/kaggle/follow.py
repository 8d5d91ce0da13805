"""Following a running kernel: its status, and its log lines as they are written.

Kaggle publishes no rate limits, so status polls back off from ~10 s to ~60 s
(``$KAGG_KAGGLE_POLL`` shortens them in tests); a status change starts again at the short
interval. Log lines come from one long-lived log stream read in a thread (reconnected if it
drops; Kaggle replays it from the start, so events already shown are skipped) — not from
polling. A kernel still RUNNING well past its session timeout is reported as stuck (a
crashed kernel can stay RUNNING for hours), not followed forever.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Optional

from kagg.kaggle.client import Kaggle
from kagg.kaggle.jobs import JobId
from kagg.kaggle.settings import PollTimes, poll_times

FINISHED = ("COMPLETE", "ERROR", "CANCEL_ACKNOWLEDGED", "CANCEL_REQUESTED")
#: Kaggle's longest session (CPU and GPU): a run without --timeout is judged against it
DEFAULT_SESSION_S = 12 * 3600
#: how long the log stream may take to deliver its end once the kernel has finished
DRAIN_S = 30.0


@dataclass
class FollowResult:
    job: JobId
    status: str
    failure: str = ""
    log_lines: list[str] = field(default_factory=list)
    stuck: bool = False
    polls: int = 0
    seconds: float = 0.0


def log_lines(log: str) -> list[str]:
    """Kaggle's log (a JSON list of ``{stream_name, time, data}``) or plain text, as lines."""
    text = log or ""
    stripped = text.strip()
    if stripped.startswith("["):
        try:
            entries = json.loads(stripped)
        except ValueError:
            entries = None
        if isinstance(entries, list):
            text = "".join(str(e.get("data", "")) if isinstance(e, dict) else str(e) for e in entries)
    return text.splitlines()


def stuck_after(session_timeout_s: Optional[float]) -> float:
    """Seconds of RUNNING after which a kernel counts as stuck: its timeout plus a grace."""
    limit = float(session_timeout_s or DEFAULT_SESSION_S)
    return limit + min(600.0, max(1.0, 0.25 * limit))


class LogReader(threading.Thread):
    """Reads the job's log stream, handing each complete line to ``on_line`` once."""

    def __init__(self, kaggle: Kaggle, job: JobId, on_line: Optional[Callable[[str], None]], poll: PollTimes,
                 skip_lines: int = 0):
        super().__init__(daemon=True, name=f"log-{job.slug}")
        self.kaggle, self.job, self.on_line, self.poll = kaggle, job, on_line, poll
        self.lines: list[str] = []
        self.skip_lines = skip_lines
        self.done = threading.Event()     # the stream said END_OF_LOG (or gave the stored log)
        self.failing = False              # the last try at the stream failed: it is waiting to reconnect
        self.stop = threading.Event()     # the follower is done with us
        self._events_seen = 0
        self._partial = ""

    def _emit(self, data: str) -> None:
        text = self._partial + data
        *complete, self._partial = text.split("\n")
        for line in complete:
            self._line(line.rstrip("\r"))

    def _line(self, line: str) -> None:
        self.lines.append(line)
        if self.on_line and len(self.lines) > self.skip_lines:
            self.on_line(line)

    def run(self) -> None:
        wait = self.poll.first
        while not self.stop.is_set():
            try:
                for number, event in enumerate(self.kaggle.log_stream(self.job, idle_s=max(30.0, 2 * self.poll.most))):
                    self.failing = False
                    if number >= self._events_seen:
                        self._events_seen = number + 1
                        self._emit(str(event.get("data", "")))
                        wait = self.poll.first
                    if self.stop.is_set():
                        return
                if self._partial:
                    self._line(self._partial)
                    self._partial = ""
                self.done.set()
                return
            except Exception:  # noqa: BLE001 - the stream is best effort (Transient or other); status decides
                self.failing = True
                if self.stop.wait(wait):
                    return
                wait = min(self.poll.most, wait * self.poll.factor)


def follow(kaggle: Kaggle, job: JobId, on_status: Optional[Callable[[str], None]] = None,
           on_line: Optional[Callable[[str], None]] = None, session_timeout_s: Optional[float] = None,
           poll: Optional[PollTimes] = None, skip_lines: int = 0,
           sleep: Callable[[float], None] = time.sleep) -> FollowResult:
    """Poll ``job`` until it finishes (or is stuck); log lines go to ``on_line`` as they come."""
    poll = poll or poll_times()
    started = time.monotonic()
    running_since: Optional[float] = None
    limit = stuck_after(session_timeout_s)
    result = FollowResult(job=job, status="")
    reader: Optional[LogReader] = None
    wait = poll.first
    try:
        while True:
            status, failure = kaggle.status(job)
            result.polls += 1
            if status != result.status:
                result.status = status
                wait = poll.first
                if on_status:
                    on_status(status)
            if status != "QUEUED" and reader is None:
                reader = LogReader(kaggle, job, on_line, poll, skip_lines)
                reader.start()
            if status in FINISHED:
                result.failure = failure
                drain_until = time.monotonic() + DRAIN_S
                while reader is not None and not reader.done.wait(0.05) and time.monotonic() < drain_until:
                    if reader.failing:  # the stream is down: the output listing has the whole log
                        break
                break
            now = time.monotonic()
            if status == "RUNNING":
                running_since = running_since if running_since is not None else now
                if now - running_since > limit:
                    result.stuck = True
                    result.failure = (f"still RUNNING {now - running_since:.0f} s after it started, past its "
                                      f"{session_timeout_s or DEFAULT_SESSION_S:.0f} s session timeout: "
                                      "it looks stuck (Kaggle keeps crashed kernels RUNNING)")
                    break
            sleep(wait)
            wait = min(poll.most, wait * poll.factor)
    finally:
        if reader is not None:
            reader.stop.set()
    if reader is not None:
        reader.join(0.5)  # a last event in hand is delivered before the lines are counted
        result.log_lines = list(reader.lines)
    result.seconds = time.monotonic() - started
    return result
