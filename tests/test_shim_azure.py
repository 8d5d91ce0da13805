"""function_app.py through the azure-functions library, as the Python worker indexes and calls it.

Core Tools cannot run here, so a subprocess with the unzipped artifact on its
path imports function_app, finds the HTTP function with ``app.get_functions()``
and calls it with real ``func.HttpRequest`` objects (cloud-apis.md, Azure).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from functions import handler_function, script_function, unzip
from kagg.packaging.builder import build_artifact

DRIVER = r"""
import base64, json, sys
sys.path.insert(0, sys.argv[1])
import azure.functions as func
import function_app

functions = function_app.app.get_functions()
assert len(functions) == 1, functions
fn = functions[0]
trigger = [b for b in fn.get_bindings() if b.type == "httpTrigger"][0]
user = fn.get_user_function()
out = {"name": fn.get_function_name(), "route": trigger.route,
       "methods": sorted(str(getattr(m, "value", m)) for m in trigger.methods),
       "auth_level": str(getattr(trigger.auth_level, "value", trigger.auth_level)), "responses": []}
base = "https://kagg-test.azurewebsites.net"
for spec in json.load(sys.stdin):
    req = func.HttpRequest(method=spec["method"], url=base + spec["url"], headers=spec.get("headers", {}),
                           params=spec.get("params", {}), route_params=spec.get("route_params", {}),
                           body=spec.get("body", "").encode())
    resp = user(req)
    out["responses"].append({"status": resp.status_code, "headers": dict(resp.headers),
                             "mimetype": resp.mimetype, "body": resp.get_body().decode()})
print(json.dumps(out))
"""

HANDLER_REQUESTS = {
    "post": {"method": "POST", "url": "/", "body": json.dumps({"a": 2, "kind": "numpy"}),
             "headers": {"Content-Type": "application/json"}},
    "get_query": {"method": "GET", "url": "/?a=4&xs=1&xs=2&code=SECRETKEY",
                  "params": {"a": "4", "xs": "2", "code": "SECRETKEY"}},
    "params_only": {"method": "GET", "url": "/", "params": {"a": "6", "flag": "yes"}},
    "pandas": {"method": "POST", "url": "/", "body": json.dumps({"a": 1, "kind": "pandas"})},
    "health": {"method": "GET", "url": "/health", "route_params": {"path": "health"}},
    "schema": {"method": "GET", "url": "/schema/", "route_params": {"path": "schema/"}},
    "bad_json": {"method": "POST", "url": "/", "body": "[1,"},
    "exception": {"method": "POST", "url": "/", "body": json.dumps({"a": -3})},
    "not_found": {"method": "GET", "url": "/other", "route_params": {"path": "other"}},
    "not_allowed": {"method": "PATCH", "url": "/", "body": "{}"},
}


def run(folder: Path, requests: list[dict]) -> tuple[dict, str]:
    proc = subprocess.run([sys.executable, "-c", DRIVER, str(folder)], input=json.dumps(requests),
                          capture_output=True, text=True, timeout=60, cwd=folder)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout), proc.stderr


@pytest.fixture(scope="module")
def azure(tmp_path_factory):
    root = tmp_path_factory.mktemp("azure")
    art = build_artifact(handler_function(), provider="azure", shims=("azure",), out_dir=root / "artifacts")
    assert "function_app.py" in art.files and "host.json" in art.files
    out, stderr = run(unzip(art.path, root / "wwwroot"), list(HANDLER_REQUESTS.values()))
    out["by_name"] = dict(zip(HANDLER_REQUESTS, out["responses"]))
    return out, stderr


def body(response: dict):
    return json.loads(response["body"])


def test_function_indexing(azure):
    out, _ = azure
    assert out["name"] == "kagg_http" and out["route"] == "{*path}"
    assert out["auth_level"] == "function"
    assert {"GET", "POST"} <= set(out["methods"])


def test_post_and_numpy(azure):
    resp = azure[0]["by_name"]["post"]
    assert resp["status"] == 200
    assert body(resp)["array"] == [0, 1] and body(resp)["nan"] is None


def test_query_from_url_keeps_repeats_and_drops_the_key(azure):
    resp = azure[0]["by_name"]["get_query"]
    assert resp["status"] == 200, resp["body"]
    assert body(resp)["a"] == 4 and body(resp)["xs"] == [1, 2]
    params_only = azure[0]["by_name"]["params_only"]
    assert body(params_only)["a"] == 6 and body(params_only)["flag"] is True


def test_pandas(azure):
    assert body(azure[0]["by_name"]["pandas"])["series"] == [1.5, 2.5]


def test_health_and_schema_by_route_param(azure):
    by_name = azure[0]["by_name"]
    assert body(by_name["health"])["status"] == "ok"
    assert body(by_name["schema"]) == handler_function().schema()


def test_errors(azure):
    by_name, stderr = azure[0]["by_name"], azure[1]
    assert by_name["bad_json"]["status"] == 400 and body(by_name["bad_json"])["error"]["type"] == "InvalidJSON"
    assert by_name["exception"]["status"] == 500
    assert body(by_name["exception"]) == {"error": {"type": "ValueError", "message": "a must be >= 0"}}
    assert "Traceback" in stderr and "kagg_notebook.py" in stderr
    assert by_name["not_found"]["status"] == 404
    assert by_name["not_allowed"]["status"] == 405


def test_headers(azure):
    responses = azure[0]["responses"]
    for resp in responses:
        headers = {k.lower(): v for k, v in resp["headers"].items()}
        assert headers["content-type"] == "application/json"
        assert "handler;dur=" in headers["server-timing"]
    cold = [{k.lower(): v for k, v in r["headers"].items()}["x-kagg-cold"] for r in responses]
    assert cold[0] == "1" and set(cold[1:]) == {"0"}


def test_script_mode(tmp_path):
    art = build_artifact(script_function(), provider="azure", shims=("azure",), out_dir=tmp_path / "a")
    out, _ = run(unzip(art.path, tmp_path / "wwwroot"),
                 [{"method": "GET", "url": "/?x=5"}, {"method": "POST", "url": "/", "body": '{"label": "none"}'}])
    first, second = out["responses"]
    assert first["status"] == 200 and body(first)["y"] == 50
    assert second["status"] == 500 and body(second)["error"]["type"] == "MissingResult"
