"""Atomic file writes: a reader (or a crash) sees the old file or the new one, never half of one.

The registry, batch state and reports, downloaded notebooks and preprocessed notebooks are
all written this way: a temporary file in the same folder, fsync, rename. The new file gets
the permissions a plain ``open(path, "w")`` would leave: an existing file keeps its mode, a
new one gets ``0666 & ~umask`` (unless the caller asks for a mode).

Files named after user input (a batch item's name under ``-o DIR``) go through
:func:`component_problem` and :func:`inside`, so a name cannot write outside its folder.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Optional

from kagg.errors import BadInput

#: Tries at a free temporary name before giving up (each is 48 random bits).
_TEMP_ATTEMPTS = 100


def write_bytes_atomic(path: Path, data: bytes, durable_rename: bool = False, mode: Optional[int] = None,
                       within: Optional[Path] = None, folder_fd: Optional[int] = None) -> None:
    """Write ``data`` to ``path`` atomically; ``durable_rename`` also fsyncs the folder, so the
    rename itself survives a power cut (the registry wants that; a report does not).

    ``mode`` None: an existing file keeps its permission bits, a new one gets what the umask
    allows (``0666 & ~umask``, as ``open()``); an explicit mode (``0o600`` for a file that holds
    secrets) is set exactly, and the data is never readable with more than it.
    ``within``: refuse (BadInput) a ``path`` that resolves outside that folder (``..``, a symlink).
    ``folder_fd``: ``path``'s folder, held open by the caller (a batch writing its registry a
    hundred times): every call is made relative to it, and it is not opened again to be fsynced.
    """
    path = Path(path)
    if within is not None:
        inside(within, path)
    folder = path.parent
    target = str(path) if folder_fd is None else path.name  # names are relative to folder_fd if given
    if mode is None:
        try:
            mode = stat.S_IMODE(os.stat(target, dir_fd=folder_fd).st_mode)
        except OSError:  # no file yet (or one we cannot stat): the umask decides
            mode = None
    try:
        fd, tmp = _create_temp(folder, path.name, 0o666 if mode is None else 0o600, folder_fd)
    except FileNotFoundError:  # the folder is not there yet (only then is it made: one call less a write)
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = _create_temp(folder, path.name, 0o666 if mode is None else 0o600, folder_fd)
    try:
        try:
            if mode is not None:
                _set_mode(fd, tmp, mode)
            view = memoryview(data)
            while view:  # os.write, not a buffered file: no fstat, lseek or ioctl a write
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, target, src_dir_fd=folder_fd, dst_dir_fd=folder_fd)
    except BaseException:
        try:
            os.unlink(tmp, dir_fd=folder_fd)
        except FileNotFoundError:
            pass
        raise
    if durable_rename:
        try:
            dfd = os.open(folder, os.O_RDONLY) if folder_fd is None else folder_fd
            try:
                os.fsync(dfd)
            finally:
                if dfd != folder_fd:
                    os.close(dfd)
        except OSError:
            pass


def _create_temp(folder: Path, name: str, permissions: int, folder_fd: Optional[int] = None) -> tuple[int, str]:
    """A new, empty file beside the target, created with ``permissions`` (the umask applies);
    its name is relative to ``folder_fd`` when one is given.

    ``tempfile.mkstemp`` always creates 0600, which is why it is not used.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)
    for _ in range(_TEMP_ATTEMPTS):
        temp = f".{name}.{os.urandom(6).hex()}.tmp"
        tmp = str(folder / temp) if folder_fd is None else temp
        try:
            return os.open(tmp, flags, permissions, dir_fd=folder_fd), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary file name in {folder}")


def _set_mode(fd: int, tmp: str, mode: int) -> None:
    if hasattr(os, "fchmod"):
        os.fchmod(fd, mode)
    else:  # Windows before Python 3.13
        os.chmod(tmp, mode)


def component_problem(name: str) -> Optional[str]:
    """Why ``name`` cannot be used as one file or folder name inside another folder, or None.

    It must be a single plain path component on every system kagg runs on: not empty, not
    ``.`` or ``..``, no ``/`` or ``\\``, no drive (``C:``), no control characters.
    """
    if not isinstance(name, str) or not name:
        return "it is empty"
    if name in (".", ".."):
        return f"{name!r} names a folder, not an entry in it"
    if "/" in name or "\\" in name:
        return "it holds a path separator"
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        return "it holds a control character"
    if name != name.strip():
        return "it starts or ends with white space"
    windows = PureWindowsPath(name)
    if windows.drive or windows.anchor or windows.parts != (name,) or PurePosixPath(name).parts != (name,):
        return "it is not a plain file name (a drive or a path)"
    if len(name.encode("utf-8", "surrogateescape")) > 255:
        return "it is longer than 255 bytes"
    return None


def inside(folder: Path, path: Path) -> Path:
    """``path`` resolved, if it lies inside ``folder`` (resolved too); else BadInput.

    Symlinks are followed, so a link inside ``folder`` that points elsewhere is refused.
    """
    base = Path(folder).resolve()
    resolved = Path(path).resolve()
    if resolved == base or not resolved.is_relative_to(base):
        raise BadInput(f"refusing to write {path}: it resolves to {resolved}, outside {folder}")
    return resolved
