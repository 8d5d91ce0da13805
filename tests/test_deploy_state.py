"""What a deploy leaves behind when processes race, fail or are killed (issue: the base's defects).

Every test goes through the real CLI; the servers are observed through /proc with kagg's own
``servers_under`` (the same look-up `kagg delete` uses), never replaced.
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

from conftest import ROOT, run_kagg, wait_until
from kagg.providers.local.process import Server, identify, is_running, servers_under
from notebooks import FAILS_AT_IMPORT, write

GOOD = 'def handler(x: int = 1):\n    return {"v": x}'
OTHER = 'def handler(x: int = 1):\n    return {"w": x}'
ENV_ECHO = 'import os\ndef handler():\n    return {"token": os.environ.get("SECRET_TOKEN")}'



def entries(reg: Path) -> dict:
    return json.loads(reg.read_text())["endpoints"] if reg.exists() else {}


def state_local(reg: Path) -> Path:
    return reg.parent / ".kagg" / "local"


def kagg_env(reg: Path) -> dict:
    return {"KAGG_REGISTRY": str(reg), "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}


@pytest.fixture
def reg(registry_path):
    yield registry_path
    for name in entries(registry_path):
        run_kagg("delete", name)
    for server in servers_under(state_local(registry_path)):  # never leave a server behind a failed test
        os.killpg(server.pid, signal.SIGKILL)


# -- 1. a pid is not an identity ----------------------------------------------------------------
def test_delete_does_not_signal_an_unrelated_process_with_the_recorded_pid(reg, tmp_path):
    nb = write(tmp_path / "one.ipynb", GOOD)
    assert run_kagg("deploy", str(nb)).returncode == 0
    entry = entries(reg)["one"]
    server = Server.from_data(entry["provider_data"])
    assert is_running(server) and entry["provider_data"]["proc_started"] is not None
    os.killpg(server.pid, signal.SIGKILL)
    wait_until(lambda: not is_running(server), what="the server to exit")
    # someone else's process now has the recorded pid's place: its command line even mentions
    # functions_framework, which is all the old check looked at
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", "functions_framework",
                              "--source", entry["provider_data"]["app_dir"] + "/main.py"])
    try:
        doc = json.loads(reg.read_text())
        doc["endpoints"]["one"]["provider_data"]["pid"] = other.pid
        reg.write_text(json.dumps(doc))
        res = run_kagg("delete", "one")
        assert res.returncode == 0, res.stderr
        assert "one" not in entries(reg)
        assert other.poll() is None, "kagg delete signalled a process that is not its server"
    finally:
        other.kill()
        other.wait()


def test_a_reused_pid_with_another_start_time_is_not_the_server(reg, tmp_path):
    nb = write(tmp_path / "two.ipynb", GOOD)
    assert run_kagg("deploy", str(nb)).returncode == 0
    data = entries(reg)["two"]["provider_data"]
    real = Server.from_data(data)
    assert identify(real.pid) == real
    assert not is_running(Server(real.pid, real.started + 1, real.app_dir))  # same pid, later process
    assert not is_running(Server(real.pid, real.started, real.app_dir + "-other"))


# -- 2. a failed redeploy records the version it restored ------------------------------------------
def test_failed_redeploy_records_the_restored_server(reg, tmp_path):
    nb = write(tmp_path / "svc.ipynb", GOOD)
    assert run_kagg("deploy", str(nb)).returncode == 0
    before = entries(reg)["svc"]
    write(nb, FAILS_AT_IMPORT)
    res = run_kagg("deploy", str(nb))
    assert res.returncode == 1 and "model file is missing" in res.stderr
    assert "previous version is still serving" in res.stderr
    after = entries(reg)["svc"]
    assert after["status"] == "ready" and after["artifact_sha256"] == before["artifact_sha256"]
    restored = Server.from_data(after["provider_data"])
    assert is_running(restored), "the registry must name the process that serves now"
    assert restored.pid != before["provider_data"]["pid"]
    assert servers_under(state_local(reg)) == [restored]
    res = run_kagg("invoke", "svc", '{"x": 4}')
    assert json.loads(res.stdout) == {"v": 4}


def test_failed_first_deploy_leaves_no_entry_and_no_server(reg, tmp_path):
    nb = write(tmp_path / "broken.ipynb", FAILS_AT_IMPORT)
    res = run_kagg("deploy", str(nb))
    assert res.returncode == 1
    assert "broken" not in entries(reg)
    assert servers_under(state_local(reg)) == []


# -- 3. one name, one deploy at a time ------------------------------------------------------------------
def test_two_deploys_of_one_name_at_once_leave_one_server_named_by_the_registry(reg, tmp_path):
    a = write(tmp_path / "a.ipynb", GOOD)
    b = write(tmp_path / "b.ipynb", OTHER)
    env = {**os.environ, **kagg_env(reg)}
    procs = [subprocess.Popen([sys.executable, "-m", "kagg", "deploy", str(nb), "--name", "same"], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for nb in (a, b)]
    outs = [p.communicate(timeout=180) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    entry = entries(reg)["same"]
    running = servers_under(state_local(reg))
    assert running == [Server.from_data(entry["provider_data"])], "an orphan server is left"
    assert entry["status"] == "ready"


def test_a_deploy_racing_a_delete_leaves_a_consistent_state(reg, tmp_path):
    nb = write(tmp_path / "race.ipynb", GOOD)
    assert run_kagg("deploy", str(nb)).returncode == 0
    write(nb, OTHER)
    env = {**os.environ, **kagg_env(reg)}
    deploy = subprocess.Popen([sys.executable, "-m", "kagg", "deploy", str(nb)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    delete = subprocess.Popen([sys.executable, "-m", "kagg", "delete", "race"], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deploy.communicate(timeout=180)
    delete.communicate(timeout=180)
    running = servers_under(state_local(reg))
    entry = entries(reg).get("race")
    if entry is None:
        assert running == [], "deleted, but a server still runs"
    else:
        assert running == [Server.from_data(entry["provider_data"])]


# -- 4. a killed run leaves nothing the registry cannot name ------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("moment", ["first-pending", "first-server", "third-server"])
def test_sigkill_of_a_batch_leaves_every_server_named(reg, tmp_path, moment):
    names = [f"item{i}" for i in range(8)]
    for name in names:
        write(tmp_path / f"{name}.ipynb", GOOD)
    listing = tmp_path / "list.txt"
    listing.write_text("\n".join(str(tmp_path / f"{n}.ipynb") for n in names) + "\n")
    proc = subprocess.Popen([sys.executable, "-m", "kagg", "batch", str(listing), "--parallel", "4"],
                            env={**os.environ, **kagg_env(reg)}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    folder = state_local(reg)

    def reached():
        if moment == "first-pending":
            return any(e.get("status") == "pending" for e in _safe_entries(reg).values())
        return len(servers_under(folder)) >= (1 if moment == "first-server" else 3)

    try:
        wait_until(reached, timeout=120, what=moment)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    recorded = entries(reg)
    for server in servers_under(folder):
        name = Path(server.app_dir).parent.name
        assert name in recorded, f"server {server} of {name} is running but not in the registry"
    assert len(recorded) < len(names) or moment != "first-pending"  # killed midway, not after the end
    listed = run_kagg("endpoints", "list")
    assert listed.returncode == 0
    for name in recorded:  # delete finishes the job for pending entries too
        assert run_kagg("delete", name).returncode == 0
    assert servers_under(folder) == []
    assert entries(reg) == {}


def _safe_entries(reg: Path) -> dict:
    try:
        return entries(reg)
    except (ValueError, OSError):
        return {}


def test_pending_entry_is_listed_and_a_redeploy_finishes_it(reg, tmp_path):
    nb = write(tmp_path / "half.ipynb", GOOD)
    assert run_kagg("deploy", str(nb)).returncode == 0
    doc = json.loads(reg.read_text())
    doc["endpoints"]["half"]["status"] = "pending"  # as a deploy killed after its first call leaves it
    reg.write_text(json.dumps(doc))
    listed = run_kagg("endpoints", "list")
    assert "pending" in listed.stdout and "interrupted" in listed.stderr
    res = run_kagg("deploy", str(nb))  # same artifact: not "unchanged, skipped" while pending
    assert res.returncode == 0 and "skipped" not in res.stdout, res.stdout
    entry = entries(reg)["half"]
    assert entry["status"] == "ready"
    assert servers_under(state_local(reg)) == [Server.from_data(entry["provider_data"])]


# -- 5. --env values stay out of the registry ----------------------------------------------------------------
def test_env_values_are_not_in_the_registry(reg, tmp_path):
    nb = write(tmp_path / "envy.ipynb", ENV_ECHO)
    secret = "hunter2-not-in-git"
    res = run_kagg("deploy", str(nb), "--env", f"SECRET_TOKEN={secret}")
    assert res.returncode == 0, res.stderr
    assert secret not in reg.read_text()
    shown = run_kagg("endpoints", "show", "envy")
    assert secret not in shown.stdout and "SECRET_TOKEN" in shown.stdout
    assert json.loads(run_kagg("invoke", "envy").stdout) == {"token": secret}
    env_file = state_local(reg) / "envy" / "env.json"
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    again = run_kagg("deploy", str(nb), "--env", f"SECRET_TOKEN={secret}")
    assert "unchanged, skipped" in again.stdout
    changed = run_kagg("deploy", str(nb), "--env", "SECRET_TOKEN=other")
    assert changed.returncode == 0 and "Updated" in changed.stdout
    assert json.loads(run_kagg("invoke", "envy").stdout) == {"token": "other"}


# -- a provider that fails without saying what it left ---------------------------------------------------------
def test_a_failed_apply_that_says_nothing_leaves_the_entry_pending(tmp_path):
    """A third-party provider whose apply fails midway: kagg cannot know what exists, so it keeps
    the entry pending (named, deletable) instead of forgetting a resource that may cost money."""
    from kagg.deploy import delete, deploy
    from kagg.errors import OperationFailed
    from kagg.model import Endpoint, Plan, PlanStep
    from kagg.providers import register
    from kagg.providers.base import Provider
    from kagg.registry import Registry

    made: list[str] = []

    class HalfwayProvider(Provider):
        name = "halfway"

        def plan(self, artifact, current, options):
            return Plan(self.name, artifact.function.name, artifact, current, options,
                        [PlanStep("create", "create two things")])

        def apply(self, plan):
            made.append(plan.name)
            raise OperationFailed("the second call failed")

        def delete(self, endpoint: Endpoint, options=None):
            made.remove(endpoint.name)
            return []

    register("halfway", HalfwayProvider)
    registry = Registry(tmp_path / "endpoints.json")
    nb = write(tmp_path / "half.ipynb", GOOD)
    with pytest.raises(OperationFailed):
        deploy(str(nb), "halfway", registry=registry)
    entry = registry.get("half")
    assert entry.pending and entry.owner and made == ["half"]
    delete("half", registry)
    assert made == [] and registry.find("half") is None


# -- two notebooks, one derived name --------------------------------------------------------------------------
def test_notebooks_whose_names_collide_do_not_replace_each_other(reg, tmp_path):
    first = write(tmp_path / "日本.ipynb", GOOD)
    second = write(tmp_path / "中国.ipynb", OTHER)
    assert run_kagg("deploy", str(first)).returncode == 0
    name = next(iter(entries(reg)))
    res = run_kagg("deploy", str(second))
    assert res.returncode == 2
    assert "日本.ipynb" in res.stderr and "--name" in res.stderr
    assert entries(reg)[name]["source"]["path"] == str(first)
    assert run_kagg("deploy", str(second), "--name", "china").returncode == 0
    assert run_kagg("deploy", str(first)).returncode == 0  # the same notebook again: fine
    assert sorted(entries(reg)) == sorted([name, "china"])
