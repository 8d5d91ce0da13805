"""``kagg batch`` through the real CLI in subprocesses, against the ``flaky``/``slow`` test providers.

The providers come from tests/batch_provider.py and are found through a
``.dist-info`` with an ``entry_points.txt`` on PYTHONPATH — the way a
third-party package registers a provider — so these runs exercise provider
discovery too. Failures are injected through the environment.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from batch_provider import handler_notebook, provider_env, write_notebooks
from conftest import ROOT, run_kagg, serve_folder, wait_until


@pytest.fixture
def work(tmp_path, registry_path):
    """A folder with 6 notebooks, and the environment that makes the test providers visible."""
    write_notebooks(tmp_path, 6)
    env = provider_env(tmp_path, registry_path, KAGG_TEST_LOG=str(tmp_path / "apply.log"))
    return tmp_path, env


def csv_list(folder: Path, rows: list[str], header: str = "notebook,name,provider", name: str = "list.csv") -> Path:
    path = folder / name
    path.write_text(header + "\n" + "\n".join(rows) + "\n")
    return path


def flaky_list(folder: Path, count: int = 6, provider: str = "flaky") -> Path:
    return csv_list(folder, [f"nb{i:02d}.ipynb,t-{i},{provider}" for i in range(count)])


def applied(folder: Path) -> list[tuple[str, int, int]]:
    """(name, attempt, in-flight) for every apply the test provider saw."""
    return [(n, a, f) for n, a, f, _ in applied_with_total(folder)]


def applied_with_total(folder: Path) -> list[tuple[str, int, int, int]]:
    """(name, attempt, in-flight of its provider, in-flight of every provider) for every apply."""
    log = folder / "apply.log"
    if not log.exists():
        return []
    complete = log.read_text().split("\n")[:-1]  # a line still being written has no newline yet
    return [(n, int(a), int(f), int(t)) for n, a, f, t in (line.split() for line in complete)]


def registered(registry_path: Path) -> dict:
    return json.loads(registry_path.read_text())["endpoints"] if registry_path.exists() else {}


def report(proc: subprocess.CompletedProcess) -> dict:
    return json.loads(proc.stdout)


def by_name(doc: dict) -> dict[str, dict]:
    return {item["name"]: item for item in doc["items"]}


# -- retries, failures, resume ----------------------------------------------------------------------------
def test_transient_failures_are_retried_and_recovered(work, registry_path):
    folder, env = work
    env.update(KAGG_TEST_TRANSIENT="t-1,t-4")
    proc = run_kagg("batch", str(flaky_list(folder)), "--parallel", "3", "--backoff", "0.01", "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    items = by_name(report(proc))
    assert {n: i["attempts"] for n, i in items.items()} == {"t-0": 1, "t-1": 2, "t-2": 1, "t-3": 1, "t-4": 2, "t-5": 1}
    assert all(i["status"] == "ok" and i["error"] is None for i in items.values())
    assert sorted(registered(registry_path)) == [f"t-{i}" for i in range(6)]
    assert sorted((n, a) for n, a, _ in applied(folder) if n in ("t-1", "t-4")) == [
        ("t-1", 1), ("t-1", 2), ("t-4", 1), ("t-4", 2)]


def test_transient_failures_give_up_after_the_retries(work, registry_path):
    folder, env = work
    env.update(KAGG_TEST_TRANSIENT="t-2", KAGG_TEST_TRANSIENT_TIMES="9")
    proc = run_kagg("batch", str(flaky_list(folder, 3)), "--retries", "2", "--backoff", "0.01", "--json", env=env)
    assert proc.returncode == 1
    item = by_name(report(proc))["t-2"]
    assert (item["status"], item["attempts"]) == ("failed", 3)
    assert "throttled by the test provider (attempt 3)" in item["error"]
    assert sorted(registered(registry_path)) == ["t-0", "t-1"]


def test_permanent_failures_are_not_retried_exit_1_then_resume_reruns_only_them(work, registry_path):
    folder, env = work
    lst = flaky_list(folder)
    failing = dict(env, KAGG_TEST_PERMANENT="t-2,t-5")
    proc = run_kagg("batch", str(lst), "--parallel", "4", "--backoff", "0.01", "--report",
                    str(folder / "first.json"), env=failing)
    assert proc.returncode == 1
    assert "Error: 2 of 6 items failed; run the same command with --resume" in proc.stderr
    first = json.loads((folder / "first.json").read_text())
    assert first["counts"] == {"ok": 4, "skipped": 0, "failed": 2, "not run": 0}
    assert by_name(first)["t-2"]["error"] == "t-2: the test provider refuses this one for good"
    assert by_name(first)["t-2"]["attempts"] == 1
    assert sorted(registered(registry_path)) == ["t-0", "t-1", "t-3", "t-4"]
    # the plain progress (not a terminal) is one line per finished item
    progress = [ln for ln in proc.stderr.splitlines() if ln.startswith("[")]
    assert len(progress) == 6 and any("failed  t-5 (flaky) 1 attempt" in ln for ln in progress)

    (folder / "apply.log").unlink()
    proc = run_kagg("batch", str(lst), "--resume", "--parallel", "4", "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    assert sorted(n for n, _, _ in applied(folder)) == ["t-2", "t-5"]
    items = by_name(report(proc))
    assert {n: (i["status"], i["detail"]) for n, i in items.items()} == {
        "t-0": ("skipped", "done in an earlier run"), "t-1": ("skipped", "done in an earlier run"),
        "t-2": ("ok", "deployed"), "t-3": ("skipped", "done in an earlier run"),
        "t-4": ("skipped", "done in an earlier run"), "t-5": ("ok", "deployed")}
    assert sorted(registered(registry_path)) == [f"t-{i}" for i in range(6)]

    # everything done: a plain re-run skips unchanged artifacts, --force redeploys them
    proc = run_kagg("batch", str(lst), "--json", env=env)
    assert proc.returncode == 0
    assert {i["detail"] for i in report(proc)["items"]} == {"unchanged"}
    proc = run_kagg("batch", str(lst), "--force", "--parallel", "--json", env=env)
    assert proc.returncode == 0
    assert {i["detail"] for i in report(proc)["items"]} == {"updated"}


def test_fail_fast_stops_scheduling_after_the_first_failure(work, registry_path):
    folder, env = work
    env.update(KAGG_TEST_PERMANENT="t-1")
    proc = run_kagg("batch", str(flaky_list(folder)), "--fail-fast", "--json", env=env)
    assert proc.returncode == 1
    assert [i["status"] for i in report(proc)["items"]] == ["ok", "failed", "not run", "not run", "not run", "not run"]
    assert {i["detail"] for i in report(proc)["items"][2:]} == {"not started: t-1 failed and --fail-fast is set"}
    assert "1 of 6 items failed, 4 not run" in proc.stderr
    assert list(registered(registry_path)) == ["t-0"]


def test_parallel_and_per_provider_caps_are_respected(work, registry_path):
    folder, env = work
    write_notebooks(folder, 12)
    lst = csv_list(folder, [f"nb{i:02d}.ipynb,c-{i},{'flaky' if i % 2 else 'slow'}" for i in range(12)])
    # the first applies wait for each other until 5 are in flight at once: with flaky capped at
    # 1, only 4 slow ones beside it can make the 5, so the run passes only if slow uses the slots
    # flaky cannot (a run that never has 5 at once fails the items: no timing is involved)
    env.update(KAGG_TEST_RENDEZVOUS="5")
    proc = run_kagg("batch", str(lst), "--parallel", "5", "--max-per-provider", "flaky=1", env=env)
    assert proc.returncode == 0, proc.stderr
    log = applied_with_total(folder)
    assert sorted(n for n, *_ in log) == sorted(f"c-{i}" for i in range(12))
    flaky = [f for n, _, f, _ in log if int(n[2:]) % 2]
    slow = [f for n, _, f, _ in log if not int(n[2:]) % 2]
    assert max(flaky) <= 1  # the cap
    assert max(t for *_, t in log) <= 5  # --parallel
    assert 4 <= max(slow) <= 5  # 4 at the rendezvous, beside the capped provider's one


def test_sequential_by_default(work):
    folder, env = work
    assert run_kagg("batch", str(flaky_list(folder, 4)), env=env).returncode == 0
    log = applied_with_total(folder)
    assert len(log) == 4 and {t for *_, t in log} == {1}


# -- reports -------------------------------------------------------------------------------------------------
def test_report_files_and_summary_table(work, registry_path):
    folder, env = work
    env.update(KAGG_TEST_PERMANENT="t-1")
    lst = flaky_list(folder, 3)
    proc = run_kagg("batch", str(lst), "--report", str(folder / "out" / "r.csv"), env=env)
    assert proc.returncode == 1
    header, *rows = (folder / "out" / "r.csv").read_text().splitlines()
    assert header == "line,name,provider,status,detail,url,attempts,seconds,error,notebook"
    assert [r.split(",")[:4] for r in rows] == [["2", "t-0", "flaky", "ok"], ["3", "t-1", "flaky", "failed"],
                                                 ["4", "t-2", "flaky", "ok"]]
    table = proc.stdout.splitlines()
    assert table[0].split() == ["NAME", "PROVIDER", "STATUS", "DETAIL", "URL", "ATTEMPTS", "SECONDS", "ERROR"]
    assert table[2].split()[:4] == ["t-1", "flaky", "failed", "1"]
    assert table[-1].startswith("deploy: 3 items in ") and table[-1].endswith("2 ok, 1 failed")
    proc = run_kagg("batch", str(lst), "--report", str(folder / "r.txt"), env=env)
    assert (folder / "r.txt").read_text().splitlines()[0].startswith("NAME")


# -- other operations ------------------------------------------------------------------------------------------
def test_convert_writes_each_artifact_tree(work, registry_path):
    folder, env = work
    lst = csv_list(folder, ["nb00.ipynb,,local", "nb01.ipynb,second,flaky"])
    proc = run_kagg("batch", str(lst), "--operation", "convert", "-o", str(folder / "out"), "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    assert [(i["name"], i["status"]) for i in report(proc)["items"]] == [("nb00", "ok"), ("second", "ok")]
    for name in ("nb00", "second"):
        manifest = json.loads((folder / "out" / name / "kagg.json").read_text())
        assert manifest["name"] == name and manifest["mode"] == "handler"
        assert (folder / "out" / name / "main.py").exists()
    assert registered(registry_path) == {}


def test_download_fetches_url_notebooks_and_skips_local_ones(work, registry_path):
    folder, env = work
    served = folder / "served"
    served.mkdir()
    (served / "remote.ipynb").write_text(handler_notebook("def handler():\n    return 1\n"))

    with serve_folder(served) as base:
        lst = folder / "urls.txt"
        lst.write_text(f"{base}/remote.ipynb\nnb00.ipynb\n{base}/gone.ipynb\n")
        proc = run_kagg("batch", str(lst), "--operation", "download", "-o", str(folder / "dl"), "--json", env=env)
    assert proc.returncode == 1  # the missing one
    items = report(proc)["items"]
    assert [(i["name"], i["status"]) for i in items] == [("remote", "ok"), ("nb00", "skipped"), ("gone", "failed")]
    assert "404" in items[2]["error"] and items[2]["attempts"] == 1  # not found is not transient
    assert (folder / "dl" / "remote.ipynb").read_text() == (served / "remote.ipynb").read_text()
    assert sorted(p.name for p in (folder / "dl").iterdir()) == ["remote.ipynb"]


def test_delete_operation_removes_listed_endpoints_and_skips_absent_ones(work, registry_path):
    folder, env = work
    lst = flaky_list(folder, 3)
    assert run_kagg("batch", str(lst), env=env).returncode == 0
    names = csv_list(folder, ["t-0", "t-2", "never-deployed"], header="name", name="names.csv")
    proc = run_kagg("batch", str(names), "--operation", "delete", "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    assert [(i["name"], i["status"]) for i in report(proc)["items"]] == [
        ("t-0", "ok"), ("t-2", "ok"), ("never-deployed", "skipped")]
    assert list(registered(registry_path)) == ["t-1"]


# -- Ctrl-C -----------------------------------------------------------------------------------------------------
class _Running:
    """``kagg batch`` in the background; its stderr is read as it comes, to wait for a line."""

    def __init__(self, folder: Path, env: dict, *args: str):
        import os

        full = dict(os.environ)
        full.update(env)
        self.folder = folder
        self.proc = subprocess.Popen([sys.executable, "-m", "kagg", "batch", *args], env=full, cwd=folder,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self._out: list[str] = []
        self._readers = [threading.Thread(target=self._read, args=(self.proc.stderr, self.lines), daemon=True),
                         threading.Thread(target=self._read, args=(self.proc.stdout, self._out), daemon=True)]
        for reader in self._readers:
            reader.start()

    @staticmethod
    def _read(stream, into: list[str]) -> None:
        for line in stream:
            into.append(line)

    def _alive(self) -> bool:
        assert self.proc.poll() is None, f"kagg batch exited early: {''.join(self.lines)}"
        return True

    def wait_for_applies(self, count: int) -> None:
        wait_until(lambda: self._alive() and len(applied(self.folder)) >= count, what=f"{count} applies")

    def wait_for_line(self, text: str) -> None:
        wait_until(lambda: any(text in line for line in list(self.lines)) or not self._alive(),
                   what=f"{text!r} on stderr")

    def finish(self, timeout: float = 120) -> tuple[str, str]:
        """Wait for the exit (the limit only ends a hung run); (stdout, stderr)."""
        try:
            self.proc.wait(timeout=timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        for reader in self._readers:
            reader.join()
        return "".join(self._out), "".join(self.lines)


def _consistent(folder: Path, registry_path: Path, rep: dict) -> dict[str, str]:
    """Report, state file and registry agree on what was deployed."""
    status = {i["name"]: i["status"] for i in rep["items"]}
    state = json.loads(Path(rep["state_file"]).read_text())
    assert {r["name"]: r["status"] for r in state["items"].values()} == status
    assert state["interrupted"] is True and state["finished"] is False
    entries = registered(registry_path)
    assert sorted(n for n, e in entries.items() if e["status"] == "ready") == sorted(
        n for n, s in status.items() if s == "ok")
    # a deploy abandoned mid-apply may have made something: it stays named, as pending
    assert {n for n, e in entries.items() if e["status"] == "pending"} <= {
        n for n, s in status.items() if s == "failed"}
    return status


def test_sigint_finishes_in_flight_items_keeps_state_and_resumes(work, registry_path):
    folder, env = work
    lst = flaky_list(folder, 6, provider="slow")
    gate = folder / "gate"
    env.update(KAGG_TEST_GATE=str(gate))  # the deploys in flight finish when the test says so
    run = _Running(folder, env, str(lst), "--parallel", "2", "--report", "rep.json")
    run.wait_for_applies(2)  # both slots taken; neither item can finish before the gate opens
    run.proc.send_signal(signal.SIGINT)
    run.wait_for_line("interrupted: finishing the items in progress")  # scheduling has stopped
    gate.touch()
    out, err = run.finish()
    assert run.proc.returncode == 130, err
    assert "run the same command with --resume" in err
    rep = json.loads((folder / "rep.json").read_text())
    assert rep["interrupted"] and not rep["aborted"] and rep["exit_code"] == 130
    status = _consistent(folder, registry_path, rep)
    assert sorted(status.values()) == ["not run"] * 4 + ["ok"] * 2  # the two in flight finished
    assert len(applied(folder)) == 2

    proc = run_kagg("batch", str(lst), "--resume", "--parallel", "--json", env=env, cwd=folder)
    assert proc.returncode == 0, proc.stderr
    assert len(applied(folder)) == 6  # only the four not run were deployed now
    assert sorted(registered(registry_path)) == [f"t-{i}" for i in range(6)]


def test_the_next_items_are_prepared_while_the_slots_deploy_and_ctrl_c_undoes_them(work, registry_path):
    """With both slots deploying, the next two items are built, planned and written ``pending``
    (waiting for a slot, not deploying); Ctrl-C ends them "not run" and takes their entries back."""
    folder, env = work
    lst = flaky_list(folder, 6, provider="slow")
    gate = folder / "gate"
    env.update(KAGG_TEST_GATE=str(gate))
    run = _Running(folder, env, str(lst), "--parallel", "2", "--report", "rep.json")
    run.wait_for_applies(2)
    def prepared_ahead() -> list[str]:
        names = [n for n, e in registered(registry_path).items() if e["status"] == "pending"
                 and n not in {a[0] for a in applied(folder)}]
        return names if len(names) >= 2 else []

    ahead = wait_until(prepared_ahead, what="two items prepared ahead")
    assert len(ahead) == 2 and len(applied(folder)) == 2  # prepared, yet not deploying: no slot
    run.proc.send_signal(signal.SIGINT)
    run.wait_for_line("interrupted: finishing the items in progress")
    gate.touch()
    out, err = run.finish()
    assert run.proc.returncode == 130, err
    status = _consistent(folder, registry_path, json.loads((folder / "rep.json").read_text()))
    assert all(status[n] == "not run" for n in ahead)
    assert not set(ahead) & set(registered(registry_path))  # nothing was made for them: no entry left
    assert max(f for _, _, f in applied(folder)) == 2


def test_second_sigint_abandons_in_flight_items(work, registry_path):
    folder, env = work
    lst = flaky_list(folder, 4, provider="slow")
    env.update(KAGG_TEST_GATE=str(folder / "never-opened"))  # the deploys in flight never finish
    run = _Running(folder, env, str(lst), "--parallel", "2", "--report", "rep.json")
    run.wait_for_applies(2)
    run.proc.send_signal(signal.SIGINT)
    run.wait_for_line("interrupted: finishing the items in progress")  # the first one was handled
    run.wait_for_line("[2/4] not run")  # the two others were said "not run" at once (started ahead or not)
    run.proc.send_signal(signal.SIGINT)
    out, err = run.finish()  # it can exit only by abandoning the two deploys
    assert run.proc.returncode == 130, err
    assert "2 item(s) were abandoned part-way" in err
    rep = json.loads((folder / "rep.json").read_text())
    assert rep["aborted"]
    status = _consistent(folder, registry_path, rep)
    assert sorted(status.values()) == ["failed", "failed", "not run", "not run"]
    if registry_path.exists():
        json.loads(registry_path.read_text())  # a valid file: nothing half-written


def test_ctrl_c_while_checking_stops_at_once_and_changes_nothing(work, registry_path, deployed):
    """A check waiting on a URL that never answers (kagg's fetch timeout is 30 s): Ctrl-C ends
    the run now, says nothing was done, and nothing was."""
    import socket

    folder, env = work
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    accepted: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                accepted.append(server.accept()[0])  # and never answer
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    port = server.getsockname()[1]
    lst = csv_list(folder, [f"http://127.0.0.1:{port}/nb{i}.ipynb,u-{i},flaky" for i in range(4)])
    try:
        run = _Running(folder, env, str(lst), "--parallel", "4")
        wait_until(lambda: accepted or not run._alive(), what="a check fetching its notebook")
        run.proc.send_signal(signal.SIGINT)
        out, err = run.finish(timeout=25)  # before any fetch could time out
    finally:
        server.close()
        for conn in accepted:
            conn.close()
    assert run.proc.returncode == 130, err
    assert "interrupted while checking the list; nothing was done" in err
    assert registry_path.read_bytes() == deployed
    assert applied(folder) == []


# -- bad input: exit 2, nothing changed --------------------------------------------------------------------------
@pytest.fixture
def deployed(work, registry_path):
    """One flaky endpoint already registered, so "unchanged registry" means something."""
    from kagg.model import Endpoint
    from kagg.registry import Registry

    Registry(registry_path).put(Endpoint("keep-me", "flaky", "http://flaky.invalid/keep-me/"))
    return registry_path.read_bytes()


def _refused(folder: Path, env: dict, registry_path: Path, before: bytes, *args: str) -> str:
    proc = run_kagg("batch", *args, env=env, cwd=folder)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert registry_path.read_bytes() == before
    assert applied(folder) == []
    assert "Traceback" not in proc.stderr
    return proc.stderr


def test_every_problem_of_a_list_is_reported_with_its_line(work, registry_path, deployed):
    folder, env = work
    (folder / "r.ipynb").write_text(json.dumps({
        "nbformat": 4, "nbformat_minor": 5, "cells": [],
        "metadata": {"kernelspec": {"name": "ir", "display_name": "R", "language": "R"}}}))
    (folder / "nothing.ipynb").write_text(handler_notebook("x = 1\n"))
    lst = csv_list(folder, [
        "nb00.ipynb,a-0,flaky,,",               # 2: fine
        "nb01.ipynb,a-1,awz,,",                 # 3: unknown provider
        "missing.ipynb,a-2,flaky,,",            # 4: missing file
        "nb02.ipynb,a-0,flaky,,",               # 5: duplicate name
        "nb03.ipynb,a-3,flaky,lots,",           # 6: bad memory
        "nb04.ipynb,keep-me,local,,",           # 7: name used by another provider
        "nb04.ipynb,Bad_Name,flaky,,",          # 8: name the provider refuses
        "r.ipynb,a-4,flaky,,",                  # 9: not a Python kernel
        "nothing.ipynb,a-5,flaky,,",            # 10: nothing to serve
        "nb00.ipynb,a-6,flaky,,1",              # 11: unknown column's value is ignored, no problem here
    ], header="notebook,name,provider,memory,colour")
    err = _refused(folder, env, registry_path, deployed, "list.csv", "--parallel")
    lines = err.splitlines()
    assert lines[-1] == "Error: list.csv has 9 problems (listed above); nothing was done"
    problems = [ln for ln in lines if ln.startswith("list.csv:")]
    assert [p.split(":")[1] for p in problems] == ["1", "3", "4", "5", "6", "7", "8", "9", "10"]
    expected = ["unknown column 'colour'", "unknown provider 'awz'", "missing.ipynb not found",
                "duplicate name 'a-0' (also on line 2)", "bad memory value 'lots'",
                "'keep-me' is already used by a flaky endpoint", "invalid endpoint name 'Bad_Name'",
                "kernel", "handler"]
    for problem, fragment in zip(problems, expected):
        assert fragment in problem, problem
    assert not (registry_path.parent / ".kagg" / "batch").exists() or not any(
        p.suffix == ".json" and p.name.startswith("list-") for p in (registry_path.parent / ".kagg" / "batch").iterdir())


def test_a_long_list_is_checked_whole_before_anything_runs(work, registry_path, deployed):
    """30 items (checked in worker processes where there are CPUs for them): one bad item
    refuses the list and nothing is deployed; fixed, every item is deployed."""
    folder, env = work
    write_notebooks(folder, 30)
    rows = [f"nb{i:02d}.ipynb,long-{i},flaky" for i in range(30)]
    rows[23] = "nb23.ipynb,Long_23,flaky"
    lst = csv_list(folder, rows)
    err = _refused(folder, env, registry_path, deployed, "list.csv", "--parallel", "10")
    assert [ln for ln in err.splitlines() if ln.startswith("list.csv:")] == [
        "list.csv:25: invalid endpoint name 'Long_23' for provider flaky: "
        "1-63 characters: lower-case letters, digits and '-', starting with a letter"]
    rows[23] = "nb23.ipynb,long-23,flaky"
    csv_list(folder, rows)
    proc = run_kagg("batch", str(lst), "--parallel", "10", "--json", env=env, cwd=folder)
    assert proc.returncode == 0, proc.stderr
    assert [i["name"] for i in report(proc)["items"]] == [f"long-{i}" for i in range(30)]
    assert sorted(registered(registry_path)) == sorted(["keep-me"] + [f"long-{i}" for i in range(30)])


@pytest.mark.parametrize("files, args, message", [
    ({}, ["nope.csv"], "batch list nope.csv not found"),
    ({"l.yaml": "a: 1"}, ["l.yaml"], "cannot tell the format of l.yaml"),
    ({"l.json": '[{"notebook": "nb00.ipynb"},\n {"notebook": }]'}, ["l.json"], "l.json:2: not valid JSON"),
    ({"l.json": '{"defaults": {"name": "x", "memroy": 1}, "items": ["nb00.ipynb"], "more": 1}'}, ["l.json"],
     "l.json:1: 'name' cannot be a default"),
    ({"l.txt": "nb00.ipynb\n\nnope.ipynb\n"}, ["l.txt"], "l.txt:3: notebook nope.ipynb not found"),
    ({"l.txt": "# only comments\n"}, ["l.txt"], "l.txt:1: lists no notebooks"),
    ({"l.csv": "name\nx\n"}, ["l.csv"], "l.csv:1: no 'notebook' column"),
    ({"l.txt": "nb00.ipynb\n"}, ["l.txt", "--operation", "convert"], "give the folder with -o DIR"),
    ({"l.txt": "nb00.ipynb\n"}, ["l.txt", "--provider", "awz"], "unknown provider 'awz'"),
    ({"l.txt": "nb00.ipynb\n"}, ["l.txt", "--aws", "--provider", "flaky"], "choose one provider"),
    ({"l.txt": "nb00.ipynb\n"}, ["l.txt", "--max-per-provider", "aws=none"], "--max-per-provider 'aws=none'"),
    ({"l.txt": "nb00.ipynb\n"}, ["l.txt", "--parallel", "0"], "0 is not 1 or more"),
    ({"l.txt": "nb00.ipynb\n"}, ["l.txt", "--env", "NOEQUALS"], "--env 'NOEQUALS' is not of the form K=V"),
    ({"l.txt": "nb00.ipynb\n"}, ["l.txt", "--memory", "0"], "Invalid value for '--memory'"),
    ({"l.txt": "nb00.ipynb\n"}, ["--parallel"], "Missing argument 'LIST'"),
])
def test_bad_input_is_refused_with_one_line(work, registry_path, deployed, files, args, message):
    folder, env = work
    for name, text in files.items():
        (folder / name).write_text(text)
    err = _refused(folder, env, registry_path, deployed, *args)
    assert message in err, err


def test_parallel_accepts_the_list_right_after_it(work, registry_path):
    folder, env = work
    flaky_list(folder, 2)
    proc = run_kagg("batch", "--parallel", "list.csv", env=env, cwd=folder)
    assert proc.returncode == 0, proc.stderr
    assert sorted(registered(registry_path)) == ["t-0", "t-1"]


def test_help_lists_the_options():
    proc = run_kagg("batch", "--help")
    assert proc.returncode == 0
    for option in ("--parallel", "--max-per-provider", "--fail-fast", "--resume", "--operation", "--report"):
        assert option in proc.stdout
    assert str(ROOT)  # the CLI under test is this checkout's
