"""kagg.batch.slots: the ``--parallel`` slots and per-provider caps that worker threads take themselves."""

from __future__ import annotations

import threading

import pytest

from conftest import wait_until
from kagg.batch.runner import RunOptions
from kagg.batch.slots import Slots, Stopped


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
