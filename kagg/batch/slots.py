"""The ``--parallel`` slots of a batch and its per-provider caps (see kagg.batch.runner).

Worker threads take a slot themselves, right before their job's first mutating call, and give
it back when the provider's work is done; a freed slot goes straight to the first waiting job
that may take it, so one thread wakes per slot rather than every waiting one.
"""

from __future__ import annotations

import threading
from collections import Counter, deque
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from kagg.batch.runner import RunOptions


class Stopped(Exception):
    """Raised out of a backoff sleep, or a wait for a slot, when the batch is stopping."""


class Slots:
    """The slots and caps of one batch: a freed slot goes to the first waiting job whose provider
    is under its cap, in the order they began waiting."""

    #: how often a waiting thread looks at ``stopping`` (a signal handler cannot notify a condition)
    POLL = 0.2

    def __init__(self, options: "RunOptions", stopping: threading.Event,
                 on_take: Callable[[], None] = lambda: None):
        """``on_take`` is called when a take fills every slot, or its provider's."""
        self.options, self.stopping, self.on_take = options, stopping, on_take
        self._lock = threading.Lock()
        self._holding: dict[int, str] = {}  # job index -> provider
        self._per_provider: Counter[str] = Counter()
        self._waiting: deque[tuple[int, str, threading.Event]] = deque()

    def _may_take(self, provider: str) -> bool:
        return len(self._holding) < self.options.parallel and \
            self._per_provider[provider] < self.options.cap(provider)

    def _take(self, index: int, provider: str) -> None:
        self._holding[index] = provider
        self._per_provider[provider] += 1
        if len(self._holding) >= self.options.parallel or \
                self._per_provider[provider] >= self.options.cap(provider):
            # only a take that fills the slots (or a provider's) lets the scheduler start jobs ahead;
            # waking it for every take had it compete for the GIL with the jobs starting
            self.on_take()

    def held(self) -> tuple[int, Counter[str]]:
        """How many slots are held, in all and by provider (for the scheduler)."""
        with self._lock:
            return len(self._holding), Counter(self._per_provider)

    def acquire(self, index: int, provider: str, on_wait: Callable[[], None] = lambda: None) -> None:
        """Block until job ``index`` holds a slot (at once if it holds one); Stopped if the batch stops."""
        with self._lock:
            if index in self._holding:
                return
            if self.stopping.is_set():
                raise Stopped()
            if self._may_take(provider):  # a waiter that could take it would have been handed it already
                self._take(index, provider)
                return
            granted = threading.Event()
            self._waiting.append((index, provider, granted))
        on_wait()
        while True:
            granted.wait(self.POLL)
            with self._lock:
                if index in self._holding:
                    break
                if self.stopping.is_set():
                    self._waiting = deque(w for w in self._waiting if w[0] != index)
                    raise Stopped()
                granted.clear()  # woken by wake(), not handed a slot
        if self.stopping.is_set():  # handed a slot as the batch stops: give it on, start nothing
            self.release(index)
            raise Stopped()

    def wake(self) -> None:
        """Make every waiting job look at ``stopping`` now (the runner calls it once stopping)."""
        with self._lock:
            for _, _, event in self._waiting:
                event.set()

    def release(self, index: int) -> bool:
        """Give job ``index``'s slot back (to the first waiter that may take it); False if it held none."""
        with self._lock:
            provider = self._holding.pop(index, None)
            if provider is None:
                return False
            self._per_provider[provider] -= 1
            for waiter in list(self._waiting):
                if len(self._holding) >= self.options.parallel:
                    break
                if self._may_take(waiter[1]):
                    self._waiting.remove(waiter)
                    self._take(waiter[0], waiter[1])
                    waiter[2].set()
            return True
