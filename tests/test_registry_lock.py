"""The registry's file lock a batch keeps open (kagg.registry_lock): it and the FileLock every other
kagg process takes on endpoints.json.lock exclude each other, also after the lock file was removed."""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest

from conftest import ROOT, holding, reap
from kagg.batch.commit import GroupCommitRegistry
from kagg.errors import RegistryError
from kagg.model import Endpoint
from kagg.registry import Registry
from kagg.registry_lock import HeldFileLock

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="flock")

HOLD = """
import sys
sys.path.insert(0, {root!r})
from filelock import FileLock
with FileLock({path!r}, thread_local=False):
    print("held", flush=True)
    sys.stdin.readline()
"""


def holder(path: str) -> subprocess.Popen:
    """Another process holding ``path`` with filelock, as another kagg writing the registry does."""
    return holding(HOLD.format(root=str(ROOT), path=path))


def taken_within(lock: HeldFileLock, seconds: float) -> bool:
    got = threading.Event()

    def take() -> None:
        with lock:
            got.set()

    threading.Thread(target=take, daemon=True).start()
    return got.wait(seconds)


def test_held_lock_and_filelock_exclude_each_other(tmp_path):
    path = str(tmp_path / "endpoints.json.lock")
    lock = HeldFileLock(path)
    proc = holder(path)
    try:
        assert not taken_within(lock, 0.5)  # the other process holds it
    finally:
        proc.stdin.close()
        reap(proc)
    assert taken_within(lock, 30)
    with lock:  # and while this one holds it, the other process cannot take it
        probe = subprocess.run([sys.executable, "-c", f"from filelock import FileLock, Timeout\n"
                                f"try:\n    FileLock({path!r}, timeout=0.2).acquire()\nexcept Timeout:\n"
                                "    print('busy')\n"], capture_output=True, text=True, timeout=60)
        assert probe.stdout.strip() == "busy", probe.stderr
        with lock:  # reentrant in its thread
            pass
        assert lock.is_locked
    assert not lock.is_locked
    lock.close()


def test_a_removed_lock_file_is_made_again_and_still_excludes(tmp_path):
    path = tmp_path / "endpoints.json.lock"
    lock = HeldFileLock(str(path))
    with lock:
        pass
    path.unlink()  # someone cleaned up: the descriptor held open now names no file
    proc = holder(str(path))  # another kagg makes a new lock file and holds it
    try:
        assert not taken_within(lock, 0.5)  # the new file is the one locked, not the removed one
    finally:
        proc.stdin.close()
        reap(proc)
    assert taken_within(lock, 30)
    lock.close()


def test_batch_registry_waits_for_another_writer(tmp_path):
    registry = GroupCommitRegistry(tmp_path / "endpoints.json")
    registry.put(Endpoint("a", "local", "http://a/"))
    proc = holder(str(registry.resolved) + ".lock")
    done = threading.Event()
    threading.Thread(target=lambda: (registry.put(Endpoint("b", "local", "http://b/")), done.set()),
                     daemon=True).start()
    try:
        assert not done.wait(0.5)
    finally:
        proc.stdin.close()
        reap(proc)
    assert done.wait(30)
    assert sorted(Registry(registry.path).all()) == ["a", "b"]


def test_batch_registry_made_read_only_meanwhile_is_refused_as_registry_refuses_it(tmp_path):
    """check_writable is cached for a batch, but a registry file made read-only since is still
    refused before it is replaced, with Registry's own message."""
    path = tmp_path / "endpoints.json"
    registry = GroupCommitRegistry(path)
    registry.put(Endpoint("a", "local", "http://a/"))
    before = path.read_bytes()
    path.chmod(0o444)
    with pytest.raises(RegistryError) as mine:
        registry.put(Endpoint("b", "local", "http://b/"))
    with pytest.raises(RegistryError) as theirs:
        Registry(path).check_writable()
    assert str(mine.value) == str(theirs.value) and "read-only" in str(mine.value)
    assert path.read_bytes() == before
    path.chmod(0o640)
    registry.put(Endpoint("b", "local", "http://b/"))
    assert sorted(Registry(path).all()) == ["a", "b"]
    assert path.stat().st_mode & 0o777 == 0o640  # the file keeps the mode it was given
