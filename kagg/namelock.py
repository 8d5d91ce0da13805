"""One lock per endpoint name, across threads and processes (:meth:`Registry.name_lock`).

Deploy and delete hold their name's lock from planning to the registry write. On Linux each
name is one byte of a single file, ``.kagg/locks/names.lock``, locked with an open file
description lock (``F_OFD_SETLKW``: held by this open of the file, so threads of one process
exclude each other too, and closing another descriptor releases nothing). Elsewhere, and where
the file system refuses such locks, each name has a file of its own, locked with
:mod:`filelock`. One file for every name matters for a batch: creating a file costs 0.2 to 0.5
ms of kernel time on a virtual machine's disk, and the first deploy of 200 names would create
200 (benchmarks/bench_batch.py). The byte is the name's sha256, so two names sharing one is as
likely as a hash collision.
"""

from __future__ import annotations

import errno
import hashlib
import os
import struct
from pathlib import Path
from typing import Any, Optional

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

#: the file that holds every name's byte
SHARED_FILE = "names.lock"
_OFD = fcntl is not None and hasattr(fcntl, "F_OFD_SETLKW")
#: errors that mean "no such locks here" (an old kernel, a file system without them), not "held"
_UNSUPPORTED = {errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOLCK,
                getattr(errno, "ENOTSUP", errno.EOPNOTSUPP)}


def _flock_struct(kind: int, offset: int) -> bytes:
    """``struct flock`` for one byte at ``offset`` (l_type, l_whence, l_start, l_len, l_pid)."""
    return struct.pack("@hhqqi", kind, os.SEEK_SET, offset, 1, 0).ljust(32, b"\0")


def name_digest(name: str) -> str:
    return hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()


class NameLock:
    """The lock of ``name`` among the locks in ``folder``, for one ``with`` block at a time."""

    def __init__(self, folder: Path, name: str):
        self.folder, self.name = folder, name
        self._digest = name_digest(name)
        self._fd: Optional[int] = None
        self._offset = int(self._digest[:14], 16)  # 56 bits: a valid offset anywhere
        self._fallback: Any = None

    @property
    def own_file(self) -> Path:
        """The name's own lock file (where the shared file cannot be used): readable, unique per name."""
        safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in self.name)[:40]
        return self.folder / f"{safe}-{self._digest[:12]}.lock"

    def __enter__(self) -> "NameLock":
        if _OFD:
            flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOFOLLOW", 0)
            fd = os.open(self.folder / SHARED_FILE, flags, 0o600)
            try:
                fcntl.fcntl(fd, fcntl.F_OFD_SETLKW, _flock_struct(fcntl.F_WRLCK, self._offset))
            except OSError as exc:
                os.close(fd)
                if exc.errno not in _UNSUPPORTED:
                    raise
            except BaseException:
                os.close(fd)
                raise
            else:
                self._fd = fd
                return self
        from filelock import FileLock

        self._fallback = FileLock(str(self.own_file), thread_local=False, mode=0o600)
        self._fallback.acquire()
        return self

    def __exit__(self, *exc_info: object) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            try:
                fcntl.fcntl(fd, fcntl.F_OFD_SETLK, _flock_struct(fcntl.F_UNLCK, self._offset))
            finally:
                os.close(fd)  # closing the description releases its locks in any case
        fallback, self._fallback = self._fallback, None
        if fallback is not None:
            fallback.release()
