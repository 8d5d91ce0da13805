"""The registry: format, atomic writes, locking across threads and processes, corrupt files."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from kagg.errors import NotFound, RegistryError
from kagg.model import Endpoint
from kagg.registry import Registry

from conftest import ROOT, wait_until


def _endpoint(name: str) -> Endpoint:
    return Endpoint(name=name, provider="local", url=f"http://127.0.0.1:1/{name}",
                    source={"path": "nb.ipynb", "sha256": "0" * 64}, artifact_sha256="1" * 64,
                    provider_data={"pid": 1, "port": 1})


def _committed(path: str) -> str:
    """``path`` as committed at HEAD of the checkout the tests run from (not the working tree,
    which `kagg deploy` run at the repository's root writes to)."""
    def git(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True, timeout=60)

    try:
        top = git("rev-parse", "--show-toplevel")
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.skip(f"git is not available here ({exc})")
    if top.returncode != 0 or Path(top.stdout.strip()).resolve() != ROOT.resolve():
        pytest.skip(f"{ROOT} is not a git checkout: the committed {path} cannot be read")
    shown = git("show", f"HEAD:{path}")
    assert shown.returncode == 0, f"{path} is not committed: {shown.stderr.strip()}"
    return shown.stdout


def test_empty_registry_in_repo_has_the_format(tmp_path):
    text = _committed("endpoints.json")
    assert json.loads(text) == {"version": 1, "endpoints": {}}
    (tmp_path / "endpoints.json").write_text(text)
    assert Registry(tmp_path / "endpoints.json").all() == {}


def test_put_get_remove_round_trip(tmp_path):
    reg = Registry(tmp_path / "endpoints.json")
    old = _endpoint("a")
    old.created_at = old.updated_at = "2020-01-02T03:04:05Z"  # written long ago
    with reg.transaction() as endpoints:
        endpoints["a"] = old.to_dict()
    first = reg.get("a")
    assert first.url.endswith("/a") and first.updated_at == "2020-01-02T03:04:05Z"
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


_WRITER = """
import sys
sys.path.insert(0, {root!r})
from kagg.registry import Registry
from kagg.model import Endpoint
reg = Registry({path!r})
reg.put(Endpoint(name="blob", provider="local", url="http://127.0.0.1:1/", provider_data={{"blob": "x" * 400000}}))
i = 0
while True:
    reg.put(Endpoint(name=f"w{{i}}", provider="local", url="http://127.0.0.1:1/", provider_data={{"i": i}}))
    print(i, flush=True)  # w{{i}} is on disk
    i += 1
"""


def _kill_while_writing(folder: Path, after: int) -> tuple[bool, list[int]]:
    """Start a process that registers w0, w1, ... printing each number once its write is done;
    once it has done ``after`` of them, SIGKILL it while a write's temporary file exists.
    Returns (whether the kill came before that write's rename, the numbers it printed)."""
    path = folder / "endpoints.json"
    proc = subprocess.Popen([sys.executable, "-c", _WRITER.format(root=str(ROOT), path=str(path))],
                            stdout=subprocess.PIPE, text=True)
    printed: list[str] = []
    reader = threading.Thread(target=lambda: printed.extend(proc.stdout), daemon=True)
    reader.start()
    try:
        wait_until(lambda: len(printed) >= after or proc.poll() is not None, what=f"{after} writes")
        assert proc.poll() is None, "the writer stopped by itself"

        def writing() -> bool:  # a write has made its temporary file and not yet renamed it
            return any(name.endswith(".tmp") for name in os.listdir(folder))

        wait_until(writing, what="a write in progress")
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        reader.join()
    mid_write = any(name.endswith(".tmp") for name in os.listdir(folder))  # nobody renamed or removed it
    return mid_write, [int(line) for line in printed if line.endswith("\n")]


def test_process_killed_mid_write_leaves_a_valid_file_with_every_finished_write(tmp_path):
    """SIGKILL a process while it writes: the file parses and holds every write that had finished."""
    landed = 0
    for attempt in range(20):  # until a kill is known to have landed inside a write (nearly always the first)
        folder = tmp_path / f"run{attempt}"
        folder.mkdir()
        mid_write, done = _kill_while_writing(folder, after=5)
        doc = json.loads((folder / "endpoints.json").read_text())  # the file parses: nothing half-written
        names = set(doc["endpoints"]) - {"blob"}
        assert doc["version"] == 1 and "blob" in doc["endpoints"]
        assert done == list(range(len(done))) and len(done) >= 5
        assert {f"w{i}" for i in done} <= names  # every finished write is there
        assert names <= {f"w{i}" for i in range(len(done) + 1)}  # at most one finished but not printed
        if mid_write:
            landed += 1
            # a number is printed before the next write starts: the one cut off is w{len(done)},
            # and the file holds exactly the writes that finished
            assert names == {f"w{i}" for i in done}
            assert Registry(folder / "endpoints.json").all()["blob"].provider_data["blob"] == "x" * 400000
            break
    assert landed, "no kill landed inside a write in 20 tries"


def test_registry_cli_refuses_corrupt_file(tmp_path, kagg):
    path = tmp_path / "endpoints.json"
    path.write_text("{oops")
    res = kagg("--registry", str(path), "endpoints", "list")
    assert res.returncode == 2
    assert res.stderr.startswith("Error: registry") and str(path) in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    assert path.read_text() == "{oops"


def test_an_entry_is_a_deep_copy_in_field_order_as_asdict_makes_it():
    """Endpoint.to_dict (a batch makes two per item) gives what dataclasses.asdict gives."""
    import dataclasses

    class Odd:  # not JSON: copied with copy.deepcopy, as asdict copies it
        def __init__(self):
            self.seen = [1]

    endpoint = _endpoint("a")
    endpoint.provider_data = {"nested": {"list": [1, 2.5, None, True, {"x": "é"}]}, "tuple": (1, 2), "odd": Odd()}
    mine, theirs = endpoint.to_dict(), dataclasses.asdict(endpoint)
    assert list(mine) == list(theirs) == [f.name for f in dataclasses.fields(Endpoint)]
    assert {k: v for k, v in mine.items() if k != "provider_data"} == \
        {k: v for k, v in theirs.items() if k != "provider_data"}
    assert mine["provider_data"]["nested"] == theirs["provider_data"]["nested"]
    assert mine["provider_data"]["tuple"] == theirs["provider_data"]["tuple"] == (1, 2)
    mine["provider_data"]["nested"]["list"][4]["x"] = "changed"
    mine["source"]["path"] = "changed"
    assert endpoint.provider_data["nested"]["list"][4] == {"x": "é"} and endpoint.source["path"] == "nb.ipynb"
    copied = mine["provider_data"]["odd"]
    assert copied is not endpoint.provider_data["odd"] and copied.seen == [1]
    assert copied.seen is not endpoint.provider_data["odd"].seen
