"""The spine through the real CLI: deploy locally, call, redeploy, logs, delete, serve, plug-ins."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import urllib.request
from pathlib import Path

import pytest

from conftest import EXAMPLES, ROOT, free_port, run_kagg, wait_until
from notebooks import FAILS_AT_IMPORT, HANDLER, write


def get_json(url: str):
    with urllib.request.urlopen(url, timeout=10) as resp:
        return json.loads(resp.read()), dict(resp.headers)


def pid_running(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def test_deploy_script_mode_invoke_redeploy_delete(reg, tmp_path):
    nb = tmp_path / "hello.ipynb"
    nb.write_bytes((EXAMPLES / "hello.ipynb").read_bytes())
    res = run_kagg("deploy", str(nb))
    assert res.returncode == 0, res.stderr
    assert "Deployed hello (local) -> http://127.0.0.1:" in res.stdout
    entry = json.loads(reg.read_text())["endpoints"]["hello"]
    assert entry["provider"] == "local" and entry["auth"] == "none" and entry["region"] is None
    assert len(entry["source"]["sha256"]) == 64 and len(entry["artifact_sha256"]) == 64
    url, pid = entry["url"], entry["provider_data"]["pid"]
    assert pid_running(pid)

    health, headers = get_json(url + "health")
    assert health["status"] == "ok" and health["function"] == "hello"
    assert health["source_sha256"] == entry["source"]["sha256"]
    schema, _ = get_json(url + "schema")
    assert schema["properties"]["times"]["type"] == "integer"

    res = run_kagg("invoke", "hello", "-q", "name=Ada", "-q", "times=2")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["message"] == "Hello, Ada! Hello, Ada!"
    res = run_kagg("invoke", "hello", '{"name": "Bo", "shout": true}')
    assert json.loads(res.stdout)["message"] == "HELLO, BO!"
    res = run_kagg("invoke", url, '{"times": "many"}')
    assert res.returncode == 1 and res.stderr.startswith("Error: ") and "400" in res.stderr

    res = run_kagg("deploy", str(nb))
    assert res.returncode == 0 and "unchanged, skipped" in res.stdout
    text = nb.read_text().replace("Hello", "Howdy")
    nb.write_text(text)
    res = run_kagg("deploy", str(nb))
    assert res.returncode == 0 and res.stdout.startswith("Updated hello"), res.stdout + res.stderr
    new = json.loads(reg.read_text())["endpoints"]["hello"]
    assert new["url"] == url and new["provider_data"]["pid"] != pid and not pid_running(pid)
    assert new["created_at"] == entry["created_at"]
    assert json.loads(run_kagg("invoke", "hello").stdout)["message"] == "Howdy, world!"

    logs = run_kagg("logs", "hello")
    assert logs.returncode == 0 and "GET" in logs.stdout

    res = run_kagg("delete", "hello")
    assert res.returncode == 0
    assert json.loads(reg.read_text())["endpoints"] == {}
    wait_until(lambda: not pid_running(new["provider_data"]["pid"]), what="the deleted endpoint's server to exit")


def test_handler_mode_json_and_list(reg, tmp_path):
    nb = write(tmp_path / "adder.ipynb", HANDLER)
    port = free_port()
    res = run_kagg("deploy", str(nb), "--name", "adder", "--port", str(port), "--json")
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["status"] == "deployed" and out["endpoint"]["url"] == f"http://127.0.0.1:{port}/"
    res = run_kagg("invoke", "adder", "-d", '{"x": 2}')
    assert json.loads(res.stdout) == {"sum": 3.5, "label": "n"}
    body, headers = get_json(f"http://127.0.0.1:{port}/?x=1&y=2")
    assert body == {"sum": 3.0, "label": "n"}
    assert headers["X-Kagg-Cold"] == "0" and "handler;dur=" in headers["Server-Timing"]
    listed = json.loads(run_kagg("endpoints", "list", "--json").stdout)
    assert [e["name"] for e in listed] == ["adder"]
    shown = json.loads(run_kagg("endpoints", "show", "adder", "--json").stdout)
    assert shown["provider_data"]["port"] == port
    plain = run_kagg("endpoints", "list")
    assert "adder" in plain.stdout and "local" in plain.stdout


def test_modules_beside_the_notebook_are_packaged_and_scanned(reg, tmp_path):
    """``import helpers`` / ``from tools.scale import ...`` next to the notebook work once deployed."""
    (tmp_path / "helpers.py").write_text("def greet(who):\n    return f'hi {who}'\n")
    (tmp_path / "tools").mkdir()
    (tmp_path / "tools" / "__init__.py").write_text("")
    (tmp_path / "tools" / "scale.py").write_text("def double(x):\n    return 2 * x\n")
    nb = write(tmp_path / "uses_helpers.ipynb",
               "import helpers\nfrom tools.scale import double\n\n"
               "def handler(who: str = 'you', x: int = 1):\n    return {'msg': helpers.greet(who), 'x': double(x)}")
    res = run_kagg("deploy", str(nb), "--name", "helped", "--json")
    assert res.returncode == 0, res.stderr
    assert json.loads(run_kagg("invoke", "helped", '{"who": "ann", "x": 4}').stdout) == {"msg": "hi ann", "x": 8}
    converted = json.loads(run_kagg("convert", str(nb), "--json").stdout)
    assert converted["local_files"] == ["helpers.py", "tools/__init__.py", "tools/scale.py"]

    (tmp_path / "helpers.py").write_text("TOKEN = 'ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8" + "'\n"
                                         "def greet(who):\n    return who\n")
    before = reg.read_text()
    res = run_kagg("deploy", str(nb), "--name", "helped")
    assert res.returncode == 2 and "helpers.py, line 1" in res.stderr and "a1B2c3D4" not in res.stderr
    assert reg.read_text() == before


def test_import_failure_fails_deploy_and_leaves_nothing(reg, tmp_path):
    for source, expected in ((FAILS_AT_IMPORT, "ValueError: model file is missing"),
                             ("import kagg_not_a_real_module\ndef handler():\n    return 1",
                              "ModuleNotFoundError: No module named 'kagg_not_a_real_module'")):
        nb = write(tmp_path / "broken.ipynb", source)
        res = run_kagg("deploy", str(nb), "--name", "broken")
        assert res.returncode == 1, res.stdout + res.stderr
        errors = [ln for ln in res.stderr.splitlines() if ln.startswith("Error:")]
        assert len(errors) == 1 and expected in errors[0]
        assert not reg.exists() or json.loads(reg.read_text())["endpoints"] == {}
        ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
        assert f"{reg.parent}/.kagg/local/broken" not in ps


def test_dry_run_changes_nothing(reg, tmp_path):
    nb = write(tmp_path / "adder.ipynb", HANDLER)
    res = run_kagg("deploy", str(nb), "--dry-run")
    assert res.returncode == 0, res.stderr
    assert "Plan for adder on local (dry run, nothing changed):" in res.stdout
    assert "start: start functions-framework" in res.stdout
    assert not reg.exists()


BAD_INPUT_CASES = {
    "missing path": (["deploy", "{tmp}/nope.ipynb"], "does not exist"),
    "directory": (["deploy", "{tmp}"], "directory"),
    "python file": (["deploy", "{tmp}/script.py"], ".py"),
    "invalid json": (["deploy", "{tmp}/bad.ipynb"], "JSON"),
    "r kernel": (["deploy", "{tmp}/r.ipynb"], "R kernel"),
    "nothing to serve": (["deploy", "{tmp}/empty.ipynb"], "handler"),
    "bad parameters cell": (["deploy", "{tmp}/params.ipynb"], "parameters"),
    "bad name": (["deploy", "{tmp}/ok.ipynb", "--name", "Bad_Name!"], "invalid endpoint name"),
    "name of another provider": (["deploy", "{tmp}/ok.ipynb", "--name", "taken"], "already used by a aws"),
    "port in use": (["deploy", "{tmp}/ok.ipynb", "--port", "{busy}"], "already in use"),
    "unknown provider": (["deploy", "{tmp}/ok.ipynb", "--provider", "nimbus"], "unknown provider 'nimbus'"),
    "two providers": (["deploy", "{tmp}/ok.ipynb", "--aws", "--local"], "choose one provider"),
    "env without =": (["deploy", "{tmp}/ok.ipynb", "--env", "FOO"], "KEY=VALUE"),
    "invoke unknown name": (["invoke", "ghost"], "no endpoint named 'ghost'"),
    "invoke bad payload": (["invoke", "taken", "{{nope"], "not valid JSON"),
    "delete unknown name": (["delete", "ghost"], "no endpoint named 'ghost'"),
    "secrets": (["deploy", "{tmp}/secret.ipynb"], "credential"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUT_CASES))
def test_bad_input_one_line_exit_2_registry_unchanged(case, registry_path, tmp_path):
    import socket

    args, expected = BAD_INPUT_CASES[case]
    (tmp_path / "script.py").write_text("print(1)\n")
    (tmp_path / "bad.ipynb").write_text('{"cells": [')
    write(tmp_path / "r.ipynb", "x <- 1", kernel={"kernelspec": {"name": "ir", "language": "R", "display_name": "R"}})
    write(tmp_path / "empty.ipynb", "x = 1")
    write(tmp_path / "params.ipynb", ("a = 1\nb = compute()", ["parameters"]), "result = a")
    write(tmp_path / "ok.ipynb", HANDLER)
    write(tmp_path / "secret.ipynb", "aws_secret_access_key = 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYzK8sQ2mLp4'\n" + HANDLER)
    registry_path.write_text(json.dumps({"version": 1, "endpoints": {"taken": {
        "name": "taken", "provider": "aws", "url": "https://example.invalid/", "auth": "AWS_IAM",
        "region": "us-east-1", "source": {}, "artifact_sha256": None, "created_at": "2026-01-01T00:00:00Z",
        "updated_at": "2026-01-01T00:00:00Z", "provider_data": {}}}}, indent=2))
    before = registry_path.read_bytes()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        res = run_kagg(*[a.format(tmp=tmp_path, busy=port) for a in args])
    assert res.returncode == 2, (case, res.stdout, res.stderr)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), (case, res.stderr)
    assert expected in lines[0], (case, lines[0])
    assert "Traceback" not in res.stderr
    assert registry_path.read_bytes() == before
    assert not (registry_path.parent / ".kagg" / "local").exists()


def test_debug_shows_traceback(tmp_path):
    res = run_kagg("--debug", "deploy", str(tmp_path / "nope.ipynb"))
    assert res.returncode == 2 and "Traceback" in res.stderr and "Error: " in res.stderr


def test_help_and_version_import_no_cloud_sdk():
    code = textwrap.dedent("""
        import sys
        # namespace packages such as ``google`` may be put in sys.modules by an installed
        # .pth file before any code runs; only what kagg itself loads counts
        at_start = set(sys.modules)
        from kagg.cli import main
        for argv in (["--help"], ["--version"], ["deploy", "--help"], ["batch", "--help"], ["monitor", "--help"],
                     ["run", "--help"], ["kaggle", "--help"], ["jobs", "--help"], ["jobs", "start", "--help"]):
            try:
                main(argv)
            except SystemExit as exc:
                assert exc.code == 0, exc.code
        bad = sorted(m for m in set(sys.modules) - at_start if m.split(".")[0] in
                     ("boto3", "botocore", "google", "azure", "kaggle", "kagglesdk", "moto", "rich", "nbformat")
                     or m.startswith(("kagg.providers.gcp", "kagg.providers.aws", "kagg.providers.azure"))
                     or m in ("kagg.jobs_client", "kagg.jobs_template", "kagg.jobs_secrets", "kagg.invoke"))
        print("LOADED", bad)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert out.returncode == 0, out.stderr
    assert "LOADED []" in out.stdout
    version = run_kagg("--version")
    assert version.returncode == 0 and version.stdout.strip() == "kagg, version 0.1.0"


def test_serve_reloads_when_notebook_changes(tmp_path):
    nb = write(tmp_path / "live.ipynb", 'def handler():\n    return {"v": 1}')
    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "kagg", "serve", str(nb), "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                            start_new_session=True)
    url = f"http://127.0.0.1:{port}/"

    def answer():
        try:
            return get_json(url)[0]
        except OSError:  # not listening yet, or restarting
            return None

    value = None
    try:
        wait_until(lambda: answer() == {"v": 1}, what="the first version to answer")
        write(nb, 'def handler():\n    return {"v": 2}')
        try:
            wait_until(lambda: answer() == {"v": 2}, what="the reloaded version to answer")
        except AssertionError:
            pass  # reported below, with what the server printed
        value = answer()
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            out, _ = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate()
    assert value == {"v": 2}, out
    assert "Serving live.ipynb" in out and "Reloading live.ipynb" in out


def test_third_party_provider_via_entry_point(reg, tmp_path):
    """A provider from outside the package, registered as a real distribution's entry point."""
    site = tmp_path / "site"
    (site / "echo_provider").mkdir(parents=True)
    (site / "echo_provider" / "__init__.py").write_text(textwrap.dedent('''
        from kagg.model import Endpoint, Plan, PlanStep
        from kagg.providers.base import Provider

        class EchoProvider(Provider):
            """Deploys nowhere; records where it would have deployed."""
            name = "echo"

            def plan(self, artifact, current, options):
                unchanged = bool(current and current.artifact_sha256 == artifact.sha256)
                return Plan(self.name, artifact.function.name, artifact, current, options,
                            [PlanStep("echo", "pretend to upload " + artifact.path.name)], unchanged)

            def apply(self, plan):
                return Endpoint(name=plan.name, provider=self.name, url="echo://" + plan.name,
                                artifact_sha256=plan.artifact.sha256,
                                source={"path": plan.artifact.function.source.path,
                                        "sha256": plan.artifact.function.source.sha256})

            def delete(self, endpoint, options=None):
                return []
    '''))
    dist = site / "echo_provider-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: echo-provider\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[kagg.providers]\necho = echo_provider:EchoProvider\n")
    env = {"PYTHONPATH": f"{ROOT}{os.pathsep}{site}"}
    nb = write(tmp_path / "adder.ipynb", HANDLER)
    assert "echo" in run_kagg("providers", env=env).stdout.split()
    res = run_kagg("deploy", str(nb), "--provider", "echo", env=env)
    assert res.returncode == 0, res.stderr
    entry = json.loads(reg.read_text())["endpoints"]["adder"]
    assert entry["provider"] == "echo" and entry["url"] == "echo://adder"
    assert "unchanged, skipped" in run_kagg("deploy", str(nb), "--provider", "echo", env=env).stdout
    assert run_kagg("delete", "adder", env=env).returncode == 0
