"""The registry: format, atomic writes, locking across threads and processes, corrupt files."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from kagg.errors import NotFound, RegistryError
from kagg.model import Endpoint
from kagg.registry import Registry

from conftest import ROOT


def _endpoint(name: str) -> Endpoint:
    return Endpoint(name=name, provider="local", url=f"http://127.0.0.1:1/{name}",
                    source={"path": "nb.ipynb", "sha256": "0" * 64}, artifact_sha256="1" * 64,
                    provider_data={"pid": 1, "port": 1})


def test_empty_registry_in_repo_has_the_format():
    doc = json.loads((ROOT / "endpoints.json").read_text())
    assert doc == {"version": 1, "endpoints": {}}
    assert Registry(ROOT / "endpoints.json").all() == {}


def test_put_get_remove_round_trip(tmp_path):
    reg = Registry(tmp_path / "endpoints.json")
    reg.put(_endpoint("a"))
    first = reg.get("a")
    assert first.url.endswith("/a")
    time.sleep(1.1)
    reg.put(_endpoint("a"))
    second = reg.get("a")
    assert second.created_at == first.created_at and second.updated_at > first.updated_at
    doc = json.loads((tmp_path / "endpoints.json").read_text())
    assert doc["version"] == 1 and set(doc["endpoints"]["a"]) >= {
        "name", "provider", "url", "auth", "region", "source", "artifact_sha256", "created_at",
        "updated_at", "provider_data"}
    assert reg.remove("a").name == "a"
    with pytest.raises(NotFound, match="no endpoint named 'a'"):
        reg.get("a")
    with pytest.raises(NotFound):
        reg.remove("a")


@pytest.mark.parametrize("content", ["{not json", "[]", '{"version": 1}', '{"version": 7, "endpoints": {}}'])
def test_unusable_file_is_refused_and_never_overwritten(tmp_path, content):
    path = tmp_path / "endpoints.json"
    path.write_text(content)
    reg = Registry(path)
    with pytest.raises(RegistryError, match=str(path)):
        reg.put(_endpoint("a"))
    assert path.read_text() == content


def test_parallel_writers_lose_nothing(tmp_path):
    """8 processes x 25 threads register distinct names at once: all 200 are there."""
    path = tmp_path / "endpoints.json"
    script = textwrap.dedent(f"""
        import sys, threading
        sys.path.insert(0, {str(ROOT)!r})
        from kagg.registry import Registry
        from kagg.model import Endpoint
        proc = int(sys.argv[1])
        reg = Registry({str(path)!r})
        def work(t):
            name = f"p{{proc}}-t{{t}}"
            reg.put(Endpoint(name=name, provider="local", url="http://127.0.0.1:1/"))
        threads = [threading.Thread(target=work, args=(t,)) for t in range(25)]
        [t.start() for t in threads]
        [t.join() for t in threads]
    """)
    procs = [subprocess.Popen([sys.executable, "-c", script, str(p)]) for p in range(8)]
    assert all(p.wait(timeout=120) == 0 for p in procs)
    names = set(Registry(path).all())
    assert names == {f"p{p}-t{t}" for p in range(8) for t in range(25)}


def test_process_killed_mid_write_leaves_a_valid_file(tmp_path):
    """SIGKILL a process that writes in a tight loop: the file always parses."""
    path = tmp_path / "endpoints.json"
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(ROOT)!r})
        from kagg.registry import Registry
        from kagg.model import Endpoint
        reg = Registry({str(path)!r})
        i = 0
        while True:
            reg.put(Endpoint(name=f"e{{i % 50}}", provider="local", url="http://127.0.0.1:1/",
                             provider_data={{"blob": "x" * 20000, "i": i}}))
            i += 1
    """)
    for delay in (0.3, 0.45, 0.6, 0.75):
        proc = subprocess.Popen([sys.executable, "-c", script])
        time.sleep(delay)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        doc = json.loads(path.read_text())  # must parse
        assert doc["version"] == 1 and doc["endpoints"]
    leftovers = [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert len(leftovers) <= 4  # at most one abandoned temporary file per kill, never the registry itself
    assert Registry(path).all()


def test_registry_cli_refuses_corrupt_file(tmp_path, kagg):
    path = tmp_path / "endpoints.json"
    path.write_text("{oops")
    res = kagg("--registry", str(path), "endpoints", "list")
    assert res.returncode == 2
    assert res.stderr.startswith("Error: registry") and str(path) in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    assert path.read_text() == "{oops"
