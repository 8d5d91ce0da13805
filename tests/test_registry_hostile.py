"""The registry is input too: hand-edited, shared, reached through links, read-only, odd bytes.

Every case through the real CLI: one line, the right exit code, and nothing outside kagg's
folders touched.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, run_kagg
from kagg.providers.local.process import Server, is_running, servers_under
from kagg.registry import Registry
from notebooks import write

GOOD = 'def handler(x: int = 1):\n    return {"v": x}'


def doc(**entries) -> str:
    return json.dumps({"version": 1, "endpoints": entries})


def entry(name: str, **extra) -> dict:
    return {"name": name, "provider": "local", "url": "http://127.0.0.1:9/", "auth": "none",
            "source": {"path": "nb.ipynb", "sha256": "0" * 64}, "provider_data": {}, **extra}


def one_error_line(res) -> str:
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), res.stderr
    assert "unexpected" not in lines[0] and "Traceback" not in res.stderr
    return lines[0]


# -- 4. a name in the file is never a path ------------------------------------------------------------------
def test_delete_refuses_an_entry_whose_name_is_a_path(tmp_path, registry_path):
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "precious.txt").write_text("keep me")
    (tmp_path / "a" / "b").mkdir(parents=True)
    reg = tmp_path / "a" / "b" / "endpoints.json"
    bad = "../../../victim"
    reg.write_text(doc(**{bad: entry(bad)}))
    res = run_kagg("--registry", str(reg), "delete", bad)
    assert res.returncode == 2
    assert "does not allow" in one_error_line(res)
    assert (victim / "precious.txt").read_text() == "keep me"
    res = run_kagg("--registry", str(reg), "endpoints", "rm", bad)
    assert res.returncode == 0, res.stderr
    assert json.loads(reg.read_text())["endpoints"] == {}
    assert (victim / "precious.txt").exists()


# -- 5. one bad entry does not take the others down ------------------------------------------------------------
@pytest.mark.parametrize("bad_entry", [
    {"name": "bad"},                                   # no provider
    entry("bad", url=12345),                           # a number for a URL
    entry("bad", provider_data=[1, 2]),                # a list for an object
    entry("other-name"),                               # key and name differ
    "just a string",
], ids=["no-provider", "url-number", "data-list", "key-name-differ", "string"])
def test_a_malformed_entry_is_named_and_the_others_still_work(registry_path, bad_entry):
    registry_path.write_text(doc(bad=bad_entry, good=entry("good")))
    listed = run_kagg("endpoints", "list")
    assert listed.returncode == 0, listed.stderr
    assert "good" in listed.stdout
    assert "registry entry 'bad'" in listed.stderr and "endpoints rm bad" in listed.stderr
    as_json = run_kagg("endpoints", "list", "--json")
    assert [e["name"] for e in json.loads(as_json.stdout)] == ["good"]
    shown = run_kagg("endpoints", "show", "bad")
    assert shown.returncode == 2 and "registry entry 'bad'" in one_error_line(shown)
    deleted = run_kagg("delete", "bad")
    assert deleted.returncode == 2
    one_error_line(deleted)
    removed = run_kagg("endpoints", "rm", "bad")
    assert removed.returncode == 0, removed.stderr
    assert list(json.loads(registry_path.read_text())["endpoints"]) == ["good"]


# -- 6. a symlinked registry: one lock for both paths -------------------------------------------------------------
WRITER = """
import sys
from kagg.model import Endpoint
from kagg.registry import Registry
reg = Registry(sys.argv[1])
for i in range(int(sys.argv[3])):
    name = f"{sys.argv[2]}-{i}"
    reg.put(Endpoint(name=name, provider="local", url="http://127.0.0.1:9/"))
"""


def test_writers_through_a_link_and_through_the_file_lose_nothing(tmp_path):
    real = tmp_path / "data" / "endpoints.json"
    real.parent.mkdir()
    link = tmp_path / "endpoints.json"
    link.symlink_to(real)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(path), tag, "60"], env=env)
             for path, tag in ((real, "r"), (link, "l"), (real, "s"), (link, "t"))]
    assert all(p.wait(timeout=120) == 0 for p in procs)
    assert len(Registry(real).all()) == 240
    assert link.is_symlink()  # written at the target, the link kept


# -- 7. two registries in one folder keep their state apart ------------------------------------------------------------
def test_two_registries_in_one_folder_do_not_share_state(tmp_path):
    nb = write(tmp_path / "add.ipynb", GOOD)
    one, two = tmp_path / "endpoints.json", tmp_path / "team.json"
    try:
        for reg in (one, two):
            res = run_kagg("--registry", str(reg), "deploy", str(nb))
            assert res.returncode == 0, res.stderr
        data_two = json.loads(two.read_text())["endpoints"]["add"]["provider_data"]
        assert data_two["app_dir"] != json.loads(one.read_text())["endpoints"]["add"]["provider_data"]["app_dir"]
        assert run_kagg("--registry", str(one), "delete", "add").returncode == 0
        assert is_running(Server.from_data(data_two)), "deleting one registry's endpoint stopped the other's"
        assert Path(data_two["app_dir"], "main.py").exists() and Path(data_two["log"]).exists()
        assert json.loads(run_kagg("--registry", str(two), "invoke", "add").stdout) == {"v": 1}
    finally:
        run_kagg("--registry", str(two), "delete", "add")
        run_kagg("--registry", str(one), "delete", "add")


# -- 8. read-only files and folders, folders that do not exist -------------------------------------------------------
def test_a_read_only_registry_is_never_replaced(registry_path):
    registry_path.write_text(doc(a=entry("a")))
    registry_path.chmod(0o444)
    before = registry_path.read_bytes()
    res = run_kagg("endpoints", "rm", "a")
    assert res.returncode == 2 and "read-only" in one_error_line(res)
    assert registry_path.read_bytes() == before
    assert stat.S_IMODE(registry_path.stat().st_mode) == 0o444


def test_a_read_only_folder_is_refused_before_a_server_starts(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    nb = write(tmp_path / "ro-nb.ipynb", GOOD)
    folder.chmod(0o555)
    try:
        res = run_kagg("--registry", str(folder / "endpoints.json"), "deploy", str(nb))
        assert res.returncode == 2 and "cannot write in" in one_error_line(res)
        assert list(folder.iterdir()) == []
        assert servers_under(folder / ".kagg") == []
    finally:
        folder.chmod(0o755)


@pytest.mark.parametrize("command", [["endpoints", "rm", "x"], ["delete", "x"], ["invoke", "x"],
                                     ["deploy", "missing.ipynb"], ["deploy", "NB", "--port", "0"]])
def test_a_missing_folder_is_not_created_by_a_failing_command(tmp_path, command):
    nb = write(tmp_path / "nb.ipynb", GOOD)
    missing = tmp_path / "no" / "such"
    args = [str(nb) if a == "NB" else a for a in command]
    res = run_kagg("--registry", str(missing / "endpoints.json"), *args, cwd=tmp_path)
    assert res.returncode == 2
    one_error_line(res)
    assert not (tmp_path / "no").exists()


# -- 9. odd bytes --------------------------------------------------------------------------------------------------------
def test_a_registry_with_a_bom_is_read(registry_path):
    registry_path.write_bytes(b"\xef\xbb\xbf" + doc(a=entry("a")).encode())
    res = run_kagg("endpoints", "list", "--json")
    assert res.returncode == 0, res.stderr
    assert [e["name"] for e in json.loads(res.stdout)] == ["a"]


@pytest.mark.parametrize("content,words", [
    (b'{"version": 1, "endpoints": {"a": "\xff\xfe"}}', "not UTF-8"),
    (b"[" * 100000 + b"]" * 100000, "nested too deeply"),
    (b'{"version": 1, "endpoints": ' + b'{"a": ' * 5000 + b"1" + b"}" * 5001, "nested too deeply"),
], ids=["invalid-utf8", "deep-list", "deep-object"])
def test_undecodable_or_deep_registries_are_one_line_errors(registry_path, content, words):
    registry_path.write_bytes(content)
    res = run_kagg("endpoints", "list")
    assert res.returncode == 2
    assert words in one_error_line(res)
    assert registry_path.read_bytes() == content


# -- 10. the state folder is private -----------------------------------------------------------------------------------
def test_the_state_folder_and_its_files_are_private(tmp_path, registry_path):
    old = os.umask(0o022)
    try:
        nb = write(tmp_path / "priv.ipynb", GOOD)
        res = run_kagg("deploy", str(nb), "--env", "A=1")
        assert res.returncode == 0, res.stderr
    finally:
        os.umask(old)
    try:
        state = registry_path.parent / ".kagg"
        assert stat.S_IMODE(state.stat().st_mode) == 0o700
        data = json.loads(registry_path.read_text())["endpoints"]["priv"]["provider_data"]
        assert stat.S_IMODE(Path(data["log"]).stat().st_mode) == 0o600
        app = Path(data["app_dir"])
        assert stat.S_IMODE(app.stat().st_mode) == 0o700
        assert stat.S_IMODE((app / "kagg_notebook.py").stat().st_mode) == 0o600
    finally:
        assert run_kagg("delete", "priv").returncode == 0


def test_the_monitor_history_is_private(tmp_path):
    from kagg.monitor.history import History

    old = os.umask(0o022)
    try:
        store = History(tmp_path / ".kagg")
        store.runs("x")  # reading creates nothing
        assert not (tmp_path / ".kagg").exists()
        with store._connect():
            pass
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / ".kagg").stat().st_mode) == 0o700
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
