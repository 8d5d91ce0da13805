"""``kagg deploy --azure``, ``invoke`` and ``delete`` through the real CLI, against the Azure stand-in.

The CLI runs in a subprocess whose KAGG_AZURE_*_URL settings point at the stand-in
(tests/azure_fixtures.py); the stand-in logs every request, so a test can say
"a redeploy only read" or "a refused deploy changed nothing".
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from azure_fixtures import HELLO, azure, appname, notebook_json  # noqa: F401
from conftest import entry, run_kagg
from kagg.providers.azure import settings as st


def deploy(*args):
    return run_kagg("deploy", *args)


def direct(url: str, key: str | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers={"x-functions-key": key} if key else {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_deploy_skip_change_public_invoke_and_delete(azure, nb, appname, registry_path):
    dry = deploy(str(nb), "--azure", "--name", appname, "--location", "eastus", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "Microsoft.Web/serverfarms/write" in dry.stdout and "Microsoft.Web/sites/publish/Action" in dry.stdout
    assert azure.ops(mutating=True) == [] and not registry_path.exists()

    first = deploy(str(nb), "--azure", "--name", appname, "--location", "eastus")
    assert first.returncode == 0, first.stderr
    assert azure.ops(mutating=True) == ["groups.put", "storage.put", "containers.put", "plans.put", "sites.put",
                                        "scm.publish", "settings.put"]
    recorded = entry(registry_path, appname)
    assert recorded["provider"] == "azure" and recorded["auth"] == "function_key" and recorded["region"] == "eastus"
    assert recorded["url"] == azure.site.replace("{app}", appname) + "/" and recorded["url"] in first.stdout
    data = recorded["provider_data"]
    assert data["resource_group"] == f"kagg-{appname}" and data["plan"] == st.plan_name(appname)
    app_settings = azure.settings[appname]
    assert app_settings["AzureWebJobsDisableHomepage"] == "true"
    assert app_settings[st.SHA_SETTING] == recorded["artifact_sha256"]
    site = next(x for k, x in azure.sites.items() if k[1] == appname)
    assert site["tags"]["kagg-owner"] == recorded["owner"]
    assert site["properties"]["functionAppConfig"]["scaleAndConcurrency"]["instanceMemoryMB"] == 2048
    key = azure.apps[appname].key
    storage_key = next(iter(azure.accounts.values()))["_key"]
    assert key not in registry_path.read_text() and storage_key not in registry_path.read_text()

    assert direct(recorded["url"])[0] == 401  # private by default: the function key is needed
    azure.clear()
    called = run_kagg("invoke", appname, '{"name": "azure"}')
    assert called.returncode == 0, called.stderr
    assert json.loads(called.stdout) == {"greeting": "hello azure"}
    assert key not in called.stdout + called.stderr
    assert azure.count("sites.listKeys") == 1

    azure.clear()
    again = deploy(str(nb), "--azure", "--name", appname)
    assert again.returncode == 0 and "unchanged, skipped" in again.stdout, again.stderr
    assert azure.ops(mutating=True) == [] and azure.ops(host="scm") == []

    nb.write_text(notebook_json(HELLO.replace('"hello "', '"hey "')))
    azure.clear()
    changed = deploy(str(nb), "--azure", "--name", appname, "--memory", "4096")
    assert changed.returncode == 0, changed.stderr
    assert azure.ops(mutating=True) == ["sites.put", "scm.publish", "settings.put"]
    assert json.loads(run_kagg("invoke", appname, '{"name": "x"}').stdout) == {"greeting": "hey x"}

    azure.clear()
    public = deploy(str(nb), "--azure", "--name", appname, "--memory", "4096", "--public")
    assert public.returncode == 0 and "public" in public.stdout, public.stderr
    assert azure.ops(mutating=True) == ["settings.put"]  # the same zip: anonymous is an app setting
    assert entry(registry_path, appname)["auth"] == "none"
    status, body = direct(recorded["url"] + "?name=open")
    assert status == 200 and json.loads(body) == {"greeting": "hey open"}
    status, body = direct(recorded["url"] + "health")
    assert status == 200 and json.loads(body)["status"] == "ok"

    azure.clear()
    gone = run_kagg("delete", appname)
    assert gone.returncode == 0, gone.stderr
    assert azure.ops(mutating=True) == ["sites.delete"]  # no --purge: plan, storage and group stay
    assert azure.plans and azure.accounts and azure.groups
    assert json.loads(registry_path.read_text())["endpoints"] == {}


def test_second_app_in_a_group_shares_it_and_purge_removes_only_what_is_unused(azure, nb, appname, registry_path):
    group = f"{appname}-shared"
    first = deploy(str(nb), "--azure", "--name", appname, "--location", "westeurope", "--resource-group", group)
    assert first.returncode == 0, first.stderr
    azure.clear()
    second = deploy(str(nb), "--azure", "--name", appname + "-b", "--location", "westeurope",
                    "--resource-group", group)
    assert second.returncode == 0, second.stderr
    # the group and storage account are reused; Flex Consumption allows one app per plan
    assert azure.ops(mutating=True) == ["containers.put", "plans.put", "sites.put", "scm.publish", "settings.put"]
    assert len(azure.accounts) == 1 and len(azure.plans) == 2

    one = run_kagg("delete", appname, "--purge")
    assert one.returncode == 0, one.stderr
    assert "other kagg app" in one.stderr and len(azure.accounts) == 1 and len(azure.plans) == 1
    assert group.lower() in azure.groups
    two = run_kagg("delete", appname + "-b", "--purge")
    assert two.returncode == 0, two.stderr
    assert not azure.accounts and not azure.plans and not azure.sites and group.lower() not in azure.groups


def test_purge_never_removes_a_group_kagg_did_not_create(azure, nb, appname, registry_path):
    azure.groups["mine"] = {"id": f"/subscriptions/{azure.subscriptions[0]}/resourceGroups/mine", "name": "mine",
                            "location": "eastus", "tags": {}, "properties": {}}
    assert deploy(str(nb), "--azure", "--name", appname, "--location", "eastus",
                  "--resource-group", "mine").returncode == 0
    assert "groups.put" not in azure.ops(mutating=True)
    gone = run_kagg("delete", appname, "--purge")
    assert gone.returncode == 0, gone.stderr
    assert "mine" in azure.groups and "kagg did not create it" in gone.stderr
    assert not azure.plans and not azure.accounts  # those kagg made, now unused


def test_a_failed_remote_build_shows_its_own_lines(azure, tmp_path, appname, registry_path):
    folder = tmp_path / "nb"
    folder.mkdir()
    (folder / "greet.ipynb").write_text(notebook_json(HELLO))
    (folder / "requirements.txt").write_text("not-a-real-package-kagg==1.0\n")
    result = deploy(str(folder / "greet.ipynb"), "--azure", "--name", appname, "--location", "eastus")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("Error: the remote build of") and "Traceback" not in result.stderr
    assert "No matching distribution found for not-a-real-package-kagg" in lines[-1]
    assert entry(registry_path, appname)["status"] == "pending"  # delete can clean up what was made
    assert run_kagg("delete", appname, "--purge").returncode == 0
    assert not azure.sites and not azure.groups


def test_a_failed_rebuild_keeps_the_previous_version_and_an_import_error_is_shown(azure, tmp_path, appname,
                                                                                  registry_path):
    nbpath = tmp_path / "greet.ipynb"
    nbpath.write_text(notebook_json(HELLO))
    assert deploy(str(nbpath), "--azure", "--name", appname, "--location", "eastus").returncode == 0
    before = entry(registry_path, appname)
    nbpath.write_text(notebook_json(HELLO.replace('"hello "', '"hey "')))
    azure.fail_build[appname] = ["ERROR: Failed building wheel for numpy", "error: subprocess-exited-with-error"]
    failed = deploy(str(nbpath), "--azure", "--name", appname)
    assert failed.returncode == 1 and "Failed building wheel for numpy" in failed.stderr, failed.stderr
    assert "the previous version still serves" in failed.stderr
    after = entry(registry_path, appname)  # the entry says what serves: the previous version
    assert after["status"] == "ready" and after["artifact_sha256"] == before["artifact_sha256"]
    assert json.loads(run_kagg("invoke", appname).stdout) == {"greeting": "hello world"}
    del azure.fail_build[appname]

    nbpath.write_text(notebook_json('LIMIT = int("not a number")\n' + HELLO))
    result = deploy(str(nbpath), "--azure", "--name", appname)
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert "loaded 0 functions" in last and "ValueError: invalid literal for int()" in last
    assert entry(registry_path, appname)["status"] == "pending"  # nothing serves now: a redeploy or delete


def test_app_name_taken_elsewhere_is_refused_with_a_suggestion(azure, nb, appname, registry_path):
    azure.taken_sites.add(appname)
    result = deploy(str(nb), "--azure", "--name", appname, "--location", "eastus")
    assert result.returncode == 2
    assert "is taken" in result.stderr and f"--name {appname}-" in result.stderr
    assert azure.ops(mutating=True) == [] and not registry_path.exists()


@pytest.mark.parametrize("args,message", [
    (["--name", "a", "--location", "eastus"], "2-60 characters"),
    (["--name", "bad_name", "--location", "eastus"], "2-60 characters"),
    (["--name", "x" * 61, "--location", "eastus"], "2-60 characters"),
    (["--name", "{app}", "--location", "atlantis"], "unknown Azure location 'atlantis'"),
    (["--name", "{app}", "--location", "eastus", "--memory", "1024"], "512, 2048, 4096"),
    (["--name", "{app}", "--location", "eastus", "--max-instances", "5"], "40 to 1000"),
    (["--name", "{app}", "--location", "eastus", "--env", "WEBSITE_RUN_FROM_PACKAGE=1"], "reserved"),
    (["--name", "{app}"], "no Azure location chosen"),
    (["--name", "{app}", "--location", "eastus", "--timeout", "30"], "--timeout does not apply to the azure"),
])
def test_bad_input_is_one_line_exit_2_and_changes_nothing(azure, nb, appname, registry_path, args, message):
    result = deploy(str(nb), "--azure", *[a.replace("{app}", appname) for a in args])
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("Error: ") and message in lines[-1], lines
    assert "Traceback" not in result.stderr
    assert azure.ops(mutating=True) == [] and not registry_path.exists()


def test_transient_answers_are_retried(azure, nb, appname, registry_path):
    azure.fail["groups.put"] = [429, "TooManyRequests", "slow down", 1]
    azure.fail["sites.put"] = [503, "ServiceUnavailable", "try later", 2]
    azure.fail["settings.list"] = [500, "InternalServerError", "oops", 1]
    azure.publish_busy = 1  # 409: another deployment is in progress
    result = deploy(str(nb), "--azure", "--name", appname, "--location", "eastus")
    assert result.returncode == 0, result.stderr
    assert azure.count("groups.put") == 2 and azure.count("sites.put") == 3 and azure.count("scm.publish") == 2
    assert json.loads(run_kagg("invoke", appname).stdout) == {"greeting": "hello world"}


def test_set_up_problems_are_named(azure, nb, appname, registry_path):
    azure.web_registered = False
    result = deploy(str(nb), "--azure", "--name", appname, "--location", "eastus")
    assert result.returncode == 2 and "az provider register --namespace Microsoft.Web" in result.stderr
    azure.web_registered = True
    azure.subscriptions.append("99999999-1111-2222-3333-444444444444")
    result = deploy(str(nb), "--azure", "--name", appname, "--location", "eastus")
    assert result.returncode == 2 and "choose one with --subscription" in result.stderr
    ok = deploy(str(nb), "--azure", "--name", appname, "--location", "eastus", "--subscription",
                azure.subscriptions[0], "--dry-run")
    assert ok.returncode == 0, ok.stderr
    assert azure.ops(mutating=True) == []


def test_a_token_the_api_refuses_is_one_line(azure, nb, appname, registry_path, monkeypatch):
    monkeypatch.setenv("KAGG_AZURE_TEST_TOKEN", "wrong")
    result = deploy(str(nb), "--azure", "--name", appname, "--location", "eastus")
    assert result.returncode == 2 and "token was refused" in result.stderr and "az login" in result.stderr
    assert "wrong" not in result.stderr


def test_a_plain_http_url_to_a_real_host_is_refused(nb, appname, registry_path, monkeypatch):
    monkeypatch.setenv("KAGG_AZURE_ARM_URL", "http://management.example.com")
    result = deploy(str(nb), "--azure", "--name", appname, "--location", "eastus")
    assert result.returncode == 2 and "plain http to a remote host" in result.stderr


def test_monitor_signs_every_probe_with_a_key_read_once(azure, nb, appname, registry_path):
    assert deploy(str(nb), "--azure", "--name", appname, "--location", "eastus").returncode == 0
    azure.clear()
    result = run_kagg("monitor", appname, "--count", "6", "--rate", "20/s", "--concurrency", "3", "--json")
    assert result.returncode == 0, result.stderr
    reports = json.loads(result.stdout)["endpoints"]
    assert reports[0]["statuses"] == {"200": 6}, reports
    assert azure.count("sites.listKeys") == 1 and azure.count("site.call") >= 6
    assert azure.apps[appname].key not in result.stdout + result.stderr


def test_a_deploy_killed_midway_leaves_a_pending_entry_that_delete_cleans_up(azure, nb, appname, registry_path):
    import os
    import signal
    import subprocess
    import sys
    import threading

    from conftest import ROOT, wait_until

    azure.hold_publish = threading.Event()
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "kagg", "deploy", str(nb), "--azure", "--name", appname,
                             "--location", "eastus"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(azure.publish_arrived.is_set, what="the publish request")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        azure.hold_publish.set()
        if proc.poll() is None:
            proc.kill()
    pending = entry(registry_path, appname)
    assert pending["status"] == "pending"
    assert {"resource_group", "app", "plan", "storage_account", "container"} <= set(pending["provider_data"])
    gone = run_kagg("delete", appname, "--purge")
    assert gone.returncode == 0, gone.stderr
    assert not azure.sites and not azure.plans and not azure.accounts and not azure.groups


def test_a_storage_name_taken_elsewhere_is_refused_before_anything_is_made(azure, nb, appname, registry_path):
    azure.taken_accounts.add(st.storage_account_name(azure.subscriptions[0], f"kagg-{appname}"))
    result = deploy(str(nb), "--azure", "--name", appname, "--location", "eastus")
    assert result.returncode == 2 and "is taken by another subscription" in result.stderr, result.stderr
    assert "choose another --resource-group" in result.stderr
    assert azure.ops(mutating=True) == [] and not registry_path.exists()


def test_env_values_reach_the_app_never_the_registry_and_a_dropped_one_is_removed(azure, nb, appname,
                                                                                  registry_path):
    assert deploy(str(nb), "--azure", "--name", appname, "--location", "eastus",
                  "--env", "MODE=s3cr3t-value").returncode == 0
    assert azure.settings[appname]["MODE"] == "s3cr3t-value"
    assert "s3cr3t-value" not in registry_path.read_text()
    assert entry(registry_path, appname)["provider_data"]["env_keys"] == ["MODE"]
    azure.settings[appname]["APPLICATIONINSIGHTS_CONNECTION_STRING"] = "InstrumentationKey=someone-elses"
    azure.clear()
    again = deploy(str(nb), "--azure", "--name", appname)
    assert again.returncode == 0, again.stderr
    assert azure.ops(mutating=True) == ["settings.put"] and "storage.listKeys" not in azure.ops()
    kept = azure.settings[appname]
    assert "MODE" not in kept and kept["APPLICATIONINSIGHTS_CONNECTION_STRING"] == "InstrumentationKey=someone-elses"
    assert "AccountKey=" in kept["AzureWebJobsStorage"]  # the connection strings were kept as they were
