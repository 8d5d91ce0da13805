"""Following a running kernel: its status and its new log lines, asked for politely.

Kaggle publishes no rate limits, so polls back off from ~10 s to ~60 s (``$KAGG_KAGGLE_POLL``
shortens them in tests); a status change starts again at the short interval. The log is only
asked for once the kernel runs. A kernel still RUNNING well past its session timeout is
reported as stuck (a crashed kernel can stay RUNNING for hours), not followed forever.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Callable, Optional

from kagg.kaggle.client import Kaggle
from kagg.kaggle.jobs import JobId
from kagg.kaggle.settings import PollTimes, poll_times

FINISHED = ("COMPLETE", "ERROR", "CANCEL_ACKNOWLEDGED", "CANCEL_REQUESTED")
#: Kaggle's longest session (CPU and GPU): a run without --timeout is judged against it
DEFAULT_SESSION_S = 12 * 3600


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


def follow(kaggle: Kaggle, job: JobId, on_status: Optional[Callable[[str], None]] = None,
           on_line: Optional[Callable[[str], None]] = None, session_timeout_s: Optional[float] = None,
           poll: Optional[PollTimes] = None, skip_lines: int = 0,
           sleep: Callable[[float], None] = time.sleep) -> FollowResult:
    """Poll ``job`` until it finishes (or is stuck); new log lines go to ``on_line`` as they come."""
    poll = poll or poll_times()
    started = time.monotonic()
    running_since: Optional[float] = None
    limit = stuck_after(session_timeout_s)
    result = FollowResult(job=job, status="")
    shown = skip_lines
    wait = poll.first
    while True:
        status, failure = kaggle.status(job)
        result.polls += 1
        if status != result.status:
            result.status = status
            wait = poll.first
            if on_status:
                on_status(status)
        finished = status in FINISHED
        if status != "QUEUED" or finished:
            lines = log_lines(kaggle.log(job))
            complete = lines if finished else lines[:-1]  # the last line may still be growing
            for line in complete[shown:]:
                if on_line:
                    on_line(line)
            shown = max(shown, len(complete))
            result.log_lines = lines
        if finished:
            result.failure = failure
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
    result.seconds = time.monotonic() - started
    return result
