"""The per-name deploy lock (kagg.namelock): one name at a time across processes and threads,
other names in parallel, and no file per name where open file description locks exist."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest

import kagg.namelock as namelock
from conftest import ROOT, holding
from kagg.namelock import NameLock
from kagg.registry import Registry

HOLD = """
import sys, time
sys.path.insert(0, {root!r})
from kagg.registry import Registry
with Registry({registry!r}).name_lock({name!r}):
    print("held", flush=True)
    sys.stdin.readline()
"""


def holder(registry, name: str) -> subprocess.Popen:
    """Another process holding ``name``'s lock until its stdin is closed."""
    return holding(HOLD.format(root=str(ROOT), registry=str(registry), name=name))


def try_lock(lock: NameLock, seconds: float) -> bool:
    """Whether ``lock`` can be taken within ``seconds`` (a thread waits for it; it is released at once)."""
    got = threading.Event()

    def take() -> None:
        with lock:
            got.set()

    thread = threading.Thread(target=take, daemon=True)
    thread.start()
    return got.wait(seconds)


@pytest.fixture(params=["shared file", "file per name"])
def mode(request, monkeypatch):
    if request.param == "file per name":
        monkeypatch.setattr(namelock, "_OFD", False)
    elif not namelock._OFD:
        pytest.skip("no open file description locks on this system")
    return request.param


def test_a_name_held_by_another_process_waits_and_other_names_do_not(tmp_path):
    registry = Registry(tmp_path / "endpoints.json")
    proc = holder(registry.path, "model-a")
    try:
        assert not try_lock(registry.name_lock("model-a"), 0.5)
        assert try_lock(registry.name_lock("model-b"), 5)
    finally:
        proc.stdin.close()
        proc.wait(timeout=10)
    assert try_lock(registry.name_lock("model-a"), 5)


def test_two_threads_of_one_process_exclude_each_other(tmp_path, mode):
    registry = Registry(tmp_path / "endpoints.json")
    inside: list[int] = []
    overlaps: list[int] = []

    def deploy() -> None:
        for _ in range(20):
            with registry.name_lock("same"):
                inside.append(1)
                if len(inside) > 1:
                    overlaps.append(len(inside))
                time.sleep(0.001)
                inside.pop()

    threads = [threading.Thread(target=deploy) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert overlaps == []


def test_releasing_one_name_keeps_the_others_held(tmp_path, mode):
    """Closing a descriptor of the shared file must not drop the other names' locks (POSIX record
    locks would: they belong to the process)."""
    registry = Registry(tmp_path / "endpoints.json")
    with registry.name_lock("kept"):
        with registry.name_lock("released"):
            pass
        assert not try_lock(registry.name_lock("kept"), 0.3)


def test_locks_make_one_file_not_one_per_name(tmp_path):
    if not namelock._OFD:
        pytest.skip("no open file description locks on this system")
    registry = Registry(tmp_path / "endpoints.json")
    for i in range(30):
        with registry.name_lock(f"model-{i}"):
            pass
    assert [p.name for p in registry.locks_dir().iterdir()] == [namelock.SHARED_FILE]
