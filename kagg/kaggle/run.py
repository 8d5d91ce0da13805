"""``kagg run NB --kaggle``: check → build → push → follow → download → summary.

Each step is reported through :class:`RunEvents` (the CLI draws them); the result is a
:class:`RunSummary`. A run is a success only if Kaggle says COMPLETE *and* the kernel printed
kagg's end marker (a kernel that died in a way Kaggle calls COMPLETE is a failure). Ctrl-C
while following leaves the kernel running and says how to follow or stop it.
"""

from __future__ import annotations

import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

from kagg.errors import KaggError
from kagg.kaggle import journal
from kagg.kaggle.jobs import JobId, fresh_slug, parse_job

_ERROR_LINE = re.compile(r"^\s*([A-Za-z_][\w.]*(Error|Exception|Interrupt)|Traceback)\b")


@dataclass
class RunRequest:
    notebook: Path
    parameters: dict[str, Any] = field(default_factory=dict)
    device: str = "gpu"
    accelerator: Optional[str] = None
    datasets: list[str] = field(default_factory=list)
    competition: Optional[str] = None
    models: list[str] = field(default_factory=list)
    internet: bool = False
    timeout_s: Optional[int] = None
    resume_from: Optional[str] = None
    force_resume: bool = False
    allow_secrets: bool = False
    wait: bool = True
    out_dir: Optional[Path] = None
    state_dir: Optional[Path] = None     # where the job journal goes (the registry's state folder)
    most_gpu_wait_s: Optional[float] = None


@dataclass
class RunEvents:
    """Callbacks for what happens, as it happens (all optional)."""

    step: Callable[[str, str], None] = lambda name, detail: None
    status: Callable[[str], None] = lambda status: None
    line: Callable[[str], None] = lambda text: None
    note: Callable[[str], None] = lambda text: None


@dataclass
class RunSummary:
    job: Optional[str]
    status: str
    ok: bool
    where: str                           # "kaggle" | "local"
    duration_s: Optional[float] = None
    gpu_time_used_s: Optional[float] = None
    quota_left_s: Optional[float] = None
    out_dir: Optional[str] = None
    files: list[dict] = field(default_factory=list)
    checkpoint: dict = field(default_factory=dict)
    failure: str = ""
    error_lines: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    url: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


class FollowInterrupted(KaggError):
    """Ctrl-C while following: the kernel keeps running on Kaggle (exit 130)."""

    exit_code = 130

    def __init__(self, message: str, job: Optional[JobId]):
        super().__init__(message)
        self.job = job


def error_lines(lines: list[str], most: int = 12) -> list[str]:
    """The notebook's error as the log shows it: from the last traceback (or error line) on."""
    start = None
    for i, line in enumerate(lines):
        if _ERROR_LINE.match(line):
            start = i if start is None or line.lstrip().startswith("Traceback") or i > start + most else start
    if start is None:
        return []
    return [line for line in lines[start:start + most * 3] if line.strip()][-most:]


def checkpoint_note(decision: dict, resume_from: Optional[str]) -> Optional[str]:
    """What to tell the user about the checkpoint decision (a mismatch is never silent)."""
    if not decision:
        return None
    kind = decision.get("decision")
    source = decision.get("source") or resume_from or "the earlier run"
    reason = decision.get("reason") or ""
    if kind == "ignored":
        return f"checkpoint of {source} ignored: {reason}".rstrip(": ")
    if kind == "used":
        return f"resumed from the checkpoint of {source}"
    if kind == "forced":
        return f"checkpoint of {source} used although it does not match (--force-resume): {reason}".rstrip(": ")
    return None


def kernel_request(req: RunRequest, owner: str, slug: str):
    from kagg.kaggle.kernel import KernelRequest

    return KernelRequest(owner=owner, slug=slug, title=slug, parameters=dict(req.parameters), device=req.device,
                         accelerator=req.accelerator, internet=req.internet, timeout_s=req.timeout_s,
                         datasets=list(req.datasets), competition=req.competition, models=list(req.models),
                         resume_from=req.resume_from, force_resume=req.force_resume,
                         allow_secrets=req.allow_secrets)


def write_kernel(bundle, req: RunRequest, slug: str, shown: str, ev: RunEvents) -> Path:
    """Report the bundle's notes and write it to ``OUT/kernel`` (OUT: ``-o``, else
    ``kagg-runs/SLUG``), as ``kagg run`` does on Kaggle and here alike; returns OUT."""
    for note in bundle.notes:
        ev.note(note)
    out_dir = Path(req.out_dir) if req.out_dir else Path("kagg-runs") / slug
    ev.step("build", f"{shown} ({len(bundle.text()) // 1024} KiB)")
    bundle.write(out_dir / "kernel")
    return out_dir


def run_on_kaggle(req: RunRequest, events: Optional[RunEvents] = None) -> RunSummary:
    """The whole run on Kaggle; raises BadInput before anything is pushed, else returns a summary."""
    from kagg.kaggle.client import Kaggle
    from kagg.kaggle.credentials import load_credentials
    from kagg.kaggle.kernel import build_kernel
    from kagg.kaggle.outputs import fetch_outputs
    from kagg.kaggle.push import QueueWaitInterrupted, push_waiting_for_gpu
    from kagg.kaggle.settings import poll_times

    ev = events or RunEvents()
    started = time.monotonic()
    slug = fresh_slug(Path(req.notebook).stem)
    # every local check first (notebook, secrets, parameters, accelerator): a bad notebook or option
    # is reported as such, before credentials are looked for or Kaggle is asked anything
    previous = parse_job(req.resume_from, "--resume-from") if req.resume_from else None
    build_kernel(req.notebook, kernel_request(req, "kagg-check", slug))
    creds = load_credentials()
    kaggle = Kaggle(creds)
    if previous is not None:
        if kaggle.current_version(previous.owner, previous.slug) is None:
            from kagg.errors import NotFound

            raise NotFound(f"--resume-from {req.resume_from}: Kaggle has no such kernel; "
                           "pick one from `kagg kaggle jobs`")
        req.resume_from = previous.kernel
    bundle = build_kernel(req.notebook, kernel_request(req, creds.username, slug))
    quota_before = kaggle.quota()
    gpu = bool(bundle.metadata.get("enable_gpu")) or req.device == "gpu"
    left = (quota_before.get("gpu") or {}).get("time_left") if gpu else None
    if gpu and left is not None and left <= 0:
        from kagg.errors import BadInput

        raise BadInput(f"no GPU quota left this week (refreshes {quota_before.get('refresh_time') or 'weekly'}); "
                       "run with --device cpu, or wait")
    left_text = f", {left / 3600:.1f} h of GPU quota left" if left is not None else ""
    ev.step("check", f"{req.notebook}: notebook, secrets, credentials ({creds.username}){left_text}")
    out_dir = write_kernel(bundle, req, slug, bundle.metadata["id"], ev)

    kernel = bundle.metadata["id"]
    ev.step("push", kernel)
    journal.record(req.state_dir, kernel, "pushing", notebook=str(req.notebook), out_dir=str(out_dir))
    poll = poll_times()
    try:
        job = push_waiting_for_gpu(kaggle, bundle.metadata, bundle.text(), req.timeout_s, on_wait=ev.note,
                                   most_wait_s=req.most_gpu_wait_s, first_s=poll.first, most_s=poll.most)
    except QueueWaitInterrupted:
        journal.record(req.state_dir, kernel, "refused", reason="interrupted while waiting for a GPU session")
        raise FollowInterrupted("interrupted while waiting in kagg's queue for a GPU session: nothing was "
                                "pushed, no GPU time was spent; run the same command again", None) from None
    except KeyboardInterrupt:
        raise FollowInterrupted(f"interrupted while pushing {kernel}; it may have started: check with "
                                f"`kagg kaggle status {kernel}`, stop it with `kagg kaggle stop {kernel}`",
                                None) from None
    except KaggError as exc:
        refused = exc.exit_code == 2  # Kaggle said no: nothing runs; else it may (see `kagg kaggle jobs`)
        journal.record(req.state_dir, kernel, "refused" if refused else "unclear", reason=exc.message)
        raise
    journal.record(req.state_dir, str(job), "pushed", version=job.version)
    url = f"https://www.kaggle.com/code/{job.kernel}"
    summary = RunSummary(job=str(job), status="QUEUED", ok=True, where="kaggle", out_dir=str(out_dir), url=url)
    if not req.wait:
        summary.status = "PUSHED"
        summary.notes = [f"follow it with `kagg kaggle logs {job} -f`"]
        return summary

    from kagg.kaggle.follow import follow

    ev.step("follow", str(job))
    try:
        followed = follow(kaggle, job, on_status=ev.status, on_line=ev.line, session_timeout_s=req.timeout_s,
                          poll=poll)
    except KeyboardInterrupt:
        raise FollowInterrupted(f"stopped following {job}; the kernel keeps running on Kaggle: follow it again "
                                f"with `kagg kaggle logs {job} -f`, stop it with `kagg kaggle stop {job}`",
                                job) from None
    summary.status = followed.status
    if followed.stuck:
        summary.ok = False
        summary.status = "STUCK"
        summary.failure = f"{job} is {followed.failure}; stop it with `kagg kaggle stop {job}`"
    else:
        ev.step("download", str(out_dir))
        try:
            fetched = fetch_outputs(kaggle, job, out_dir, log_lines=followed.log_lines, on_line=ev.note)
        except KeyboardInterrupt:
            raise FollowInterrupted(f"interrupted while downloading the outputs of {job} (it ended "
                                    f"{followed.status}); get them with `kagg kaggle output {job} -o {out_dir}`",
                                    job) from None
        for line in fetched.log_lines[len(followed.log_lines):]:  # what the log stream did not deliver
            ev.line(line)
        summary.files = fetched.files
        judge(summary, followed.status, followed.failure, fetched, req.resume_from)
        for note in summary.notes:
            ev.note(note)
    journal.record(req.state_dir, str(job), "finished", status=summary.status, ok=summary.ok)
    summary.duration_s = round(time.monotonic() - started, 1)
    try:
        after = kaggle.quota()
    except KaggError:
        after = {}
    if gpu:
        used_before = (quota_before.get("gpu") or {}).get("time_used")
        used_after = (after.get("gpu") or {}).get("time_used")
        if used_before is not None and used_after is not None:
            summary.gpu_time_used_s = max(0.0, used_after - used_before)
        summary.quota_left_s = (after.get("gpu") or {}).get("time_left")
    ev.step("summary", summary.status)
    return summary


def judge(summary: RunSummary, status: str, failure: str, fetched, resume_from: Optional[str]) -> None:
    """Success = COMPLETE + end marker + a manifest that says ok; otherwise say which is missing."""
    result = fetched.result
    summary.error_lines = error_lines(fetched.log_lines)
    if result is not None:
        summary.checkpoint = dict(result.checkpoint or {})
        note = checkpoint_note(summary.checkpoint, resume_from)
        if note:
            summary.notes.append(note)
    cause = result.error_line() if result is not None else None
    if status != "COMPLETE":
        summary.ok = False
        detail = cause or failure or (summary.error_lines[-1].strip() if summary.error_lines else "")
        summary.failure = f"the kernel ended {status}" + (f": {detail}" if detail else "")
    elif not fetched.end_marker:
        summary.ok = False
        summary.failure = ("the kernel ended COMPLETE without kagg's end marker: it did not run to the end "
                           f"(see {fetched.log_path})")
    elif result is not None and not result.ok:
        summary.ok = False
        summary.failure = f"the kernel's manifest says {result.status}" + (f": {cause}" if cause else "")


def exit_code(summary: RunSummary) -> int:
    return 0 if summary.ok else 1
