"""lambda_function.py with real function-URL events (payload 2.0), as Lambda's Python runtime calls it.

The artifact is unzipped into an empty folder and imported by ``python -I -S``:
only that folder and the standard library, which is all a Lambda package
without dependencies has. That also proves the runtime needs nothing else.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

import pytest

from functions import failing_function, handler_function, script_function, unzip
from kagg.packaging.builder import build_artifact

DRIVER = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
import lambda_function
assert "numpy" not in sys.modules and "kagg" not in sys.modules
events = json.load(sys.stdin)
results = [lambda_function.handler(e, None) for e in events]
binary = lambda_function.kagg_runtime.Response(200, {"Set-Cookie": "a=b"}, b"\xff\x00")
requests = []
for e in events:
    r = lambda_function.to_request(e)
    requests.append({"method": r.method, "path": r.path, "query": r.query, "headers": r.headers,
                     "body": r.body.decode("utf-8", "replace")})
print(json.dumps({"results": results, "binary": lambda_function.to_result(binary), "requests": requests}))
"""


def event(method: str = "GET", path: str = "/", query: str = "", body: str | bytes | None = None,
          headers: dict | None = None, cookies: list | None = None, b64: bool = False) -> dict:
    """A function-URL event shaped like the ones AWS sends (payload format 2.0)."""
    hdrs = {"host": "abc.lambda-url.us-east-1.on.aws", "user-agent": "curl/8", "x-amzn-trace-id": "Root=1-x"}
    hdrs.update(headers or {})
    ev = {
        "version": "2.0", "routeKey": "$default", "rawPath": path, "rawQueryString": query,
        "headers": hdrs, "isBase64Encoded": b64,
        "requestContext": {
            "accountId": "anonymous", "apiId": "abc", "domainName": hdrs["host"], "domainPrefix": "abc",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "1.2.3.4",
                     "userAgent": "curl/8"},
            "requestId": "r-1", "routeKey": "$default", "stage": "$default",
            "time": "01/Jan/2026:00:00:00 +0000", "timeEpoch": 1767225600000,
        },
    }
    if query:
        from urllib.parse import parse_qs
        ev["queryStringParameters"] = {k: ",".join(v) for k, v in parse_qs(query).items()}
    if cookies:
        ev["cookies"] = cookies
    if body is not None:
        if b64:
            ev["body"] = base64.b64encode(body if isinstance(body, bytes) else body.encode()).decode()
        else:
            ev["body"] = body
    return ev


def run_events(folder: Path, events: list[dict]) -> list[dict]:
    proc = subprocess.run([sys.executable, "-I", "-S", "-c", DRIVER, str(folder)], input=json.dumps(events),
                          capture_output=True, text=True, timeout=60, cwd=folder)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    for result, request in zip(out["results"], out["requests"]):
        result["request"] = request  # what the shim handed the runtime
    return out["results"], out["binary"], proc.stderr


HANDLER_EVENTS = {
    "get_query": event("GET", "/", "a=3&xs=1&xs=two&name=a+b%21&flag=no"),
    "post_json": event("POST", "/", body=json.dumps({"a": 2, "opts": {"k": "v"}}),
                       headers={"content-type": "application/json"}),
    "post_b64": event("POST", "/", body=json.dumps({"a": 5, "name": "é"}).encode(), b64=True,
                      headers={"content-type": "application/json"}),
    "bad_json": event("POST", "/", body="{nope", headers={"content-type": "application/json"}),
    "missing": event("POST", "/", body="{}"),
    "exception": event("POST", "/", body='{"a": -1}'),
    "cookies": event("GET", "/", "a=1", cookies=["session=abc", "theme=dark"]),
    "blank": event("GET", "/", "a=1&name="),
    "health": event("GET", "/health/"),
    "schema": event("GET", "/schema"),
    "not_found": event("GET", "/nope"),
    "not_allowed": event("DELETE", "/"),
    "direct_invoke": {"a": 7},
    "rest_api_v1": {"version": "1.0", "httpMethod": "GET", "path": "/", "headers": {"Accept": "*/*"},
                    "multiValueQueryStringParameters": {"a": ["8"], "xs": ["1", "2"]},
                    "requestContext": {"httpMethod": "GET"}, "body": None, "isBase64Encoded": False},
}


@pytest.fixture(scope="module")
def handler_results(tmp_path_factory):
    root = tmp_path_factory.mktemp("lambda")
    art = build_artifact(handler_function(), provider="aws", shims=("lambda",), out_dir=root / "artifacts")
    folder = unzip(art.path, root / "task")
    results, binary, stderr = run_events(folder, list(HANDLER_EVENTS.values()))
    return dict(zip(HANDLER_EVENTS, results), binary=binary), stderr


def body(result: dict):
    assert result["isBase64Encoded"] is False
    return json.loads(result["body"])


def test_response_shape(handler_results):
    results, _ = handler_results
    for name, result in results.items():
        if name == "binary":
            continue
        assert isinstance(result["statusCode"], int), name
        assert isinstance(result["body"], str)
        assert result["headers"]["Content-Type"] == "application/json"
        assert "X-Kagg-Instance" in result["headers"] and "Server-Timing" in result["headers"]


def test_get_with_repeated_keys(handler_results):
    result = handler_results[0]["get_query"]
    assert result["statusCode"] == 200
    data = body(result)
    assert (data["a"], data["xs"], data["name"], data["flag"]) == (3, [1, "two"], "a b!", False)


def test_post_json_and_base64_body(handler_results):
    results, _ = handler_results
    assert body(results["post_json"])["opts"] == {"k": "v"}
    assert results["post_b64"]["statusCode"] == 200
    assert body(results["post_b64"])["name"] == "é"


def test_client_errors(handler_results):
    results, _ = handler_results
    assert results["bad_json"]["statusCode"] == 400
    assert body(results["bad_json"])["error"]["type"] == "InvalidJSON"
    assert body(results["missing"])["error"]["type"] == "MissingParameter"
    assert results["not_found"]["statusCode"] == 404
    assert results["not_allowed"]["statusCode"] == 405


def test_handler_exception(handler_results):
    results, stderr = handler_results
    assert results["exception"]["statusCode"] == 500
    assert body(results["exception"]) == {"error": {"type": "ValueError", "message": "a must be >= 0"}}
    assert "Traceback" in stderr and "kagg_notebook.py" in stderr


def test_cookies_become_a_cookie_header(handler_results):
    result = handler_results[0]["cookies"]
    assert result["statusCode"] == 200 and "cookies" not in result
    assert result["request"]["headers"]["cookie"] == "session=abc; theme=dark"


def test_event_to_request(handler_results):
    request = handler_results[0]["get_query"]["request"]
    assert request["method"] == "GET" and request["path"] == "/"
    assert request["query"] == {"a": ["3"], "xs": ["1", "two"], "name": ["a b!"], "flag": ["no"]}
    assert request["headers"]["user-agent"] == "curl/8"
    assert handler_results[0]["post_b64"]["request"]["body"] == json.dumps({"a": 5, "name": "é"})
    health = handler_results[0]["health"]["request"]
    assert health["path"] == "/health/" and health["query"] == {}
    assert body(handler_results[0]["blank"])["name"] == ""


def test_health_schema_and_cold_flag(handler_results):
    results, _ = handler_results
    assert body(results["health"])["function"] == "kitchen"
    assert body(results["schema"]) == handler_function().schema()
    flags = [r["headers"]["X-Kagg-Cold"] for k, r in results.items() if k != "binary"]
    assert flags[0] == "1" and set(flags[1:]) == {"0"}
    assert results["get_query"]["headers"]["Server-Timing"].startswith("init;dur=")
    assert len({r["headers"]["X-Kagg-Instance"] for k, r in results.items() if k != "binary"}) == 1


def test_direct_invoke_payload_is_the_body(handler_results):
    result = handler_results[0]["direct_invoke"]
    assert result["statusCode"] == 200 and body(result)["a"] == 7


def test_api_gateway_rest_event(handler_results):
    result = handler_results[0]["rest_api_v1"]
    assert result["statusCode"] == 200, result["body"]
    assert body(result)["a"] == 8 and body(result)["xs"] == [1, 2]


def test_script_mode(tmp_path):
    art = build_artifact(script_function(), provider="aws", shims=("lambda",), out_dir=tmp_path / "a")
    folder = unzip(art.path, tmp_path / "task")
    results, _, _ = run_events(folder, [event("GET", "/", "x=4&label=z"), event("POST", "/", body='{"x": "no"}'),
                                     event("POST", "/", body='{"label": "none"}')])
    assert results[0]["statusCode"] == 200 and body(results[0])["y"] == 40
    assert results[1]["statusCode"] == 400
    assert body(results[2])["error"]["type"] == "MissingResult"


def test_non_utf8_response_is_base64_and_cookies_move(handler_results):
    result = handler_results[0]["binary"]
    assert result["isBase64Encoded"] is True and base64.b64decode(result["body"]) == b"\xff\x00"
    assert result["cookies"] == ["a=b"] and "Set-Cookie" not in result["headers"]


def test_import_failure_fails_the_init(tmp_path):
    art = build_artifact(failing_function(), provider="aws", shims=("lambda",), out_dir=tmp_path / "a")
    folder = unzip(art.path, tmp_path / "task")
    proc = subprocess.run([sys.executable, "-I", "-S", "-c", DRIVER, str(folder)], input="[]",
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and "boom while loading the notebook" in proc.stderr
    assert "kagg_notebook.py" in proc.stderr
