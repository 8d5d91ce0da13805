"""Wake at a due time with the kernel timer's precision, not epoll's millisecond.

asyncio rounds every epoll timeout up to a whole millisecond, so a plain
``asyncio.sleep`` wakes 0-1 ms late, and that lateness would be added to every latency
measured from the due time. On Linux a ``timerfd`` armed at the absolute due time wakes
the event loop within microseconds, still without busy waiting. Elsewhere (or if the
timerfd cannot be made) it falls back to ``asyncio.sleep``.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import os
import sys
import time
from typing import Optional

_CLOCK_MONOTONIC = 1  # the clock of time.monotonic() and of the event loop on Linux
_TFD_TIMER_ABSTIME = 1
_TFD_NONBLOCK = os.O_NONBLOCK
_TFD_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


class _Itimerspec(ctypes.Structure):
    _fields_ = [("it_interval", _Timespec), ("it_value", _Timespec)]


def _libc():
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.timerfd_create.argtypes = [ctypes.c_int, ctypes.c_int]
        libc.timerfd_settime.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.POINTER(_Itimerspec),
                                         ctypes.c_void_p]
        return libc
    except (OSError, AttributeError):
        return None


class Waker:
    """``await waker.sleep_until(t)`` for loop times ``t``; one per concurrently sleeping task."""

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._fd: Optional[int] = None
        self._waiter: Optional[asyncio.Future] = None
        libc = _libc()
        if libc is None or time.get_clock_info("monotonic").implementation != "clock_gettime(CLOCK_MONOTONIC)":
            return
        fd = libc.timerfd_create(_CLOCK_MONOTONIC, _TFD_NONBLOCK | _TFD_CLOEXEC)
        if fd < 0:
            return
        self._libc, self._fd = libc, fd
        self._loop.add_reader(fd, self._ready)

    @property
    def precise(self) -> bool:
        return self._fd is not None

    def _ready(self) -> None:
        try:
            os.read(self._fd, 8)
        except BlockingIOError:
            return
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def sleep_until(self, when: float) -> None:
        delay = when - self._loop.time()
        if delay <= 0:
            return
        if self._fd is None:
            await asyncio.sleep(delay)
            return
        spec = _Itimerspec()
        spec.it_value.tv_sec, frac = int(when), when - int(when)
        spec.it_value.tv_nsec = min(999_999_999, int(frac * 1e9))
        if self._libc.timerfd_settime(self._fd, _TFD_TIMER_ABSTIME, ctypes.byref(spec), None) != 0:
            await asyncio.sleep(delay)
            return
        self._waiter = self._loop.create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None

    def close(self) -> None:
        if self._fd is not None:
            self._loop.remove_reader(self._fd)
            os.close(self._fd)
            self._fd = None
