"""One run of a batch list: read it, check every item, run, keep the state, make the report.

Nothing is changed until the whole list has passed: the file's own problems
and those found by each operation's read-only ``check`` (for deploys, the
full ``kagg.deploy.prepare``) are reported together, each with its line.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

from kagg.batch.commit import GroupCommitRegistry
from kagg.batch.operations import Context, Job, Operation, get_operation
from kagg.batch.report import BatchReport, Display
from kagg.batch.runner import ItemResult, RunOptions, Runner
from kagg.batch.spec import BatchInputError, BatchItem, Overrides, Problem, load
from kagg.batch.state import BatchState
from kagg.errors import BadInput
from kagg.model import utc_now
from kagg.registry import Registry

#: the state file is rewritten at most this often while items finish (and always at the end)
STATE_SAVE_INTERVAL = 0.25
#: checking is mostly CPU (parsing, converting): threads help only to overlap URL fetches
MAX_CHECK_WORKERS = 8


@dataclass
class BatchRequest:
    """Everything ``kagg batch`` was asked to do."""

    list_path: str
    format: Optional[str] = None
    operation: str = "deploy"
    overrides: Overrides = field(default_factory=Overrides)
    out_dir: Optional[Path] = None
    force: bool = False
    allow_secrets: bool = False
    resume: bool = False
    run: RunOptions = field(default_factory=RunOptions)


def check_all(items: list[BatchItem], operation: Operation, ctx: Context,
              workers: int = 1) -> tuple[list[Job], list[Problem]]:
    """Run ``operation.check`` on every item (read-only) and collect bad input as problems.

    An item whose check fails for another reason (a network error fetching a URL)
    is kept: its run will try again and report it as failed if it still fails.
    """
    def one(item: BatchItem) -> Job | Problem:
        try:
            return operation.check(item, ctx)
        except BadInput as exc:
            return Problem(item.where, item.line, str(exc))
        except Exception:  # noqa: BLE001 - decided in the run, where it is retried and reported
            return Job(item, item.name or item.label)

    if workers > 1 and len(items) > 1:
        with ThreadPoolExecutor(max_workers=min(workers, len(items)), thread_name_prefix="kagg-check") as pool:
            outcomes = list(pool.map(one, items))
    else:
        outcomes = [one(item) for item in items]
    jobs = [o for o in outcomes if isinstance(o, Job)]
    problems = [o for o in outcomes if isinstance(o, Problem)]
    return jobs, problems + duplicate_names(jobs)


def duplicate_names(jobs: list[Job]) -> list[Problem]:
    """Two items that would get the same name (names are unique in a registry).

    Two explicit names were already reported by the list reader; this catches
    names derived from notebooks.
    """
    first: dict[str, Job] = {}
    problems = []
    for job in jobs:
        other = first.setdefault(job.name, job)
        if other is not job and not (job.item.name and other.item.name):
            problems.append(Problem(job.item.where, job.item.line,
                                    f"duplicate name {job.name!r} (also on line {other.item.line}); "
                                    "give one of them a name"))
    return problems


def _record(result: ItemResult) -> dict:
    return {"status": result.status, "name": result.name, "provider": result.provider,
            "line": result.line, "notebook": result.notebook, "url": result.url,
            "attempts": result.attempts, "detail": result.detail, "error": result.error,
            "updated_at": utc_now()}


def run_batch(request: BatchRequest, registry: Registry,
              display_for: Callable[[list[Job]], Display] = lambda jobs: Display(),
              notice: Callable[[str], None] = lambda message: None) -> BatchReport:
    """Check the whole list, then run it; returns the report (also on Ctrl-C).

    Raises :class:`BatchInputError` (exit 2) when the list or an item is invalid;
    then nothing has been changed and no state was written.
    """
    started, clock = utc_now(), time.monotonic()
    registry.check()
    operation = get_operation(request.operation)
    if operation.needs_out_dir and request.out_dir is None:
        raise BadInput(f"--operation {request.operation} writes files: give the folder with -o DIR")
    spec = load(request.list_path, request.format, request.operation, request.overrides)
    state = BatchState.for_list(registry.state_dir, request.list_path, request.operation)
    state.acquire()
    try:
        if request.resume and not state.load():
            notice(f"no earlier run of {spec.source} to resume; running every item")
        finished: dict[int, ItemResult] = {}
        to_check: list[BatchItem] = []
        for item in spec.items:
            record = state.done(item.key) if request.resume else None
            if record is None:
                to_check.append(item)
                continue
            result = ItemResult(item.index, item.line, item.key, record.get("name") or item.label,
                                item.provider, item.notebook, status="skipped",
                                detail="done in an earlier run", url=record.get("url"))
            finished[item.index] = result
        shared = registry if isinstance(registry, GroupCommitRegistry) else GroupCommitRegistry(registry.path)
        ctx = Context(shared, request.out_dir, request.force, request.allow_secrets)
        if to_check:
            notice(f"checking {len(to_check)} item{'s' if len(to_check) != 1 else ''}")
        jobs, problems = check_all(to_check, operation, ctx, min(request.run.parallel, MAX_CHECK_WORKERS))
        problems = spec.problems + problems
        if problems:
            raise BatchInputError(spec.source, problems)
        return _execute(request, spec.source, state, operation, ctx, jobs, finished, display_for,
                        started, clock)
    finally:
        state.release()


def _execute(request: BatchRequest, source: str, state: BatchState, operation: Operation, ctx: Context,
             jobs: list[Job], finished: dict[int, ItemResult], display_for: Callable[[list[Job]], Display],
             started: str, clock: float) -> BatchReport:
    """The changing half: run the jobs while keeping the state file current."""
    keep = {r.key: state.previous[r.key] for r in finished.values() if r.key in state.previous}
    last_save = [0.0]

    def save(results: list[ItemResult], done: bool = False, interrupted: bool = False) -> None:
        records = dict(keep)
        records.update({r.key: _record(r) for r in results if r.key not in keep})
        state.save(records, finished=done, interrupted=interrupted)
        last_save[0] = time.monotonic()

    def on_change(results: list[ItemResult]) -> None:
        if time.monotonic() - last_save[0] >= STATE_SAVE_INTERVAL:
            save(results)

    # the previous run's state goes now, so a run killed before its first item ends is not mistaken for it
    save(list(finished.values()) + [ItemResult.for_job(job) for job in jobs])
    display = display_for(jobs)
    runner = Runner(operation, ctx, request.run, on_event=display.event, on_change=on_change,
                    on_stop=display.notice)
    display.start(len(jobs) + len(finished), request.operation)
    try:
        outcome = runner.run(jobs, finished)
    finally:
        display.close()
    complete = not outcome.interrupted and all(r.status in ("ok", "skipped", "failed") for r in outcome.results)
    save(outcome.results, done=complete, interrupted=outcome.interrupted)
    report = BatchReport(list=source, operation=request.operation, started_at=started, finished_at=utc_now(),
                         seconds=round(time.monotonic() - clock, 3), parallel=request.run.parallel,
                         items=outcome.results, interrupted=outcome.interrupted, aborted=outcome.aborted,
                         state_file=str(state.path))
    return report
