"""The Azure artifact as the provider builds it, run by azure-functions alone.

The zip is unzipped into an empty folder and its function called with
azure-functions' own ``HttpRequest`` in a subprocess started with ``-I -S``
(no site-packages, no PYTHONPATH) whose path holds only that folder and a copy
of the installed azure-functions distribution (with werkzeug, its one
dependency): what the Flex Consumption worker has after the remote build of a
notebook that needs nothing else.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from importlib import metadata
from pathlib import Path

import pytest

from azure_fixtures import HELLO, notebook_json
from kagg.deploy import convert_checked
from kagg.model import DeployOptions
from kagg.providers.azure.provider import AzureProvider

DRIVER = r"""
import json, sys
sys.path[:0] = [sys.argv[1], sys.argv[2]]
import azure.functions as func
import function_app

fn = function_app.app.get_functions()[0]
trigger = [b for b in fn.get_bindings() if b.type == "httpTrigger"][0]
user = fn.get_user_function()
out = {"auth_level": str(getattr(trigger.auth_level, "value", trigger.auth_level)), "route": trigger.route,
       "site_packages": [p for p in sys.path if "site-packages" in p],
       "kagg_loaded": sorted(m for m in sys.modules if m == "kagg" or m.startswith("kagg.")), "responses": []}
for spec in json.load(sys.stdin):
    req = func.HttpRequest(method=spec["method"], url="https://app.azurewebsites.net" + spec["url"],
                           headers={}, params=spec.get("params", {}), route_params={"path": spec["path"]},
                           body=spec.get("body", "").encode())
    resp = user(req)
    out["responses"].append({"status": resp.status_code, "body": json.loads(resp.get_body())})
print(json.dumps(out))
"""

REQUESTS = [{"method": "POST", "url": "/", "path": "", "body": '{"name": "flex", "times": 2}'},
            {"method": "GET", "url": "/?name=q", "path": "", "params": {"name": "q"}},
            {"method": "GET", "url": "/health", "path": "health"},
            {"method": "GET", "url": "/schema", "path": "schema"},
            {"method": "POST", "url": "/", "path": "", "body": '{"nope": 1}'}]


def copy_distribution(name: str, dest: Path, seen: set[str]) -> None:
    """The installed files of ``name`` and of what it requires (markers for this Python honoured)."""
    from packaging.requirements import Requirement

    if name.lower() in seen:
        return
    seen.add(name.lower())
    dist = metadata.distribution(name)
    for f in dist.files or []:
        if "__pycache__" in f.parts or f.parts[0].endswith(".dist-info") or str(f).startswith(".."):
            continue
        target = dest / f
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(f.locate(), target)
    for text in dist.requires or []:
        req = Requirement(text)
        if req.marker is None or req.marker.evaluate({"extra": ""}):
            copy_distribution(req.name, dest, seen)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("azure-artifact")
    (root / "greet.ipynb").write_text(notebook_json(HELLO))
    provider = AzureProvider(state_dir=root / ".kagg", credential=object())
    function = convert_checked(str(root / "greet.ipynb"), name="greet")
    first = provider.build(function, DeployOptions())
    second = provider.build(convert_checked(str(root / "greet.ipynb"), name="greet"), DeployOptions())
    libs = root / "libs"
    copy_distribution("azure-functions", libs, set())
    folder = root / "wwwroot"
    with zipfile.ZipFile(first.path) as z:
        z.extractall(folder)
    return first, second, folder, libs


def run(folder: Path, libs: Path, env: dict | None = None) -> dict:
    proc = subprocess.run([sys.executable, "-I", "-S", "-c", DRIVER, str(folder), str(libs)],
                          input=json.dumps(REQUESTS), capture_output=True, text=True, timeout=60, cwd=folder,
                          env=env or {})
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_the_zip_is_deterministic_and_has_the_v2_layout(built):
    first, second, folder, _ = built
    assert first.sha256 == second.sha256 and first.path.read_bytes() == second.path.read_bytes()
    assert {"function_app.py", "host.json", "requirements.txt", "kagg_runtime.py", "kagg.json"} <= set(first.files)
    host = json.loads((folder / "host.json").read_text())
    assert host["version"] == "2.0" and host["extensions"]["http"]["routePrefix"] == ""
    assert "azure-functions" in (folder / "requirements.txt").read_text().split()


def test_the_function_runs_with_azure_functions_alone(built):
    _, _, folder, libs = built
    out = run(folder, libs)
    assert out["site_packages"] == [] and out["kagg_loaded"] == []
    assert out["route"] == "{*path}" and out["auth_level"] == "function"
    post, get, health, schema, bad = out["responses"]
    assert post == {"status": 200, "body": {"greeting": "hello flex hello flex"}}
    assert get == {"status": 200, "body": {"greeting": "hello q"}}
    assert health["status"] == 200 and health["body"]["status"] == "ok" and health["body"]["function"] == "greet"
    assert schema["body"]["properties"]["times"]["type"] == "integer"
    assert bad["status"] == 400 and "error" in bad["body"]


def test_the_public_app_setting_makes_the_route_anonymous(built):
    _, _, folder, libs = built
    assert run(folder, libs, env={"KAGG_AUTH_LEVEL": "anonymous"})["auth_level"] == "anonymous"
