"""The registry file's lock for a long run of writes (a batch's group commit), held open.

Every kagg process locks ``endpoints.json.lock`` around a write with :mod:`filelock`, which
takes ``flock`` on that file. ``FileLock`` opens, checks and closes the file on each use: about
140 system calls and 80 µs a write with filelock 4, and in a batch every one of those calls is
a wait for the GIL that fifty threads want. :class:`HeldFileLock` takes the same ``flock`` on the
same file through one descriptor kept open, so it and ``FileLock`` exclude each other as two
``FileLock`` users do, in four calls (lock, the two stats below, unlock). After taking the lock
it checks that the path still names the file it locked (someone may have removed the lock file
meanwhile), and locks the new one if not.

Only where ``fcntl.flock`` exists (``AVAILABLE``); elsewhere the registry keeps ``FileLock``.
"""

from __future__ import annotations

import os
import threading
import weakref
from typing import Optional

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

#: whether :class:`HeldFileLock` can be used here
AVAILABLE = fcntl is not None

#: what FileLock creates a lock file with (before the umask)
LOCK_FILE_MODE = 0o644


class HeldFileLock:
    """``flock`` of ``path`` through a descriptor opened once (closed with the object).

    Threads of this process share the descriptor, so they would share the ``flock``: a thread
    lock in front of it makes them wait for each other as other processes do. Reentrant."""

    def __init__(self, path: str):
        self.path = path
        self._fd: Optional[int] = None
        self._depth = 0
        self._guard = threading.RLock()
        self._closer: Optional[weakref.finalize] = None

    def _open(self) -> int:
        flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
        fd = os.open(self.path, flags, LOCK_FILE_MODE)
        self._fd = fd
        self._closer = weakref.finalize(self, os.close, fd)
        return fd

    def _close(self) -> None:
        closer, self._closer, self._fd = self._closer, None, None
        if closer is not None:
            closer()

    def acquire(self) -> None:
        self._guard.acquire()
        if self._depth:
            self._depth += 1
            return
        try:
            self._lock_file()
        except BaseException:
            self._guard.release()
            raise
        self._depth = 1

    def _lock_file(self) -> None:
        while True:
            fd = self._fd if self._fd is not None else self._open()
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                here, there = os.fstat(fd), os.stat(self.path)
                same = (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)
            except FileNotFoundError:
                same = False
            except BaseException:
                fcntl.flock(fd, fcntl.LOCK_UN)
                raise
            if same:
                return
            # the lock file was removed (or replaced) since it was opened: lock the one there now
            fcntl.flock(fd, fcntl.LOCK_UN)
            self._close()

    def release(self) -> None:
        if self._depth == 0:
            raise RuntimeError(f"{self.path} is not locked")
        self._depth -= 1
        try:
            if self._depth == 0:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._guard.release()

    @property
    def is_locked(self) -> bool:
        return self._depth > 0

    def close(self) -> None:
        """Close the descriptor (a held lock is released with it); only when it is not held."""
        with self._guard:
            if self._depth:
                raise RuntimeError(f"{self.path} is locked")
            self._close()

    def __enter__(self) -> "HeldFileLock":
        self.acquire()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()
