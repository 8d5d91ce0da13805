"""Atomic file writes: a reader (or a crash) sees the old file or the new one, never half of one.

The registry, batch state and reports, downloaded notebooks and preprocessed notebooks are
all written this way: a temporary file in the same folder, fsync, rename.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_bytes_atomic(path: Path, data: bytes, durable_rename: bool = False) -> None:
    """Write ``data`` to ``path`` atomically; ``durable_rename`` also fsyncs the folder, so the
    rename itself survives a power cut (the registry wants that; a report does not)."""
    path = Path(path)
    folder = path.parent
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    if durable_rename:
        try:
            dfd = os.open(folder, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
        except OSError:
            pass
