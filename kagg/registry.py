"""The endpoint registry: ``endpoints.json`` (docs/architecture.md, "Registry").

Writes are atomic (temporary file in the same folder, fsync, rename) and
serialized across threads and processes by a :mod:`filelock` lock beside the
resolved file, held for the whole read-modify-write, so parallel deploys lose
nothing and a process killed mid-write leaves the previous file. A file that
does not parse is never overwritten, a file the user made read-only is never
replaced, and a failing command creates nothing.

The registry is input too (a team commits and edits it): every entry is
validated when read (:mod:`kagg.registry_entries`); a bad one is named in one
line, the others keep working, and ``kagg endpoints rm BAD`` removes it.
"""

from __future__ import annotations

import json
import os
import stat
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional

from kagg.atomic import write_bytes_atomic
from kagg.errors import NotFound, RegistryError
from kagg.model import Endpoint, utc_now
from kagg.registry_entries import entry_problem

FORMAT_VERSION = 1
DEFAULT_FILENAME = "endpoints.json"


def default_path() -> Path:
    """``$KAGG_REGISTRY`` if set, else ``./endpoints.json``."""
    return Path(os.environ.get("KAGG_REGISTRY") or DEFAULT_FILENAME)


def empty_document() -> dict:
    return {"version": FORMAT_VERSION, "endpoints": {}}


def _stat(path: Path) -> Optional[os.stat_result]:
    """``os.stat(path)``, None where there is nothing (or nothing this user may look at)."""
    try:
        return os.stat(path)
    except (OSError, ValueError):
        return None


def make_private_dir(path: Path) -> Path:
    """Create ``path`` (and missing parents up to an existing folder) readable by this user only."""
    missing = []
    at = path
    while not at.exists():
        missing.append(at)
        at = at.parent
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=0o700)
        except FileExistsError:
            continue
        os.chmod(folder, 0o700)  # mkdir's mode is filtered by the umask
    return path


class Registry:
    """A registry file; every method re-reads it, so several processes can share it."""

    def __init__(self, path: Optional[os.PathLike | str] = None):
        self.path = Path(path) if path else default_path()
        self._file_lock = None  # made on first write: importing filelock costs ~25 ms at start-up
        self._thread_lock = threading.RLock()

    @property
    def resolved(self) -> Path:
        """The file itself, through any symlink: what is written, and what the lock sits beside."""
        return self.path.resolve()

    @property
    def _lock(self):
        if self._file_lock is None:
            self._file_lock = self._new_file_lock(str(self.resolved) + ".lock")
        return self._file_lock

    def _new_file_lock(self, path: str):
        """The lock of the registry's ``.lock`` file across processes (threads: ``_thread_lock``)."""
        from filelock import FileLock

        return FileLock(path, thread_local=False)

    @property
    def state_dir(self) -> Path:
        """Where kagg keeps the files of this registry's endpoints (local servers, batch state,
        history): ``.kagg/`` beside ``endpoints.json``; another registry file in the same folder
        gets its own ``.kagg/registries/<file name>/``, so two registries never share state."""
        resolved = self.resolved
        base = resolved.parent / ".kagg"
        return base if resolved.name == DEFAULT_FILENAME else base / "registries" / resolved.name

    def ensure_state_dir(self) -> Path:
        """The state folder, created private to this user (0700) on first use."""
        root = self.resolved.parent / ".kagg"
        if root.is_dir() and not root.is_symlink() and (root.stat().st_mode & 0o077):
            os.chmod(root, 0o700)  # made by an older kagg with the umask's mode
        return make_private_dir(self.state_dir)

    def name_lock(self, name: str):
        """A lock for one endpoint name, held from plan to registry write by deploy and delete,
        so two kagg processes never work on one name at once (other names go on in parallel);
        see :mod:`kagg.namelock`."""
        from kagg.namelock import NameLock

        return NameLock(self.locks_dir(), name)

    def locks_dir(self) -> Path:
        """The folder of the name locks (made private on first use)."""
        return make_private_dir(self.ensure_state_dir() / "locks")

    # -- reading --------------------------------------------------------------------------
    def _read(self) -> dict:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return empty_document()
        except IsADirectoryError:
            raise RegistryError(f"registry {self.path} is a directory; pass a file with --registry")
        except OSError as exc:
            raise RegistryError(f"cannot read registry {self.path}: {exc.strerror}")
        try:
            text = raw.decode("utf-8-sig")  # a BOM, as some editors on Windows write, is fine
        except UnicodeDecodeError as exc:
            raise RegistryError(f"registry {self.path} is not UTF-8 text (byte {exc.start}); "
                                "kagg will not overwrite it: fix or move the file")
        if not text.strip():
            return empty_document()
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise RegistryError(
                f"registry {self.path} is not valid JSON (line {exc.lineno}, column {exc.colno}); "
                "kagg will not overwrite it: fix or move the file")
        except RecursionError:
            raise RegistryError(f"registry {self.path} is nested too deeply to be a registry; "
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

    def _entries(self) -> tuple[dict[str, Endpoint], dict[str, str]]:
        """The valid entries by name, and a one-line problem for each invalid one."""
        good: dict[str, Endpoint] = {}
        bad: dict[str, str] = {}
        for key, data in sorted(self._read()["endpoints"].items()):
            problem = entry_problem(key, data)
            if problem is None:
                good[key] = Endpoint.from_dict(data)
            else:
                bad[key] = problem
        return good, bad

    def all(self) -> dict[str, Endpoint]:
        """Every valid endpoint, by name (sorted); see :meth:`problems` for the others."""
        return self._entries()[0]

    def problems(self) -> dict[str, str]:
        """Entries that cannot be used, each with what is wrong with it."""
        return self._entries()[1]

    def find(self, name: str) -> Optional[Endpoint]:
        """The entry ``name``, None if absent; :class:`RegistryError` if it is there but invalid."""
        data = self._read()["endpoints"].get(name)
        if data is None:
            return None
        problem = entry_problem(name, data)
        if problem is not None:
            raise RegistryError(f"{problem} in {self.resolved}; kagg will not act on it: fix it, or remove it "
                                f"with `kagg endpoints rm {name}`")
        return Endpoint.from_dict(data)

    def get(self, name: str) -> Endpoint:
        """The endpoint ``name``; :class:`NotFound` (exit 2) naming the registry if absent."""
        endpoint = self.find(name)
        if endpoint is None:
            raise self._not_found(name)
        return endpoint

    def _not_found(self, name: str) -> NotFound:
        return NotFound(f"no endpoint named {name!r} in {self.resolved}; see `kagg endpoints list` "
                        "(the registry is ./endpoints.json of the working folder unless --registry or "
                        "$KAGG_REGISTRY names another)")

    # -- writing --------------------------------------------------------------------------
    def check_writable(self) -> None:
        """Raise :class:`RegistryError` now if a write would fail, before any work is done:
        a folder kagg cannot write in, or a file the user made read-only. A missing folder is
        made by the first write, so this makes nothing."""
        target = self.resolved
        folder = target.parent
        while True:  # the nearest folder that exists: missing ones are made on the first write
            folder_stat = _stat(folder)
            if folder_stat is not None or folder == folder.parent:
                break
            folder = folder.parent
        if folder_stat is None or not stat.S_ISDIR(folder_stat.st_mode):
            raise RegistryError(f"registry {self.path} cannot be made: {folder} is not a folder")
        if not os.access(folder, os.W_OK | os.X_OK) or not folder_stat.st_mode & 0o222:
            raise RegistryError(f"cannot write in {folder}, the folder of registry {self.path}; "
                                "pass a --registry in a folder you can write to")
        target_stat = _stat(target)  # a read-only file (no write bit for anyone) is the user's choice
        if target_stat is not None and (not os.access(target, os.W_OK) or not target_stat.st_mode & 0o222):
            raise RegistryError(f"registry {self.path} is read-only; kagg will not replace it "
                                "(make it writable, or pass another --registry)")

    @contextmanager
    def transaction(self) -> Iterator[dict[str, dict]]:
        """Lock, read, let the caller change the ``endpoints`` dict, write atomically."""
        self.check_writable()
        with self._thread_lock, self._lock:
            doc = self._read_for_update()
            endpoints = doc["endpoints"]
            yield endpoints
            doc["endpoints"] = dict(sorted(endpoints.items()))
            self._write(doc)

    def _read_for_update(self) -> dict:
        """The document a transaction changes, read with the lock held."""
        return self._read()

    def _write(self, doc: dict) -> None:
        data = (json.dumps(doc, indent=2, sort_keys=False) + "\n").encode("utf-8")
        write_bytes_atomic(self.resolved, data, durable_rename=True)

    def put(self, endpoint: Endpoint) -> Endpoint:
        """Record ``endpoint``, keeping ``created_at`` of an existing entry of that name."""
        with self.transaction() as endpoints:
            old = endpoints.get(endpoint.name)
            if isinstance(old, dict) and isinstance(old.get("created_at"), str):
                endpoint.created_at = old["created_at"]
            endpoint.updated_at = utc_now()
            endpoints[endpoint.name] = endpoint.to_dict()
        return endpoint

    def remove(self, name: str) -> Optional[Endpoint]:
        """Remove ``name`` (an invalid entry too: that is how one is repaired); returns the
        removed endpoint, or None for an invalid entry. :class:`NotFound` if it is not there."""
        with self.transaction() as endpoints:
            if name not in endpoints:
                raise self._not_found(name)
            data = endpoints.pop(name)
        return Endpoint.from_dict(data) if entry_problem(name, data) is None else None

    def discard(self, name: str) -> None:
        """Remove ``name`` if it is there."""
        with self.transaction() as endpoints:
            endpoints.pop(name, None)

    def check(self) -> None:
        """Raise :class:`RegistryError` now if the file cannot be read (before any work)."""
        self._read()
