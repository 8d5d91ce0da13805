"""Group commit for the registry: many threads' ``put`` calls share one locked, fsynced write.

A registry write is a read, a JSON dump and two fsyncs under a lock, about
10-20 ms with a few hundred entries; fifty deploys finishing together would
queue behind each other for most of a second. Here the first writer becomes
the leader and writes every endpoint that arrived meanwhile in one
transaction; the others wait for it. ``put`` still returns only once its
endpoint is on disk, so "every deployed endpoint is in the registry" holds
at every moment, as with :meth:`Registry.put`.

Reads for checks (``check``, ``find``) come from the last parse while the
file is unchanged (same inode, mtime and size; kagg's own writes reset it):
``kagg.deploy.prepare`` reads the registry twice per item, which made checking
a list O(items x registry size).

A thread may also ask to be told when its ``put`` starts (:meth:`on_put`):
the batch runner frees the item's concurrency slot then, because the
provider's work is over and only kagg's own bookkeeping remains.
"""

from __future__ import annotations

import copy
import os
import threading
from dataclasses import dataclass
from typing import Callable, Optional

from kagg.model import Endpoint, utc_now
from kagg.registry import Registry


@dataclass
class _Pending:
    endpoint: Endpoint
    done: bool = False
    error: Optional[BaseException] = None


class GroupCommitRegistry(Registry):
    """A :class:`Registry` whose concurrent ``put`` calls are written together."""

    def __init__(self, path=None):
        super().__init__(path)
        self._cv = threading.Condition()
        self._queue: list[_Pending] = []
        self._leading = False
        self._hooks = threading.local()
        self._snapshot: Optional[tuple[object, dict]] = None  # (file identity, parsed document)
        self.commits = 0  # how many writes the puts took (for tests and the benchmark)

    # -- cached reads ------------------------------------------------------------------------------
    def _identity(self) -> object:
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def _parsed(self) -> dict:
        identity = self._identity()
        snapshot = self._snapshot
        if snapshot is not None and identity is not None and snapshot[0] == identity:
            return snapshot[1]
        doc = self._read()
        self._snapshot = (identity, doc)
        return doc

    def check(self) -> None:
        self._parsed()

    def find(self, name: str) -> Optional[Endpoint]:
        data = self._parsed()["endpoints"].get(name)
        return Endpoint.from_dict(copy.deepcopy(data)) if data is not None else None

    def _write(self, doc: dict) -> None:
        self._snapshot = None
        try:
            super()._write(doc)
        finally:
            self._snapshot = None

    # -- group commit ------------------------------------------------------------------------------
    def on_put(self, hook: Optional[Callable[[], None]]) -> None:
        """Call ``hook`` once, in this thread, when this thread's next ``put`` begins."""
        self._hooks.hook = hook

    def put(self, endpoint: Endpoint) -> Endpoint:
        hook = getattr(self._hooks, "hook", None)
        if hook is not None:
            self._hooks.hook = None
            hook()
        pending = _Pending(endpoint)
        with self._cv:
            self._queue.append(pending)
            while self._leading and not pending.done:
                self._cv.wait()
            if not pending.done:
                self._leading = True
                batch, self._queue = self._queue, []
            else:
                batch = []
        if batch:
            try:
                self._commit(batch)
            finally:
                with self._cv:
                    self._leading = False
                    self._cv.notify_all()
        if pending.error is not None:
            raise pending.error
        return endpoint

    def _commit(self, batch: list[_Pending]) -> None:
        """One transaction for the whole batch, with :meth:`Registry.put`'s rule for ``created_at``."""
        try:
            with self.transaction() as endpoints:
                for pending in batch:
                    endpoint = pending.endpoint
                    old = endpoints.get(endpoint.name)
                    if old and old.get("created_at"):
                        endpoint.created_at = old["created_at"]
                    endpoint.updated_at = utc_now()
                    endpoints[endpoint.name] = endpoint.to_dict()
            self.commits += 1
        except BaseException as exc:
            for pending in batch:
                pending.error = exc
            raise
        finally:
            for pending in batch:
                pending.done = True
