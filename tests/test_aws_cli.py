"""``kagg deploy --aws``, ``invoke`` and ``delete`` through the real CLI, against moto in server mode.

The CLI runs in a subprocess with ``AWS_ENDPOINT_URL`` pointing at the recording
proxy in front of moto, and fake credentials from the conftest fixture: the
same boto3 code path a user with an AWS account runs.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from aws_fixtures import HELLO, aws, fname, moto_stack, notebook_json  # noqa: F401
from conftest import entry, run_kagg
from kagg.providers.aws.settings import SID_INVOKE, SID_URL


def kagg(aws, *args, **env):
    return run_kagg(*args, env={"AWS_ENDPOINT_URL": aws.url, **env})


def test_deploy_redeploy_public_and_delete(aws, nb, fname, registry_path):
    dry = kagg(aws, "deploy", str(nb), "--aws", "--name", fname, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "lambda:CreateFunction" in dry.stdout and "lambda:CreateFunctionUrlConfig" in dry.stdout
    assert aws.proxy.actions(mutating=True) == [] and not registry_path.exists()

    first = kagg(aws, "deploy", str(nb), "--aws", "--name", fname)
    assert first.returncode == 0, first.stderr
    recorded = entry(registry_path, fname)
    assert recorded["provider"] == "aws" and recorded["auth"] == "aws_iam" and recorded["region"] == "us-east-1"
    assert recorded["url"] in first.stdout and recorded["url"].startswith("https://")
    assert recorded["provider_data"]["function_arn"].endswith(f":function:{fname}")

    aws.proxy.clear()
    again = kagg(aws, "deploy", str(nb), "--aws", "--name", fname)
    assert again.returncode == 0 and "unchanged, skipped" in again.stdout
    assert aws.proxy.count("lambda:UpdateFunctionCode") == 0 and aws.proxy.actions(mutating=True) == []

    nb.write_text(notebook_json(HELLO.replace("hello ", "hey ")))
    changed = kagg(aws, "deploy", str(nb), "--aws", "--name", fname, "--public", "--memory", "256")
    assert changed.returncode == 0, changed.stderr
    assert "public" in changed.stdout
    assert aws.proxy.count("lambda:UpdateFunctionCode") == 1
    lam = aws.direct("lambda")
    assert lam.get_function(FunctionName=fname)["Configuration"]["MemorySize"] == 256
    sids = {s["Sid"] for s in json.loads(lam.get_policy(FunctionName=fname)["Policy"])["Statement"]}
    assert {SID_URL, SID_INVOKE} <= sids
    assert entry(registry_path, fname)["auth"] == "none"

    gone = kagg(aws, "delete", fname)
    assert gone.returncode == 0, gone.stderr
    assert fname not in [f["FunctionName"] for f in lam.list_functions()["Functions"]]
    assert json.loads(registry_path.read_text())["endpoints"] == {}


def test_delete_after_the_function_vanished_warns_and_forgets(aws, nb, fname, registry_path):
    assert kagg(aws, "deploy", str(nb), "--aws", "--name", fname).returncode == 0
    aws.direct("lambda").delete_function(FunctionName=fname)
    result = kagg(aws, "delete", fname)
    assert result.returncode == 0, result.stderr
    assert "already gone" in result.stderr + result.stdout
    assert json.loads(registry_path.read_text())["endpoints"] == {}


@pytest.mark.parametrize("args,message", [
    (["--memory", "64"], "memory 64 MB"),
    (["--timeout", "901"], "timeout 901 s"),
    (["--region", "mars-north-1"], "unknown AWS region"),
    (["--name", "x" * 65], "1-64 characters"),
    (["--env", "NOEQUALS"], "NOEQUALS"),
    (["--runtime", "python3.8"], "python3.8"),
])
def test_bad_input_exits_2_in_one_line_and_calls_nothing(aws, nb, registry_path, args, message):
    result = kagg(aws, "deploy", str(nb), "--aws", *args)
    assert result.returncode == 2, result.stderr
    lines = [ln for ln in result.stderr.splitlines() if ln.startswith("Error:")]
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in result.stderr
    assert aws.proxy.actions() == [] and not registry_path.exists()


def test_no_credentials_exits_2_naming_the_ways(aws, nb, tmp_path, registry_path):
    (tmp_path / "empty").write_text("")
    env = {"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_SESSION_TOKEN": "",
           "AWS_CONFIG_FILE": str(tmp_path / "empty"), "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "empty")}
    result = kagg(aws, "deploy", str(nb), "--aws", **env)
    assert result.returncode == 2
    assert "no AWS credentials" in result.stderr and "AWS_PROFILE" in result.stderr
    assert "~/.aws/credentials" in result.stderr and "aws configure" in result.stderr
    assert aws.proxy.actions() == []


class _Recorder(BaseHTTPRequestHandler):
    seen: list[dict] = []

    def log_message(self, *args):
        return None

    def _answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        _Recorder.seen.append({"method": self.command, "path": self.path, "headers": dict(self.headers),
                               "body": body})
        data = json.dumps({"greeting": "signed"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = _answer


def test_invoke_signs_requests_to_a_private_endpoint(aws, nb, fname, registry_path):
    """moto does not serve function URLs: point the recorded URL at a local server and check the signature."""
    assert kagg(aws, "deploy", str(nb), "--aws", "--name", fname).returncode == 0
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        doc = json.loads(registry_path.read_text())
        doc["endpoints"][fname]["url"] = f"http://127.0.0.1:{server.server_address[1]}/"
        registry_path.write_text(json.dumps(doc))
        _Recorder.seen.clear()
        result = kagg(aws, "invoke", fname, '{"name": "kagg"}')
        assert result.returncode == 0, result.stderr
        assert "signed" in result.stdout
        headers = _Recorder.seen[0]["headers"]
        assert headers["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=testing/")
        assert "/us-east-1/lambda/aws4_request" in headers["Authorization"]
        assert headers["X-Amz-Security-Token"] == "testing"
    finally:
        server.shutdown()
        server.server_close()
