"""The state file of a batch: what each item of a list got to, so ``--resume`` re-runs only the rest.

It lives beside the registry (``.kagg/batch/``), one file per list and
operation, is replaced atomically on every save, and is locked for the length
of a run so that two runs of the same list cannot interleave.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from filelock import FileLock, Timeout

from kagg.atomic import write_bytes_atomic
from kagg.errors import BadInput
from kagg.model import utc_now

VERSION = 1
#: statuses that mean "nothing left to do for this item"
DONE = ("ok", "skipped")


@dataclass
class BatchState:
    """The state file of one (list, operation) pair."""

    path: Path
    list_source: str
    operation: str
    previous: dict[str, dict[str, Any]] = field(default_factory=dict)
    started_at: str = field(default_factory=utc_now)
    _lock: Optional[FileLock] = None

    @classmethod
    def for_list(cls, state_dir: Path, list_source: str, operation: str) -> "BatchState":
        ident = os.path.abspath(list_source) if list_source != "-" else "<stdin>"
        digest = hashlib.sha256(f"{ident}\0{operation}".encode()).hexdigest()[:12]
        stem = Path(list_source).stem if list_source != "-" else "stdin"
        return cls(state_dir / "batch" / f"{stem}-{operation}-{digest}.json", ident, operation)

    # -- locking -------------------------------------------------------------------------------
    def acquire(self) -> None:
        """Hold the list's lock for the run; BadInput if another run holds it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = FileLock(str(self.path) + ".lock", timeout=0)
        try:
            self._lock.acquire()
        except Timeout:
            self._lock = None
            raise BadInput(f"another `kagg batch` is running {self.list_source} ({self.operation}); "
                           "wait for it to finish")

    def release(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    # -- reading -------------------------------------------------------------------------------
    def load(self) -> bool:
        """Read the previous run's state; False if there is none. A damaged file is ignored."""
        try:
            doc = json.loads(self.path.read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError, OSError):
            return False
        if not isinstance(doc, dict) or doc.get("version") != VERSION or not isinstance(doc.get("items"), dict):
            return False
        self.previous = doc["items"]
        return True

    def done(self, key: str) -> Optional[dict[str, Any]]:
        """The previous record of ``key`` if that item needs no more work."""
        record = self.previous.get(key)
        return record if record and record.get("status") in DONE else None

    # -- writing -------------------------------------------------------------------------------
    def save(self, records: dict[str, dict[str, Any]], finished: bool, interrupted: bool = False) -> None:
        """Replace the file atomically with ``records`` (item key -> record)."""
        doc = {"version": VERSION, "list": self.list_source, "operation": self.operation,
               "started_at": self.started_at, "updated_at": utc_now(), "finished": finished,
               "interrupted": interrupted, "items": records}
        # one line per item, written by the C encoder: it is saved while items run
        body = ",\n".join(f"  {json.dumps(k)}: {json.dumps(v, default=str)}" for k, v in records.items())
        head = json.dumps({k: v for k, v in doc.items() if k != "items"})[:-1]
        text = f"{head},\n \"items\": {{\n{body}\n}}}}\n" if records else json.dumps(doc) + "\n"
        write_bytes_atomic(self.path, text.encode("utf-8"))


def write_json_atomic(path: Path, doc: Any) -> None:
    """Temporary file in the same folder, fsync, rename: a reader sees the old or the new file."""
    write_bytes_atomic(path, (json.dumps(doc, indent=2, default=str) + "\n").encode("utf-8"))


