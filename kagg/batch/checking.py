"""Check every item of a batch list (read-only) before anything runs: in this process, or, for
a long list of deploys (CPU work: loading, scanning and converting notebooks), side by side in
forked worker processes, one per idle CPU.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import os
import pickle
import signal
import threading
from typing import Any, Callable, Iterator, Optional

from kagg.batch.operations import Context, Job, Operation
from kagg.batch.runner import join_finished_workers
from kagg.batch.spec import BatchItem, Problem
from kagg.errors import BadInput

#: threads per checking process: checking is mostly CPU (parsing, converting), so threads only
#: overlap URL fetches
MAX_CHECK_WORKERS = 8
#: a list with fewer items to check than this is checked in this process: forking workers costs more
MIN_ITEMS_FOR_PROCESSES = 24


def check_all(items: list[BatchItem], operation: Operation, ctx: Context,
              workers: int = 1, processes: Optional[int] = None) -> tuple[list[Job], list[Problem]]:
    """Run ``operation.check`` on every item (read-only) and collect bad input as problems.

    An item whose check fails for another reason (a network error fetching a URL)
    is kept: its run will try again and report it as failed if it still fails.
    ``workers`` threads per process overlap URL fetches; ``processes`` (None: one per idle
    CPU when that pays, see :func:`check_processes`) check a long list side by side, since
    checking is CPU work that threads of one interpreter cannot share.
    """
    def one(item: BatchItem) -> Job | Problem:
        try:
            return operation.check(item, ctx)
        except BadInput as exc:
            return Problem(item.where, item.line, str(exc))
        except Exception:  # noqa: BLE001 - decided in the run, where it is retried and reported
            return Job(item, item.name or item.label)

    def in_threads(chunk: list[BatchItem]) -> list[Job | Problem]:
        if workers > 1 and len(chunk) > 1 and (operation.heavy_check is False or any(i.is_url for i in chunk)):
            return _map_in_daemon_threads(one, chunk, min(workers, len(chunk)))
        return [one(item) for item in chunk]

    procs = check_processes(items, operation) if processes is None else processes
    if procs > 1 and len(items) > 1:
        # the first item here: it imports and warms what the workers then share (nbformat's
        # schemas, the conversion modules) instead of each worker doing it again
        outcomes = [one(items[0])] + _check_forked(items[1:], operation, ctx, procs, in_threads)
    else:
        outcomes = in_threads(items)
    jobs = [o for o in outcomes if isinstance(o, Job)]
    problems = [o for o in outcomes if isinstance(o, Problem)]
    return jobs, problems + duplicate_names(jobs)


def _map_in_daemon_threads(fn: Callable[[Any], Any], items: list, threads: int) -> list:
    """``[fn(x) for x in items]`` in ``threads`` daemon threads: Ctrl-C stops the wait at once,
    and the process can exit without waiting for a fetch that hangs until its timeout."""
    results: list = [None] * len(items)
    numbers = iter(range(len(items)))
    lock = threading.Lock()
    errors: list[BaseException] = []

    def work() -> None:
        while not errors:
            with lock:
                i = next(numbers, None)
            if i is None:
                return
            try:
                results[i] = fn(items[i])
            except BaseException as exc:  # noqa: BLE001 - re-raised in the calling thread
                errors.append(exc)

    pool = [threading.Thread(target=work, name="kagg-check", daemon=True) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    if errors:
        raise errors[0]
    return results


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def check_processes(items: list[BatchItem], operation: Operation, load: Optional[float] = None) -> int:
    """How many processes should check ``items``: one per idle CPU (the CPUs less
    :func:`current_load`, ``load`` if given) for a long list whose checks are CPU work (deploys), where
    ``fork`` exists (it shares this process's imports) and this process runs no other thread
    (a thread's locks would be copied held); else 1. On CPUs other work keeps busy, a second
    checking process only adds its start and the pickling of what it checked."""
    if not operation.heavy_check or len(items) < MIN_ITEMS_FOR_PROCESSES:
        return 1
    if "fork" not in multiprocessing.get_all_start_methods():
        return 1
    join_finished_workers()
    if threading.active_count() > 1:
        return 1
    return processes_for(len(items), _cpus(), current_load() if load is None else load)


def current_load() -> float:
    """How many CPUs other work keeps busy: the one-minute load average, or, on Linux, fewer if
    fewer tasks than that are running right now (``/proc/loadavg``'s running count, this
    process's own thread left out): the average lags by minutes, and after a busy minute it
    would have a batch started on an idle machine check in one process."""
    try:
        average = os.getloadavg()[0]
    except (AttributeError, OSError):
        return 0.0
    try:
        with open("/proc/loadavg", encoding="ascii") as fh:
            text = fh.read()
    except OSError:
        return average
    return load_from(text, average)


def load_from(proc_loadavg: str, average: float) -> float:
    """The smaller of ``average`` and the tasks running besides this one, from ``/proc/loadavg``'s
    text (``"0.52 0.58 0.59 3/467 12345"``: 3 running); ``average`` if the text says nothing."""
    try:
        running = int(proc_loadavg.split()[3].split("/")[0])
    except (IndexError, ValueError):
        return average
    return min(average, float(max(0, running - 1)))


def processes_for(items: int, cpus: int, load: float) -> int:
    """One process per idle CPU (``cpus - load``, rounded), at least 1, and at least
    ``MIN_ITEMS_FOR_PROCESSES / 2`` items for each."""
    idle = max(1, min(cpus, int(cpus - load + 0.5)))
    return max(1, min(idle, items // (MIN_ITEMS_FOR_PROCESSES // 2)))


#: items a checking process takes from the list at a time
CHECK_CHUNK = 6


def _check_in_worker(operation: Operation, check: Callable[[list[BatchItem]], list], items: list[BatchItem],
                     bounds: list[tuple[int, int]], counter: Any, out: Any) -> None:
    """In a forked worker: check chunks until none is left, sending each as soon as it is done.

    Ctrl-C is the parent's to handle (it stops the workers). A chunk whose outcomes do not
    pickle is not sent: the parent checks it again."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        for k in _claimed(bounds, counter):
            a, b = bounds[k]
            part = [o if isinstance(o, Problem) else operation.portable(o) for o in check(items[a:b])]
            try:
                out.send((k, part))
            except (pickle.PicklingError, TypeError, AttributeError):
                continue
    finally:
        out.close()


def _claimed(bounds: list[tuple[int, int]], counter: Any) -> Iterator[int]:
    """The chunk numbers this process takes: the shared counter hands each chunk to one process,
    so a fast process takes more of the list than a slow one."""
    while True:
        with counter.get_lock():
            k = counter.value
            counter.value = k + 1
        if k >= len(bounds):
            return
        yield k


def _check_forked(items: list[BatchItem], operation: Operation, ctx: Context, procs: int,
                  check: Callable[[list[BatchItem]], list]) -> list[Job | Problem]:
    """``check`` over ``items`` in this process and ``procs - 1`` forked ones, in list order.

    The workers inherit this process as it is (no pickling of the operation or the list);
    only their outcomes travel back, a chunk at a time over a pipe, through
    ``operation.portable``/``restore``; this process takes them in between its own chunks, so
    little is left to receive when the list is done. Chunks a worker did not send back (an
    outcome that does not pickle, a worker killed) are checked here afterwards.
    """
    join_finished_workers()  # an earlier batch's idle workers, still exiting
    fork = multiprocessing.get_context("fork")
    bounds = [(a, min(a + CHECK_CHUNK, len(items))) for a in range(0, len(items), CHECK_CHUNK)]
    parts: dict[int, list] = {}
    readers: list[Any] = []
    workers: list[Any] = []
    try:
        counter = fork.Value("q", 0)
        for _ in range(procs - 1):
            reader, writer = fork.Pipe(duplex=False)
            worker = fork.Process(target=_check_in_worker, args=(operation, check, items, bounds, counter, writer),
                                  name="kagg-check", daemon=True)
            worker.start()
            writer.close()
            readers.append(reader)
            workers.append(worker)
    except OSError:  # no shared memory or no fork allowed here (a container's limits): check here
        for worker in workers:
            worker.terminate()
        return check(items)

    def receive(block: bool) -> None:
        ready = multiprocessing.connection.wait(readers, timeout=None if block else 0)
        for reader in ready:
            try:
                k, part = reader.recv()
            except (EOFError, OSError):  # that worker is done (or gone)
                readers.remove(reader)
                continue
            except Exception:  # noqa: BLE001 - an outcome that does not unpickle here: checked below
                continue
            try:
                parts[k] = [o if isinstance(o, Problem) else operation.restore(o, ctx) for o in part]
            except Exception:  # noqa: BLE001 - checked again below
                pass

    done = False
    try:
        for k in _claimed(bounds, counter):
            a, b = bounds[k]
            parts[k] = check(items[a:b])
            if readers:
                receive(block=False)
        while readers:
            receive(block=True)
        done = True
    except BaseException:  # Ctrl-C: stop the workers now rather than after their chunks
        for worker in workers:
            worker.terminate()
        raise
    finally:
        for reader in readers:
            reader.close()
        for worker in workers:
            # a worker that closed its pipe has sent everything and is exiting (freeing its memory
            # takes it 1-2 ms): multiprocessing reaps it at the next start, or at exit
            worker.join(0 if done else None)
    outcomes: list[Job | Problem] = []
    for k, (a, b) in enumerate(bounds):
        outcomes.extend(parts[k] if k in parts else check(items[a:b]))
    return outcomes


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
