"""Group commit for the registry: many threads' ``put`` calls share one locked, fsynced write.

A registry write is a read, a JSON dump and two fsyncs under a lock, about
10-20 ms with a few hundred entries; fifty deploys finishing together would
queue behind each other for most of a second. Here the first writer becomes
the leader and writes, in one transaction, every endpoint that arrived until
it holds the lock and has read the file; the others wait for it, each woken
once (its entry written, or the lead of the next write handed to it: waking
every waiter after every write kept fifty threads trading the GIL). A deploy
puts twice, its ``pending`` entry before the provider's work and the finished
one after, both on a batch's critical path. ``put`` still returns only once its
endpoint is on disk, so "every deployed endpoint is in the registry" holds
at every moment, as with :meth:`Registry.put`.

Each write encodes the document as :meth:`Registry._write` does
(``json.dumps(doc, indent=2)``, which runs in Python, not C: 8 ms for 200
entries, all of it holding the GIL the other items' threads need), but
reuses the indented text of every entry that has not changed since the last
write: an entry this object wrote is recognised by identity (its dicts are
never changed in place: a write replaces an entry, ``find`` hands out
copies), one read from a file another process wrote by its compact JSON,
which the C encoder makes. The bytes are the same (tests/test_batch_spec.py
compares them with :class:`Registry`'s).

Reads come from the last parse while the file is unchanged (same device,
inode, size, mtime and ctime; every kagg write replaces the file): for checks
(``check``, ``find``), since ``kagg.deploy`` reads the registry several times
per item, which made a batch O(items x registry size), and for a transaction
(under the registry's lock, so the file cannot change while it runs). After
its own write this object keeps the document it wrote as that parse, so the
next reads and writes do not parse the file again (the entries it wrote are
its own: ``put`` makes them). ``find`` gives a copy, checked as
:meth:`Registry.find` checks it; a transaction gets its own dicts of the
document and of the entries, the entries themselves shared.

A thread may also ask to be told when it starts to record a finished
endpoint (:meth:`on_put`): the batch runner frees the item's concurrency slot
then, because the provider's work is over and only kagg's own bookkeeping
remains. The ``pending`` entry a deploy writes *before* the provider's
mutating calls does not count: that ``put`` starts the provider's work.
"""

from __future__ import annotations

import copy
import functools
import json
import os
import stat
import threading
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

from kagg.atomic import write_bytes_atomic
from kagg.errors import RegistryError
from kagg.model import Endpoint, utc_now
from kagg.registry import FORMAT_VERSION, Registry

_compact = json.JSONEncoder(separators=(",", ":")).encode
_indented = json.JSONEncoder(indent=2).encode


class _OneEntry(Registry):
    """A registry whose file would hold just one entry: :meth:`Registry.find` over it checks a
    cached entry exactly as it checks one read from the file, with the same messages."""

    def __init__(self, path, name: str, data: dict):
        super().__init__(path)
        self._doc = {"version": FORMAT_VERSION, "endpoints": {name: data}}

    def _read(self) -> dict:
        return self._doc


@dataclass
class _Pending:
    endpoint: Endpoint
    done: bool = False
    error: Optional[BaseException] = None
    #: set once, when the entry is written (``done``) or when its thread is to write the queue
    woken: threading.Event = field(default_factory=threading.Event)


class GroupCommitRegistry(Registry):
    """A :class:`Registry` whose concurrent ``put`` calls are written together."""

    def __init__(self, path=None):
        super().__init__(path)
        self._queue_lock = threading.Lock()
        self._queue: list[_Pending] = []
        self._leading = False
        self._hooks = threading.local()
        self._snapshot: Optional[tuple[object, dict]] = None  # (file identity, parsed document)
        self.commits = 0  # how many writes the puts took (for tests and the benchmark)
        self._folders: dict[str, Path] = {}  # the state and lock folders, made (see _made_once)
        self._folder: Optional[int] = None  # the registry's folder, held open (see _folder_fd)
        self._mode: Optional[int] = None  # the file's permission bits at the last stat (None: no file)
        self._writable: Optional[tuple] = None  # the file's (mode, owner) when check_writable last passed
        #: name -> (the entry dict last encoded, its compact JSON, its line of the file)
        self._lines: dict[str, tuple[dict, str, str]] = {}

    # -- one batch's registry file does not move -------------------------------------------------
    #: resolved once: every lock, read and write of an item resolves the path again, several
    #: system calls each time, and a batch does not follow a registry moved while it runs
    resolved = functools.cached_property(Registry.resolved.fget)
    #: made once from the resolved path: every item's check and deploy asks for it
    state_dir = functools.cached_property(Registry.state_dir.fget)

    def _new_file_lock(self, path: str):
        """The registry's file lock, its file kept open for the batch (kagg.registry_lock): the
        same lock other kagg processes take, in four system calls a write instead of about 140."""
        from kagg import registry_lock

        return registry_lock.HeldFileLock(path) if registry_lock.AVAILABLE else super()._new_file_lock(path)

    def _made_once(self, key: str, make: Callable[[], Path]) -> Path:
        """The folder ``make`` makes (and checks), made again only if it has gone: a batch asks
        for the state and lock folders for each item's name lock."""
        ready = self._folders.get(key)
        if ready is None or not os.path.isdir(ready):
            ready = self._folders[key] = make()
        return ready

    def ensure_state_dir(self) -> Path:
        return self._made_once("state", super().ensure_state_dir)

    def locks_dir(self) -> Path:
        return self._made_once("locks", super().locks_dir)

    def _folder_fd(self) -> Optional[int]:
        """The registry's folder, opened once for the batch's writes (None where ``dir_fd`` calls
        do not exist, or while the folder is not there yet: the first write makes it)."""
        if self._folder is None and os.open in os.supports_dir_fd and os.replace in os.supports_dir_fd \
                and hasattr(os, "O_DIRECTORY"):
            try:
                fd = os.open(self.resolved.parent, os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_CLOEXEC", 0))
            except OSError:
                return None
            self._folder = fd
            weakref.finalize(self, os.close, fd)
        return self._folder

    def check_writable(self) -> None:
        """The folders are checked once per batch, the file again only when its mode or owner
        changed: one system call instead of four for each item's check and each write, each a
        wait for the GIL while fifty threads want it. A folder made read-only while the batch
        runs fails the next write, which then says why (see :meth:`_why`)."""
        mark = self._mode_and_owner()
        if self._writable is None or mark != self._writable:
            super().check_writable()
            self._writable = mark

    def _mode_and_owner(self) -> Optional[tuple]:
        try:
            st = os.stat(self.resolved)
        except OSError:
            return ("absent",)
        return (st.st_mode, st.st_uid)

    # -- cached reads ------------------------------------------------------------------------------
    def _identity(self) -> object:
        """What tells this file from any other version of it; ``"absent"`` while there is none (a
        batch's first items are checked before anything is written), None if it cannot be told."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            self._mode = None
            return "absent"
        except OSError:
            self._mode = None
            return None
        self._mode = stat.S_IMODE(st.st_mode)
        return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)

    def _still_parsed(self) -> tuple[object, Optional[dict]]:
        """The file's identity now, and the last parse if it was made from that very file."""
        identity = self._identity()
        snapshot = self._snapshot
        if snapshot is not None and identity is not None and snapshot[0] == identity:
            return identity, snapshot[1]
        return identity, None

    def _parsed(self) -> dict:
        identity, doc = self._still_parsed()
        if doc is None:
            doc = super()._read()
            self._snapshot = (identity, doc)
        return doc

    def _read_for_update(self) -> dict:
        """The last parse if the file is still the one it was made from (the lock is held now), else
        the file: the caller replaces or removes entries, so their dicts can be shared."""
        doc = self._still_parsed()[1]
        if doc is None:
            return super()._read()
        doc = dict(doc)
        doc["endpoints"] = dict(doc["endpoints"])
        return doc

    def check(self) -> None:
        self._parsed()

    def find(self, name: str) -> Optional[Endpoint]:
        data = self._parsed()["endpoints"].get(name)
        if data is None:
            return None
        return _OneEntry(self.path, name, copy.deepcopy(data)).find(name)

    def _write(self, doc: dict) -> None:
        """As :meth:`Registry._write` (the same bytes, atomic and durable), then keep the document
        as the last parse: the caller holds the registry's lock, so the file is ours until then."""
        # the last parse stays right for the file it was made from (its identity) until the new
        # file is in place: a find meanwhile (the fsyncs take a while) need not parse the old one.
        # The file keeps its mode (as write_bytes_atomic keeps it), known from the stat made under the lock.
        write_bytes_atomic(self.resolved, self.encode(doc), durable_rename=True, mode=self._mode,
                           folder_fd=self._folder_fd())
        identity = self._identity()
        if isinstance(identity, tuple):
            self._snapshot = (identity, doc)

    def encode(self, doc: dict) -> bytes:
        """``json.dumps(doc, indent=2) + "\\n"`` as UTF-8, the entries' lines reused from earlier writes.

        A write changes a few entries of hundreds: an entry that is the very dict of the last
        encoding keeps its line without a look at its content; another (read from a file another
        process wrote) is compared by its compact JSON, which the C encoder makes."""
        endpoints = doc.get("endpoints")
        if not isinstance(endpoints, dict) or not set(map(type, doc)) <= {str} \
                or not set(map(type, endpoints)) <= {str}:
            return (json.dumps(doc, indent=2) + "\n").encode("utf-8")
        lines = self._lines
        for name, entry in endpoints.items():
            known = lines.get(name)
            if known is None or known[0] is not entry:
                compact = _compact(entry)
                if known is None or known[1] != compact:
                    # JSON text has no raw newline inside a value: indenting it is a replace
                    text = _indented(entry).replace("\n", "\n    ")
                    known = (entry, compact, f"    {_compact(name)}: {text}")
                else:
                    known = (entry, compact, known[2])
                lines[name] = known
        for name in lines.keys() - endpoints.keys():  # only what the file holds now
            del lines[name]
        parts = [lines[name][2] for name in endpoints]
        out = []
        for key, value in doc.items():
            if key == "endpoints":
                body = "{\n" + ",\n".join(parts) + "\n  }" if parts else "{}"
            else:
                body = _indented(value).replace("\n", "\n  ")
            out.append(f"  {_compact(key)}: {body}")
        return ("{\n" + ",\n".join(out) + "\n}\n" if out else "{}\n").encode("utf-8")

    def _why(self, exc: BaseException) -> BaseException:
        """A failed write as :meth:`Registry.check_writable` would have said it (a folder or file
        made read-only since the batch checked it), else ``exc`` itself."""
        if not isinstance(exc, OSError):
            return exc
        self._writable = None
        try:
            super().check_writable()
        except RegistryError as nicer:
            return nicer
        return exc

    # -- group commit ------------------------------------------------------------------------------
    @property
    def queued(self) -> int:
        """How many ``put`` calls are queued for the next write, not yet taken by a leader (for tests)."""
        with self._queue_lock:
            return len(self._queue)

    def on_put(self, hook: Optional[Callable[[], None]]) -> None:
        """Call ``hook`` once, in this thread, when this thread next puts an endpoint that is not
        ``pending`` (the record of finished provider work)."""
        self._hooks.hook = hook

    def put(self, endpoint: Endpoint) -> Endpoint:
        hook = getattr(self._hooks, "hook", None)
        if hook is not None and not endpoint.pending:
            self._hooks.hook = None
            hook()
        pending = _Pending(endpoint)
        with self._queue_lock:
            self._queue.append(pending)
            lead = not self._leading
            self._leading = True
        if not lead:
            pending.woken.wait()  # each waiter wakes once: written, or handed the lead
            lead = not pending.done
        if lead:
            try:
                self._commit()
            finally:
                self._hand_on()
        if pending.error is not None:
            raise pending.error
        return endpoint

    def _hand_on(self) -> None:
        """After a write: the first put queued meanwhile leads the next one (else nobody leads)."""
        with self._queue_lock:
            if self._queue:
                self._queue[0].woken.set()
            else:
                self._leading = False

    def _take(self) -> list[_Pending]:
        with self._queue_lock:
            batch, self._queue = self._queue, []
        return batch

    def _commit(self) -> None:
        """One transaction for every put queued by the time the file is locked and read (the
        leader's own among them), with :meth:`Registry.put`'s rule for ``created_at``."""
        batch: Optional[list[_Pending]] = None
        try:
            with self.transaction() as endpoints:
                batch = self._take()
                for pending in batch:
                    endpoint = pending.endpoint
                    old = endpoints.get(endpoint.name)
                    if isinstance(old, dict) and isinstance(old.get("created_at"), str):
                        endpoint.created_at = old["created_at"]
                    endpoint.updated_at = utc_now()
                    endpoints[endpoint.name] = endpoint.to_dict()
            self.commits += 1
        except BaseException as exc:
            if batch is None:
                batch = self._take()
            error = self._why(exc)
            for pending in batch:
                pending.error = error
            if error is exc:
                raise
            raise error from exc
        finally:
            for pending in batch or ():
                pending.done = True
                pending.woken.set()
