"""The endpoint registry: ``endpoints.json`` (docs/architecture.md, "Registry").

Writes are atomic (temporary file in the same folder, fsync, rename) and
serialized across threads and processes by a :mod:`filelock` lock held for the
whole read-modify-write, so parallel deploys lose nothing and a process killed
mid-write leaves the previous file. A file that does not parse is never
overwritten.
"""

from __future__ import annotations

import json
import os
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional

from kagg.atomic import write_bytes_atomic
from kagg.errors import NotFound, RegistryError
from kagg.model import Endpoint, utc_now

FORMAT_VERSION = 1
DEFAULT_FILENAME = "endpoints.json"


def default_path() -> Path:
    """``$KAGG_REGISTRY`` if set, else ``./endpoints.json``."""
    return Path(os.environ.get("KAGG_REGISTRY") or DEFAULT_FILENAME)


def empty_document() -> dict:
    return {"version": FORMAT_VERSION, "endpoints": {}}


class Registry:
    """A registry file; every method re-reads it, so several processes can share it."""

    def __init__(self, path: Optional[os.PathLike | str] = None):
        self.path = Path(path) if path else default_path()
        self._file_lock = None  # made on first write: importing filelock costs ~25 ms at start-up
        self._thread_lock = threading.RLock()

    @property
    def _lock(self):
        if self._file_lock is None:
            from filelock import FileLock

            self._file_lock = FileLock(str(self.path) + ".lock", thread_local=False)
        return self._file_lock

    @property
    def state_dir(self) -> Path:
        """Where kagg keeps files that belong with this registry (local endpoints, batch state, history)."""
        return self.path.resolve().parent / ".kagg"

    def name_lock(self, name: str):
        """A lock for one endpoint name, held from plan to registry write by deploy and delete,
        so two kagg processes never work on one name at once (other names go on in parallel)."""
        import hashlib

        from filelock import FileLock

        folder = self.state_dir / "locks"
        folder.mkdir(parents=True, exist_ok=True)
        safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in name)[:40]
        digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:12]
        return FileLock(str(folder / f"{safe}-{digest}.lock"), thread_local=False)

    # -- reading --------------------------------------------------------------------------
    def _read(self) -> dict:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return empty_document()
        except IsADirectoryError:
            raise RegistryError(f"registry {self.path} is a directory; pass a file with --registry")
        except OSError as exc:
            raise RegistryError(f"cannot read registry {self.path}: {exc.strerror}")
        if not text.strip():
            return empty_document()
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise RegistryError(
                f"registry {self.path} is not valid JSON (line {exc.lineno}, column {exc.colno}); "
                "kagg will not overwrite it: fix or move the file")
        if not isinstance(doc, dict) or not isinstance(doc.get("endpoints"), dict):
            raise RegistryError(
                f"registry {self.path} does not have the registry format "
                '({"version": 1, "endpoints": {...}}); kagg will not overwrite it')
        if doc.get("version") != FORMAT_VERSION:
            raise RegistryError(
                f"registry {self.path} has format version {doc.get('version')!r}; "
                f"this kagg reads version {FORMAT_VERSION}")
        return doc

    def all(self) -> dict[str, Endpoint]:
        """Every endpoint, by name (sorted)."""
        doc = self._read()
        return {name: Endpoint.from_dict(data) for name, data in sorted(doc["endpoints"].items())}

    def find(self, name: str) -> Optional[Endpoint]:
        data = self._read()["endpoints"].get(name)
        return Endpoint.from_dict(data) if data is not None else None

    def get(self, name: str) -> Endpoint:
        """The endpoint ``name``; :class:`NotFound` (exit 2) naming the registry if absent."""
        endpoint = self.find(name)
        if endpoint is None:
            raise NotFound(f"no endpoint named {name!r} in {self.path}; see `kagg endpoints list`")
        return endpoint

    # -- writing --------------------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[dict[str, dict]]:
        """Lock, read, let the caller change the ``endpoints`` dict, write atomically."""
        with self._thread_lock, self._lock:
            doc = self._read()
            endpoints = doc["endpoints"]
            yield endpoints
            doc["endpoints"] = dict(sorted(endpoints.items()))
            self._write(doc)

    def _write(self, doc: dict) -> None:
        data = (json.dumps(doc, indent=2, sort_keys=False) + "\n").encode("utf-8")
        write_bytes_atomic(self.path.resolve(), data, durable_rename=True)

    def put(self, endpoint: Endpoint) -> Endpoint:
        """Record ``endpoint``, keeping ``created_at`` of an existing entry of that name."""
        with self.transaction() as endpoints:
            old = endpoints.get(endpoint.name)
            if old and old.get("created_at"):
                endpoint.created_at = old["created_at"]
            endpoint.updated_at = utc_now()
            endpoints[endpoint.name] = endpoint.to_dict()
        return endpoint

    def remove(self, name: str) -> Endpoint:
        """Remove ``name``; :class:`NotFound` if it is not there."""
        with self.transaction() as endpoints:
            if name not in endpoints:
                raise NotFound(f"no endpoint named {name!r} in {self.path}; see `kagg endpoints list`")
            return Endpoint.from_dict(endpoints.pop(name))

    def discard(self, name: str) -> None:
        """Remove ``name`` if it is there."""
        with self.transaction() as endpoints:
            endpoints.pop(name, None)

    def check(self) -> None:
        """Raise :class:`RegistryError` now if the file cannot be used (before any work)."""
        self._read()
