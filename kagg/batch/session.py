"""One run of a batch list: read it, check every item, run, keep the state, make the report.

Nothing is changed until the whole list has passed: the file's own problems
and those found by each operation's read-only ``check`` (for deploys, the
full ``kagg.deploy.prepare``) are reported together, each with its line.
"""

from __future__ import annotations

import gc
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Optional

from kagg.batch.checking import MAX_CHECK_WORKERS, check_all
from kagg.batch.commit import GroupCommitRegistry
from kagg.batch.operations import Context, Job, Operation, get_operation
from kagg.batch.report import BatchReport, Display
from kagg.batch.runner import ItemResult, RunOptions, Runner
from kagg.batch.spec import BatchInputError, BatchItem, Overrides, load
from kagg.batch.state import BatchState
from kagg.errors import BadInput
from kagg.model import utc_now
from kagg.registry import Registry

#: the state file is rewritten at most this often while items run (and always at the end)
STATE_SAVE_INTERVAL = 0.25


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
    #: processes that check the list: None chooses (one per idle CPU for a long list of deploys),
    #: 0 or 1 checks in this process
    check_processes: Optional[int] = None


def _record(result: ItemResult, now: str) -> dict:
    return {"status": result.status, "name": result.name, "provider": result.provider,
            "line": result.line, "notebook": result.notebook, "url": result.url,
            "attempts": result.attempts, "detail": result.detail, "error": result.error,
            "updated_at": now}


def run_batch(request: BatchRequest, registry: Registry,
              display_for: Callable[[list[Job]], Display] = lambda jobs: Display(),
              notice: Callable[[str], None] = lambda message: None) -> BatchReport:
    """Check the whole list, then run it; returns the report (also on Ctrl-C).

    Raises :class:`BatchInputError` (exit 2) when the list or an item is invalid;
    then nothing has been changed and no state was written.
    """
    with collecting_less():
        return _run_batch(request, registry, display_for, notice)


#: the youngest generation's threshold while a batch runs (Python's default is 700 allocations)
BATCH_GC_THRESHOLD = 100_000


@contextmanager
def collecting_less() -> Iterator[None]:
    """Fewer garbage collections while a batch runs, as mypy does for its own batch work.

    Checking and deploying hundreds of items allocates millions of objects and frees nearly
    all of them by reference counting, yet the collector ran every 700 allocations: 10 ms a
    batch of 200, each pass holding the GIL that fifty deploy threads need, plus, now and then,
    a pass over every object of the process (30 ms). While a batch runs the young generation is
    collected every ``BATCH_GC_THRESHOLD`` allocations instead. Afterwards the threshold is put
    back, and what the batch left (its results, and the cycles a batch of 200 leaves, about
    6,000 objects) goes to the oldest generation unexamined: its next full pass frees the
    cycles, while with the threshold back at 700 the next allocation would otherwise examine all
    of it, 5 ms before ``run_batch`` could return. What existed before the batch is frozen out of
    the passes while it runs (``freeze``; ``unfreeze`` at the end puts everything in the oldest
    generation), unless the caller froze objects of its own. Nothing stays frozen, so repeated
    batches leak nothing."""
    before = gc.get_threshold()
    freeze = gc.get_freeze_count() == 0  # a caller's own freeze is theirs to undo
    if freeze:
        gc.freeze()
    gc.set_threshold(max(before[0], BATCH_GC_THRESHOLD), *before[1:])
    try:
        yield
    finally:
        if freeze:
            gc.freeze()  # the batch's young objects too (and the young count is 0 again)
            gc.unfreeze()  # all of it into the oldest generation
        gc.set_threshold(*before)


def _run_batch(request: BatchRequest, registry: Registry, display_for: Callable[[list[Job]], Display],
               notice: Callable[[str], None]) -> BatchReport:
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
        jobs, problems = check_all(to_check, operation, ctx, min(request.run.parallel, MAX_CHECK_WORKERS),
                                   request.check_processes)
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

    def records(results: list[ItemResult]) -> dict[str, dict]:
        out, now = dict(keep), utc_now()
        out.update({r.key: _record(r, now) for r in results if r.key not in keep})
        return out

    # the previous run's state goes now, so a run killed before its first item ends is not mistaken
    # for it; the items of this run are recorded as they start (their records would only say "not
    # run", and writing 200 of them would hold up the first deploys)
    state.save(records(list(finished.values())), finished=False)
    display = display_for(jobs)
    saver = _StateWriter(state)
    runner = Runner(operation, ctx, request.run, on_event=display.event,
                    on_change=lambda results: saver.submit(records(results)), on_stop=display.notice,
                    change_interval=STATE_SAVE_INTERVAL)
    display.start(len(jobs) + len(finished), request.operation)
    try:
        outcome = runner.run(jobs, finished)
    finally:
        saver.close()
        display.close()
    complete = not outcome.interrupted and all(r.status in ("ok", "skipped", "failed") for r in outcome.results)
    state.save(records(outcome.results), finished=complete, interrupted=outcome.interrupted)
    report = BatchReport(list=source, operation=request.operation, started_at=started, finished_at=utc_now(),
                         seconds=round(time.monotonic() - clock, 3), parallel=request.run.parallel,
                         items=outcome.results, interrupted=outcome.interrupted, aborted=outcome.aborted,
                         state_file=str(state.path))
    return report


class _StateWriter:
    """Writes the state file while items run, in a thread of its own: the write's fsync would
    otherwise hold up the thread that starts the next items. Only the newest records are
    written; a failed write is left to the final save, which the caller makes itself."""

    def __init__(self, state: BatchState):
        self.state = state
        self._cv = threading.Condition()
        self._latest: Optional[dict] = None
        self._closing = False
        self._thread = threading.Thread(target=self._loop, name="kagg-batch-state", daemon=True)
        self._thread.start()

    def submit(self, records: dict) -> None:
        with self._cv:
            self._latest = records
            self._cv.notify()

    def _loop(self) -> None:
        while True:
            with self._cv:
                self._cv.wait_for(lambda: self._latest is not None or self._closing)
                records, self._latest = self._latest, None
            if records is None:
                return
            try:
                self.state.save(records, finished=False)
            except OSError:
                pass  # the final save reports it

    def close(self) -> None:
        """Stop after the write in progress (the final state is the caller's to write)."""
        with self._cv:
            self._closing = True
            self._latest = None
            self._cv.notify()
        self._thread.join()
