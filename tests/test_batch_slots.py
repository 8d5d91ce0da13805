"""kagg.batch.slots: the ``--parallel`` slots and per-provider caps that worker threads take themselves."""

from __future__ import annotations

import threading
import time

import pytest

from conftest import wait_until
from kagg.batch.operations import Context, Job, Operation, Outcome
from kagg.batch.runner import MAX_PREPARING_AHEAD, RunOptions, Runner
from kagg.batch.slots import Slots, Stopped
from kagg.batch.spec import BatchItem


def _waiter(slots: Slots, index: int, provider: str, got: list, stopped: list) -> threading.Thread:
    def run() -> None:
        try:
            slots.acquire(index, provider)
            got.append(index)
        except Stopped:
            stopped.append(index)
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_a_freed_slot_goes_to_the_first_waiter_whose_provider_is_under_its_cap():
    slots = Slots(RunOptions(parallel=2, max_per_provider={"kaggle": 1}), threading.Event())
    slots.acquire(0, "kaggle")
    slots.acquire(1, "aws")
    got: list[int] = []
    stopped: list[int] = []
    threads = [_waiter(slots, 2, "kaggle", got, stopped)]
    wait_until(lambda: len(slots._waiting) == 1, what="the first waiter")
    threads.append(_waiter(slots, 3, "aws", got, stopped))
    wait_until(lambda: len(slots._waiting) == 2, what="the second waiter")
    assert slots.release(1)  # an aws slot: kaggle is still at its cap, so the aws job behind it goes
    wait_until(lambda: got == [3], what="the aws waiter")
    assert slots.held()[1]["kaggle"] == 1
    assert slots.release(0)
    wait_until(lambda: got == [3, 2], what="the kaggle waiter")
    assert not slots.release(0)  # it holds nothing now
    for thread in threads:
        thread.join(5)
    assert slots.held()[0] == 2 and not stopped


def test_acquire_is_idempotent_and_stopping_ends_every_wait():
    stopping = threading.Event()
    slots = Slots(RunOptions(parallel=1), stopping)
    slots.acquire(0, "local")
    slots.acquire(0, "local")  # a retry of the same job: it keeps the slot it has
    assert slots.held()[0] == 1
    got: list[int] = []
    stopped: list[int] = []
    thread = _waiter(slots, 1, "local", got, stopped)
    wait_until(lambda: len(slots._waiting) == 1, what="the waiter")
    stopping.set()
    thread.join(5)
    assert stopped == [1] and not got and not slots._waiting
    with pytest.raises(Stopped):
        Slots(RunOptions(parallel=1), stopping).acquire(2, "local")  # nothing starts once stopping


class _Preparing(Operation):
    """A deploy-like operation: local work (counted), then its slot, then cloud work that waits
    for ``gate``; it records how many jobs did their local work at once."""

    name = "preparing"
    waits_for_slot = True

    def __init__(self, gate: threading.Event):
        self.gate = gate
        self.lock = threading.Lock()
        self.preparing = 0
        self.peak_ahead = 0
        self.prepared: list[int] = []

    def check(self, item, ctx):  # not used: the runner gets jobs
        raise NotImplementedError

    def run(self, job, ctx, attempt, step):
        with self.lock:
            self.preparing += 1
            if job.item.index >= 6:  # started once the first six held every slot
                self.peak_ahead = max(self.peak_ahead, self.preparing)
        time.sleep(0.05)
        with self.lock:
            self.preparing -= 1
            self.prepared.append(job.item.index)
        ctx.wait_for_slot()
        self.gate.wait(30)
        return Outcome("ok", "deployed")


def _jobs(count: int) -> list[Job]:
    return [Job(BatchItem(index=i, line=i + 2, where=f"list.csv:{i + 2}", notebook=f"nb{i}.ipynb",
                          name=f"item-{i}", provider="local"), f"item-{i}") for i in range(count)]


def test_jobs_started_ahead_prepare_a_few_at_a_time(tmp_path):
    """Jobs started while every slot is held take turns for their local work (MAX_PREPARING_AHEAD at
    once): fifty preparing at once would take the GIL from the threads handing slots on."""
    from kagg.batch.commit import GroupCommitRegistry

    gate = threading.Event()
    op = _Preparing(gate)
    jobs = _jobs(30)
    runner = Runner(op, Context(GroupCommitRegistry(tmp_path / "endpoints.json")), RunOptions(parallel=6))
    outcome: list = []
    thread = threading.Thread(target=lambda: outcome.append(runner.run(jobs)), daemon=True)
    thread.start()
    try:
        wait_until(lambda: len(op.prepared) >= 12, what="six jobs in the slots and six prepared ahead")
        assert 2 <= op.peak_ahead <= min(MAX_PREPARING_AHEAD, 4)
    finally:
        gate.set()
        thread.join(60)
    assert [r.status for r in outcome[0].results] == ["ok"] * 30


def test_ctrl_c_says_at_once_which_jobs_will_not_run(tmp_path):
    """The first Ctrl-C ends every job not started (and every job waiting for a slot) "not run"
    right away, while the jobs in their slots go on: the display and the state say so before the
    deploys in flight end, whether the jobs ahead had been started yet or not."""
    from kagg.batch.commit import GroupCommitRegistry

    gate = threading.Event()
    op = _Preparing(gate)
    jobs = _jobs(8)
    done: list = []
    runner = Runner(op, Context(GroupCommitRegistry(tmp_path / "endpoints.json")), RunOptions(parallel=2),
                    on_event=lambda e: done.append(e.result) if e.kind == "done" else None)
    outcome: list = []
    thread = threading.Thread(target=lambda: outcome.append(runner.run(jobs)), daemon=True)
    thread.start()
    try:
        wait_until(lambda: runner.slots.held()[0] == 2, what="both slots held")
        runner.interrupt()  # what the SIGINT handler calls
        wait_until(lambda: len(done) == 6, what="six jobs said not run")
        assert {(r.status, r.detail) for r in done} == {("not run", "interrupted before it started")}
        assert {r.index for r in done} == set(range(2, 8)) and not gate.is_set()
    finally:
        gate.set()
        thread.join(60)
    assert [r.status for r in outcome[0].results] == ["ok"] * 2 + ["not run"] * 6
    assert outcome[0].interrupted and not outcome[0].aborted
