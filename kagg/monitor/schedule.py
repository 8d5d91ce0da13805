"""The open-loop schedule: request ``i`` is due at ``t0 + i / rate``, whatever happened before.

A closed loop (send, wait, send) slows down when the endpoint stalls and so never measures
the stall: coordinated omission. Here the due times are fixed in advance, the scheduler
sleeps until each one (no busy waiting; see :mod:`.clock` for the precision), and latency is counted from the due time, as wrk2
and vegeta do. When the process falls behind, overdue requests are released at once and
their lateness is part of their latency.
"""

from __future__ import annotations

import asyncio
import math
from typing import Callable, Optional

from kagg.monitor.clock import Waker


class Schedule:
    """Due times for one endpoint: ``count`` requests, or as many as fit in ``duration`` seconds."""

    def __init__(self, rate: float, duration: Optional[float] = None, count: Optional[int] = None):
        if (duration is None) == (count is None):
            raise ValueError("give exactly one of duration and count")
        self.rate = rate
        self.interval = 1.0 / rate
        self.total = count if count is not None else max(1, math.ceil(duration * rate - 1e-9))

    def due(self, t0: float, i: int) -> float:
        return t0 + i * self.interval

    @property
    def span(self) -> float:
        """Seconds from the first due time to one interval after the last."""
        return self.total * self.interval

    async def run(self, t0: float, fire: Callable[[int, float], None]) -> None:
        """Call ``fire(i, due)`` for every request at its due time (loop clock), in order."""
        loop = asyncio.get_running_loop()
        waker = Waker()
        try:
            for i in range(self.total):
                due = self.due(t0, i)
                if due > loop.time():
                    await waker.sleep_until(due)
                elif i % 64 == 0:
                    await asyncio.sleep(0)  # behind schedule: still let responses be read
                fire(i, due)
        finally:
            waker.close()
