"""Run the jobs of a batch: a thread pool, per-provider caps, retries, fail-fast and Ctrl-C.

``--parallel N`` is N slots (and a provider's cap, its own slots): at most N
jobs make cloud calls at once. A job takes its slot from :class:`Slots`
itself; a deploy only right before the provider's apply (after building,
planning and writing its pending entry), so that work of the next N jobs
overlaps the N deploys in flight instead of following them. The main thread
keeps N such jobs started ahead, never more than twice a provider's cap for
one provider, so a provider capped at 2 never ties up threads that others
could use. A job gives its slot back as soon as the provider's work is done
and only its registry write remains (see kagg.batch.commit). Workers only run
jobs and put events on a queue; the main thread turns them into progress and
state, so display and state need no locks. The first SIGINT stops scheduling
(the jobs not started and those still waiting for a slot end "not run" at once)
and lets in-flight jobs finish; the second abandons them.
"""

from __future__ import annotations

import queue
import signal
import threading
import time
from collections import Counter, deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Optional

from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from kagg.batch.operations import Context, Job, Operation, Outcome
from kagg.batch.slots import Slots, Stopped
from kagg.errors import TRANSIENT_CODES, BadInput, KaggError


def is_transient(exc: BaseException) -> bool:
    """Worth another attempt: marked ``transient``, a dropped connection, or a cloud's throttling/5xx.

    Bad input and ordinary operation failures are permanent: asking again gives the same answer.
    """
    if isinstance(exc, BadInput):
        return False
    marked = getattr(exc, "transient", None)
    if marked is not None:
        return bool(marked)
    if isinstance(exc, (ConnectionError, TimeoutError)):
        return True
    response = getattr(exc, "response", None)  # botocore.exceptions.ClientError, without importing it
    if isinstance(response, dict):
        code = (response.get("Error") or {}).get("Code")
        status = (response.get("ResponseMetadata") or {}).get("HTTPStatusCode") or 0
        return code in TRANSIENT_CODES or status == 429 or status >= 500
    return False


def one_line(exc: BaseException) -> str:
    """A user-facing one-line message; non-kagg exceptions keep their type name."""
    text = str(exc) if isinstance(exc, KaggError) else f"{type(exc).__name__}: {exc}"
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return " ".join(lines)[:500] if lines else type(exc).__name__


@dataclass
class ItemResult:
    """How one item ended; a row of the summary, the report and the state file."""

    index: int
    line: int
    key: str
    name: str
    provider: str
    notebook: Optional[str]
    status: str = "not run"  # ok | skipped | failed | not run
    detail: str = ""
    url: Optional[str] = None
    attempts: int = 0
    seconds: float = 0.0
    error: Optional[str] = None
    output: Any = None
    notes: list[str] = field(default_factory=list)

    @classmethod
    def for_job(cls, job: Job) -> "ItemResult":
        item = job.item
        return cls(item.index, item.line, item.key, job.name, item.provider, item.notebook)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Event:
    """Something a worker reports: ``start``, ``step`` (what it is doing), ``retry``, ``done``."""

    kind: str
    index: int
    attempt: int = 0
    message: str = ""
    result: Optional[ItemResult] = None
    at: float = field(default_factory=time.monotonic)


#: jobs started ahead (every slot held) that do their local work at once. They have until a slot
#: frees, and fifty of them converting, planning and writing at once take the GIL from the
#: threads handing freed slots on, each such wait an idle slot (benchmarks/bench_batch.py)
MAX_PREPARING_AHEAD = 4

#: providers whose accounts cap concurrent work: Kaggle runs 2 GPU sessions at a time (issue 11)
DEFAULT_CAPS = {"kaggle": 2}


@dataclass
class RunOptions:
    """How to run: concurrency, caps, retries."""

    parallel: int = 1
    max_per_provider: dict[str, int] = field(default_factory=dict)  # "*" caps every provider
    retries: int = 2  # extra attempts for transient failures
    backoff: float = 1.0  # first wait in seconds; doubles each retry, with jitter, up to max_backoff
    max_backoff: float = 30.0
    fail_fast: bool = False

    def cap(self, provider: str) -> int:
        default = min(self.parallel, DEFAULT_CAPS.get(provider, self.parallel))
        return self.max_per_provider.get(provider) or self.max_per_provider.get("*") or default


@dataclass
class RunOutcome:
    results: list[ItemResult]
    interrupted: bool = False  # a first Ctrl-C: scheduling stopped, in-flight jobs finished
    aborted: bool = False  # a second Ctrl-C: in-flight jobs were abandoned


#: the names of a batch's worker threads begin with this (see :func:`join_finished_workers`)
WORKER_PREFIX = "kagg-batch-worker"


def join_finished_workers(timeout: float = 5.0) -> None:
    """Wait for the worker threads of batches that have ended in this process to exit.

    A batch returns without joining its idle workers; they exit on their own within
    milliseconds. What must not run beside them (a fork: a thread's locks would be copied
    held) calls this first.
    """
    deadline = time.monotonic() + timeout
    for thread in threading.enumerate():
        if thread.name.startswith(WORKER_PREFIX) and thread is not threading.current_thread():
            thread.join(max(0.0, deadline - time.monotonic()))


def _start_threads(pool: ThreadPoolExecutor, count: int) -> None:
    """Start ``count`` of the pool's threads now. The pool starts one per ``submit`` otherwise, and
    ``Thread.start`` waits for the new thread, which runs its job first: submitting the first N jobs
    would take N jobs' worth of their work before the last of them started."""
    for future in [pool.submit(lambda: None) for _ in range(count)]:
        future.result()


class Runner:
    """Runs jobs with one :class:`Operation`; ``on_event`` and ``on_change`` run in the calling thread."""

    def __init__(self, operation: Operation, ctx: Context, options: RunOptions,
                 on_event: Callable[[Event], None] = lambda e: None,
                 on_change: Callable[[list[ItemResult]], None] = lambda r: None,
                 on_stop: Callable[[str], None] = lambda m: None, change_interval: float = 0.0):
        self.operation, self.ctx, self.options = operation, ctx, options
        self.change_interval = change_interval  # on_change at most this often (seconds)
        self.on_event, self.on_change, self.on_stop = on_event, on_change, on_stop
        self.stopping = threading.Event()  # no new job starts (Ctrl-C, --fail-fast)
        self.aborting = threading.Event()  # stop waiting for the jobs in flight (second Ctrl-C)
        self.interrupted = False
        self._not_started = "interrupted before it started"  # the detail of a job the stop kept from starting
        self.events: "queue.SimpleQueue[Event]" = queue.SimpleQueue()  # from workers to the main thread
        self._notices: "queue.SimpleQueue[str]" = queue.SimpleQueue()
        self._first_start: dict[int, float] = {}  # index -> when its first attempt began
        self._attempts: dict[int, int] = {}
        self._wake = threading.Event()  # a job finished or gave its slot back
        self._released: "queue.SimpleQueue[int]" = queue.SimpleQueue()
        self._finished: "queue.SimpleQueue[Future]" = queue.SimpleQueue()  # jobs' futures, as they end
        self.slots = Slots(options, self.stopping, on_take=self._wake.set)
        self._stop_lock = threading.Lock()
        self._preparing = threading.Semaphore(MAX_PREPARING_AHEAD)
        self._providers: set[str] = set()  # the providers of the jobs to run

    # -- signals --------------------------------------------------------------------------------
    def interrupt(self) -> None:
        """What Ctrl-C does: first stop scheduling, then abandon in-flight jobs.

        Runs inside the signal handler, so it only sets flags; the main loop reports.
        """
        if not self.interrupted:
            self.interrupted = True
            self.stopping.set()
            self._wake.set()  # the main loop tells the jobs waiting for a slot
            self._notices.put("interrupted: finishing the items in progress (Ctrl-C again to abort them)")
        else:
            self.aborting.set()

    def _fail_fast(self, result: ItemResult) -> None:
        """``--fail-fast``: the first failure stops the batch, before its slot is given back."""
        with self._stop_lock:
            if not self.stopping.is_set():
                self._not_started = f"not started: {result.name} failed and --fail-fast is set"
                self.stopping.set()
                self._notices.put(f"--fail-fast: {result.name} failed; not starting the other items")
                self._wake.set()

    def _install_sigint(self) -> tuple[bool, Any]:
        """Take over SIGINT for the run; only the main thread can (a library caller may not be it)."""
        if threading.current_thread() is not threading.main_thread():
            return False, None
        return True, signal.signal(signal.SIGINT, lambda signum, frame: self.interrupt())

    # -- one job -------------------------------------------------------------------------------
    def _sleep(self, seconds: float) -> None:
        if self.stopping.wait(seconds):
            raise Stopped()

    def _wait_to_prepare(self) -> None:
        """Block until a job started ahead may do its local work (MAX_PREPARING_AHEAD at once);
        Stopped if the batch stops meanwhile."""
        while not self._preparing.acquire(timeout=Slots.POLL):
            if self.stopping.is_set():
                raise Stopped()
        if self.stopping.is_set():
            self._preparing.release()
            raise Stopped()

    def _run_job(self, job: Job, ahead: bool = False) -> ItemResult:
        """One job, retried while its failures are transient. ``ahead``: started while every slot
        was held, so its local work waits for one of the MAX_PREPARING_AHEAD turns."""
        result = ItemResult.for_job(job)
        started = time.monotonic()
        last_error: list[BaseException] = []
        released: list[bool] = []
        registry = self.ctx.registry

        index, provider = job.item.index, job.item.provider
        took: list[bool] = []

        def acquire() -> None:
            if preparing:
                preparing.pop()
                self._preparing.release()
            self.slots.acquire(index, provider, on_wait=lambda: step("waiting for a free slot"))
            took.append(True)

        def release() -> None:  # the provider is done; only the registry write remains
            released.append(True)
            self.slots.release(index)
            self._released.put(index)
            self._wake.set()

        def should_retry(exc: BaseException) -> bool:  # never again without a slot
            return is_transient(exc) and not self.stopping.is_set() and not released

        def step(message: str) -> None:
            self.events.put(Event("step", job.item.index, result.attempts, message))

        def before_sleep(state) -> None:
            error = state.outcome.exception()
            last_error[:] = [error]
            self.events.put(Event("retry", job.item.index, state.attempt_number,
                                  f"{one_line(error)}; retrying in {state.next_action.sleep:.1f} s"))

        def attempt_once(number: int) -> Outcome:
            result.attempts = number
            self.events.put(Event("start", job.item.index, number))
            return self.operation.run(job, self.ctx, number, step)

        def run_with_retries(first_error: BaseException) -> Outcome:
            """Attempts 2 and on, with tenacity's waits and stop; the first (failed) attempt is
            replayed into it, so it counts and waits exactly as if tenacity had made it."""
            retrying = Retrying(
                stop=stop_after_attempt(self.options.retries + 1),
                wait=wait_exponential_jitter(initial=self.options.backoff, max=self.options.max_backoff,
                                             jitter=self.options.backoff),
                retry=retry_if_exception(should_retry), sleep=self._sleep,
                before_sleep=before_sleep, reraise=True)
            replay = [first_error]
            for attempt in retrying:
                with attempt:
                    if replay:
                        raise replay.pop()
                    outcome = attempt_once(attempt.retry_state.attempt_number)
            return outcome
        if hasattr(registry, "on_put") and not self.options.fail_fast:
            # with --fail-fast the slot waits for the outcome: a failure must stop the batch
            # before a job waiting for that slot can start
            registry.on_put(release)
        self.ctx.slot_waiter(acquire)
        preparing: list[bool] = []
        try:
            if not self.operation.waits_for_slot:
                acquire()
            elif ahead:
                self._wait_to_prepare()
                preparing.append(True)
            try:  # most jobs succeed at once: tenacity is only set up for one that failed
                outcome = attempt_once(1)
            except Exception as exc:  # noqa: BLE001 - tenacity decides (and re-raises) from here
                if self.options.retries < 1 or not should_retry(exc):
                    raise
                outcome = run_with_retries(exc)
            result.status, result.detail, result.url = outcome.status, outcome.detail, outcome.url
            result.output, result.notes = outcome.output, outcome.notes
        except Stopped:
            if not took:  # it never had a slot: nothing was changed
                result.status, result.detail = "not run", self._not_started
            else:
                result.status, result.detail = "failed", "interrupted"
                result.error = (f"interrupted before retrying: {one_line(last_error[0])}" if last_error
                                else "interrupted")
        except BaseException as exc:  # noqa: BLE001 - every failure of an item is reported, not raised
            result.status, result.error = "failed", one_line(exc)
            result.detail = "transient" if is_transient(exc) else ""
            if self.options.fail_fast:
                self._fail_fast(result)
        finally:
            if preparing:
                preparing.pop()
                self._preparing.release()
            self.ctx.slot_waiter(None)
            if hasattr(registry, "on_put"):
                registry.on_put(None)
            if self.slots.release(index):  # ended without the final registry write (failed, skipped)
                self._released.put(index)
                self._wake.set()
        result.seconds = round(time.monotonic() - started, 3)
        return result

    # -- the batch ------------------------------------------------------------------------------
    def run(self, jobs: list[Job], finished: Optional[dict[int, ItemResult]] = None) -> RunOutcome:
        """Run ``jobs``; ``finished`` holds results decided without running (resumed, skipped)."""
        results: dict[int, ItemResult] = dict(finished or {})
        pending: deque[Job] = deque()
        for job in jobs:
            if job.skip is None:
                pending.append(job)
                continue
            skipped = results[job.item.index] = ItemResult.for_job(job)
            skipped.status, skipped.detail = "skipped", job.skip
        running: dict[Future, Job] = {}
        active: set[int] = set()  # indices of the started jobs that hold a slot or wait for one
        per_provider: Counter[str] = Counter()

        def ordered() -> list[ItemResult]:
            return [results[i] for i in sorted(results)]

        def free(job: Job) -> None:
            if job.item.index in active:
                active.discard(job.item.index)
                per_provider[job.item.provider] -= 1

        for result in ordered():
            self.on_event(Event("done", result.index, result.attempts, result=result))
        installed, previous_handler = self._install_sigint()
        # threads beyond the slots: N jobs started ahead, and jobs that gave their slot back may still
        # wait for their registry write
        pool = ThreadPoolExecutor(max_workers=3 * max(1, self.options.parallel), thread_name_prefix=WORKER_PREFIX)
        by_index = {job.item.index: job for job in pending}
        self._providers = {job.item.provider for job in pending}
        # the state was saved just before: the first change is due one interval in, not while the
        # first N jobs start
        last_change = time.monotonic()
        try:
            _start_threads(pool, min(len(pending), self.options.parallel))
            self._submit(pool, pending, running, active, per_provider)
            while running and not self.aborting.is_set():
                self._wake.wait(0.2)
                self._wake.clear()
                while not self._released.empty():
                    free(by_index[self._released.get_nowait()])
                finished_now = []
                while not self._finished.empty():  # not a look at every running future: fifty, each wake
                    future = self._finished.get_nowait()
                    job = running.pop(future)
                    free(job)
                    result = future.result()
                    results[job.item.index] = result
                    finished_now.append(result)
                if not self.stopping.is_set():  # refill first: display and state can wait
                    self._submit(pool, pending, running, active, per_provider)
                else:
                    self.slots.wake()  # jobs waiting for a slot end now, "not run"
                    while pending:  # and so do those never started: said now, not at the end
                        job = pending.popleft()
                        result = results[job.item.index] = self._never_started(job)
                        finished_now.append(result)
                self._drain()
                for result in finished_now:
                    self.on_event(Event("done", result.index, result.attempts, result=result))
                if time.monotonic() - last_change >= self.change_interval:
                    last_change = time.monotonic()
                    self.on_change(ordered() + [self._placeholder(j, "running") for j in running.values()]
                                   + [self._placeholder(j) for j in pending])
        finally:
            if installed:
                signal.signal(signal.SIGINT, previous_handler)
            # every job has ended (or was abandoned): the idle threads exit on their own; waiting for
            # a hundred of them here would hold up the report by 10-15 ms (see join_finished_workers)
            pool.shutdown(wait=False, cancel_futures=True)
        self._drain()
        now = time.monotonic()
        for job in running.values():
            result = self._placeholder(job, "failed")
            result.detail, result.error = "aborted", "abandoned by a second Ctrl-C while in progress"
            result.attempts = self._attempts.get(job.item.index, 0)
            result.seconds = round(now - self._first_start.get(job.item.index, now), 3)
            results[job.item.index] = result
        for job in pending:  # a second Ctrl-C came before the loop saw the first
            results[job.item.index] = self._never_started(job)
        return RunOutcome(ordered(), interrupted=self.interrupted, aborted=self.aborting.is_set())

    def _submit(self, pool: ThreadPoolExecutor, pending: deque, running: dict, active: set,
                per_provider: Counter) -> None:
        """Start the first pending jobs that may go now. A job goes when a slot would be free for
        it, or, once its provider's slots (or all) are held, as one of at most N started ahead
        to do their local work while the slots' work runs. Jobs started ahead wait for the slots
        to fill, so they do not slow down the jobs that will take the slots first (the GIL)."""
        held, held_by = self.slots.held()
        parallel = self.options.parallel
        skipped: list[Job] = []
        blocked: set[str] = set()  # providers none of whose jobs may go now (nor later in this call)
        while pending and len(active) < 2 * parallel:
            if len(active) >= parallel and len(active) - held >= parallel:
                break  # neither a free slot nor a turn ahead, for any provider
            if blocked and len(blocked) >= len(self._providers):
                break
            job = pending.popleft()
            provider = job.item.provider
            if provider in blocked:
                skipped.append(job)
                continue
            cap = self.options.cap(provider=provider)
            ahead, ahead_p = len(active) - held, per_provider[provider] - held_by[provider]
            may_take = len(active) < parallel and per_provider[provider] < cap
            full = held >= parallel or held_by[provider] >= cap
            if not (may_take or (full and ahead < parallel and ahead_p < cap)):
                blocked.add(provider)  # what decides stays so: starting others only fills slots
                skipped.append(job)
                continue
            per_provider[provider] += 1
            active.add(job.item.index)
            future = pool.submit(self._run_job, job, not may_take)
            running[future] = job
            future.add_done_callback(self._ended)
        pending.extendleft(reversed(skipped))

    def _ended(self, future: Future) -> None:
        self._finished.put(future)
        self._wake.set()

    def _drain(self) -> None:
        while not self._notices.empty():
            self.on_stop(self._notices.get_nowait())
        while True:
            try:
                event = self.events.get_nowait()
            except queue.Empty:
                return
            if event.kind == "start":
                self._first_start.setdefault(event.index, event.at)
                self._attempts[event.index] = event.attempt
            self.on_event(event)

    def _never_started(self, job: Job) -> ItemResult:
        """How a job the batch stopped before it started ends: "not run", and why."""
        result = self._placeholder(job)
        result.detail = self._not_started
        return result

    @staticmethod
    def _placeholder(job: Job, status: str = "not run") -> ItemResult:
        result = ItemResult.for_job(job)
        result.status = status
        return result
