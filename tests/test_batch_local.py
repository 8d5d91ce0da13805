"""``kagg batch`` with real endpoints: 30 local servers at once, and a list mixing local and AWS (moto).

Local endpoints are detached processes: every test deletes what it deployed
through ``--operation delete`` and, should it fail half-way, a finalizer stops
any server still recorded, so no process outlives the test.
"""

from __future__ import annotations

import json
import os
import signal
import urllib.request

import pytest

from aws_fixtures import aws, moto_stack  # noqa: F401
from batch_provider import write_notebooks
from conftest import run_kagg


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is not alive
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


@pytest.fixture
def local_registry(registry_path):
    """The test's registry; afterwards, stop any local server it still records."""
    yield registry_path
    if not registry_path.exists():
        return
    for ep in json.loads(registry_path.read_text())["endpoints"].values():
        pid = ep.get("provider_data", {}).get("pid") if ep["provider"] == "local" else None
        if pid and _alive(pid):
            try:  # the supervisor leads its own session: its server child goes with the group
                os.killpg(pid, signal.SIGKILL)
            except OSError:
                os.kill(pid, signal.SIGKILL)


def _post(url: str, payload: dict) -> dict:
    req = urllib.request.Request(url, data=json.dumps(payload).encode(), method="POST",
                                 headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


def test_thirty_local_deploys_in_parallel_answer_then_invoke_and_delete(tmp_path, local_registry):
    write_notebooks(tmp_path, 30)
    lst = tmp_path / "list.csv"
    lst.write_text("notebook,name\n" + "".join(f"nb{i:02d}.ipynb,ep-{i:02d}\n" for i in range(30)))
    proc = run_kagg("batch", str(lst), "--parallel", "8", "--json", timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rep = json.loads(proc.stdout)
    assert rep["counts"]["ok"] == 30 and rep["parallel"] == 8

    endpoints = json.loads(local_registry.read_text())["endpoints"]
    assert sorted(endpoints) == [f"ep-{i:02d}" for i in range(30)]
    assert len({ep["url"] for ep in endpoints.values()}) == 30
    for i in range(30):  # every endpoint answers, each with its own notebook's code
        assert _post(endpoints[f"ep-{i:02d}"]["url"], {"x": i + 100}) == {"x": i + 100, "i": i}

    # the invoke operation: one call per row, with the row's payload
    calls = tmp_path / "calls.csv"
    calls.write_text("name,payload\n" + "".join(f'ep-{i:02d},"{{""x"": {i}}}"\n' for i in range(0, 30, 3)))
    proc = run_kagg("batch", str(calls), "--operation", "invoke", "--parallel", "--json")
    assert proc.returncode == 0, proc.stderr
    assert [item["output"] for item in json.loads(proc.stdout)["items"]] == [{"x": i, "i": i} for i in range(0, 30, 3)]
    # a name that is not in the registry fails its own row; the others are still called
    calls.write_text('name,payload\nep-01,"{""x"": 1}"\nnever-deployed,\nep-02,"{""x"": 2}"\n')
    proc = run_kagg("batch", str(calls), "--operation", "invoke", "--json")
    assert proc.returncode == 1, proc.stderr
    items = json.loads(proc.stdout)["items"]
    assert [i["status"] for i in items] == ["ok", "failed", "ok"]
    assert "no endpoint named 'never-deployed'" in items[1]["error"] and items[1]["attempts"] == 1

    # an unchanged redeploy is skipped and leaves the same servers running
    proc = run_kagg("batch", str(lst), "--parallel", "8", "--json", timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert {item["detail"] for item in json.loads(proc.stdout)["items"]} == {"unchanged"}

    pids = [ep["provider_data"]["pid"] for ep in endpoints.values()]
    proc = run_kagg("batch", str(lst), "--operation", "delete", "--parallel", "8", timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(local_registry.read_text())["endpoints"] == {}
    assert [pid for pid in pids if _alive(pid)] == []


def test_mixed_local_and_aws_list(tmp_path, local_registry, aws):  # noqa: F811
    write_notebooks(tmp_path, 4)
    lst = tmp_path / "mixed.json"
    lst.write_text(json.dumps({"defaults": {"memory": 256}, "items": [
        {"notebook": "nb00.ipynb", "name": "mix-local-0"},
        {"notebook": "nb01.ipynb", "name": "mix-aws-1", "provider": "aws", "public": True},
        {"notebook": "nb02.ipynb", "name": "mix-aws-2", "provider": "aws", "env": "STAGE=test"},
        {"notebook": "nb03.ipynb", "name": "mix-local-3"}]}))
    proc = run_kagg("batch", str(lst), "--parallel", "4", "--max-per-provider", "aws=1", "--json", timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(proc.stdout)["counts"]["ok"] == 4

    endpoints = json.loads(local_registry.read_text())["endpoints"]
    assert {n: ep["provider"] for n, ep in endpoints.items()} == {
        "mix-aws-1": "aws", "mix-aws-2": "aws", "mix-local-0": "local", "mix-local-3": "local"}
    assert _post(endpoints["mix-local-3"]["url"], {"x": 7}) == {"x": 7, "i": 3}
    assert (endpoints["mix-aws-1"]["auth"], endpoints["mix-aws-2"]["auth"]) == ("none", "aws_iam")
    lam = aws.direct("lambda")
    config = lam.get_function_configuration(FunctionName="mix-aws-2")
    assert config["MemorySize"] == 256 and config["Environment"]["Variables"]["STAGE"] == "test"
    assert lam.get_function_configuration(FunctionName="mix-aws-1")["MemorySize"] == 256

    proc = run_kagg("batch", str(lst), "--operation", "delete", "--parallel", timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(local_registry.read_text())["endpoints"] == {}
    # moto is shared by the whole run: only this test's functions must be gone
    assert [f["FunctionName"] for f in lam.list_functions()["Functions"] if f["FunctionName"].startswith("mix-")] == []
    for name in ("mix-local-0", "mix-local-3"):
        assert not _alive(endpoints[name]["provider_data"]["pid"])
