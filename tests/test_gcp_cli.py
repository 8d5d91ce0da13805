"""``kagg deploy --gcp``, ``invoke``, ``logs`` and ``delete`` through the real CLI, against the Google stand-in.

The CLI runs in a subprocess with ``KAGG_GCP_API_URL`` pointing at the stand-in
and ``GOOGLE_APPLICATION_CREDENTIALS`` naming a service-account key made for
the test (its ``token_uri`` is the stand-in's): the SDK code path a user with a
key file runs. The stand-in's request log says which calls were made.
"""

from __future__ import annotations

import json

import pytest

from aws_fixtures import HELLO, notebook_json
from conftest import entry, run_kagg
from gcp_fixtures import fid, gcp, google_standin, sa_key, user_adc  # noqa: F401
from gcp_standin import PROJECT

A = "%24alt=json%3Benum-encoding%3Dint"


def error_line(result) -> str:
    lines = [ln for ln in result.stderr.splitlines() if ln.startswith("Error:")]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


def test_deploy_redeploy_change_public_and_delete(gcp, nb, fid, registry_path):
    dry = run_kagg("deploy", str(nb), "--gcp", "--name", fid, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "functions.create" in dry.stdout and "functions.generateUploadUrl" in dry.stdout
    assert gcp.actions(mutating=True) == [] and not registry_path.exists()

    gcp.clear()
    first = run_kagg("deploy", str(nb), "--gcp", "--name", fid)
    assert first.returncode == 0, first.stderr
    base = f"/v2/projects/{PROJECT}/locations/us-central1"
    lines = [ln for ln in gcp.lines() if ln != "POST /token"]
    assert lines[0] == f"GET /v2/projects/{PROJECT}/locations" and lines[1].startswith(f"GET /v2/projects/{PROJECT}/"
                                                                                      f"locations?pageToken=2")
    del lines[1]  # the second page of regions
    assert lines[:5] == [  # the request lines of the notes, in gcloud's order
        f"GET /v2/projects/{PROJECT}/locations",
        f"GET {base}/functions/{fid}?{A}",
        f"POST {base}/functions:generateUploadUrl?{A}",
        lines[3],
        f"POST {base}/functions?functionId={fid}&{A}"]
    assert lines[3].startswith("PUT /upload/") and all(ln.startswith(f"GET {base}/operations/") for ln in lines[5:])
    put = next(s for s in gcp.log if s.action == "upload.put")
    assert put.headers.get("content-type") == "application/zip" and "authorization" not in put.headers
    created = gcp.function(fid)
    assert created["environment"] == 2 and created["buildConfig"]["runtime"] == "python312"
    assert created["buildConfig"]["entryPoint"] == "kagg_http"
    assert created["serviceConfig"]["availableMemory"] == "512Mi"
    recorded = entry(registry_path, fid)
    assert created["labels"]["kagg-owner"] == recorded["owner"]
    assert created["labels"]["kagg-sha256"] == recorded["artifact_sha256"][:63]
    assert recorded["provider"] == "gcp" and recorded["auth"] == "google_id_token"
    assert recorded["region"] == "us-central1" and recorded["url"] in first.stdout
    assert recorded["provider_data"]["project"] == PROJECT
    assert "/v2/" + recorded["provider_data"]["service"] == f"{base}/services/{fid}"
    assert not gcp.is_public(fid)

    gcp.clear()
    again = run_kagg("deploy", str(nb), "--gcp", "--name", fid)
    assert again.returncode == 0 and "unchanged, skipped" in again.stdout, again.stderr
    assert gcp.actions() == ["functions.get"]  # one read, no write

    gcp.clear()
    nb.write_text(notebook_json(HELLO.replace("hello ", "hey ")))
    changed = run_kagg("deploy", str(nb), "--gcp", "--name", fid)
    assert changed.returncode == 0, changed.stderr
    patch = next(s for s in gcp.log if s.action == "functions.patch")
    assert "updateMask=buildConfig.source%2Clabels" in patch.query
    assert gcp.actions(mutating=True) == ["functions.generateUploadUrl", "upload.put", "functions.patch"]

    gcp.clear()
    config = run_kagg("deploy", str(nb), "--gcp", "--name", fid, "--memory", "1024", "--public")
    assert config.returncode == 0, config.stderr
    assert "public" in config.stdout
    patch = next(s for s in gcp.log if s.action == "functions.patch")
    assert "updateMask=serviceConfig.availableMemory&" in patch.query  # no upload, only what changed
    assert "upload.put" not in gcp.actions()
    assert gcp.function(fid)["serviceConfig"]["availableMemory"] == "1Gi"
    assert gcp.is_public(fid) and entry(registry_path, fid)["auth"] == "none"

    gcp.clear()
    private = run_kagg("deploy", str(nb), "--gcp", "--name", fid, "--memory", "1024")
    assert private.returncode == 0, private.stderr
    assert gcp.actions(mutating=True) == ["run.services.setIamPolicy"] and not gcp.is_public(fid)
    assert entry(registry_path, fid)["auth"] == "google_id_token"

    gone = run_kagg("delete", fid)
    assert gone.returncode == 0, gone.stderr
    assert gcp.function(fid) is None and json.loads(registry_path.read_text())["endpoints"] == {}


def test_invoke_of_a_private_function_sends_an_id_token_for_its_url(gcp, nb, fid, registry_path):
    assert run_kagg("deploy", str(nb), "--gcp", "--name", fid).returncode == 0
    gcp.clear()
    result = run_kagg("invoke", fid, '{"name": "kagg"}')
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["caller"] == f"deployer@{PROJECT}.iam.gserviceaccount.com"
    call = next(s for s in gcp.log if s.action == "invoke")
    token = call.headers["authorization"].split(" ", 1)[1]
    from gcp_standin_edges import jwt_payload

    assert jwt_payload(token)["aud"] == gcp.url  # the function URL's origin, as Cloud Run checks
    logs = run_kagg("logs", fid)
    assert logs.returncode == 0 and f"POST /run/{fid}/ from deployer@" in logs.stdout, logs.stderr

    gcp.clear()  # kagg monitor signs through the same provider hook
    monitor = run_kagg("monitor", fid, "--count", "3", "--rate", "50/s", "--payload", '{"name": "m"}', "--json")
    assert monitor.returncode == 0, monitor.stderr
    probes = [s for s in gcp.log if s.action == "invoke"]
    assert len(probes) >= 3 and all(s.status == 200 and s.headers["authorization"].startswith("Bearer ")
                                    for s in probes)
    assert sum(1 for s in gcp.log if s.action == "token") == 1  # one ID token, cached for the run

    gcp.faults.deny["logging.list"] = "logging.logEntries.list"
    refused = run_kagg("logs", fid)
    assert refused.returncode == 1
    line = error_line(refused)
    assert "roles/logging.viewer" in line and f"https://console.cloud.google.com/run/detail/us-central1/{fid}/logs" in line
    assert run_kagg("delete", fid).returncode == 0


def test_user_credentials_cannot_sign_and_say_what_to_do(gcp, nb, fid, registry_path, tmp_path):
    assert run_kagg("deploy", str(nb), "--gcp", "--name", fid).returncode == 0
    result = run_kagg("invoke", fid, env={"GOOGLE_APPLICATION_CREDENTIALS": str(user_adc(tmp_path / "adc.json"))})
    assert result.returncode == 2
    line = error_line(result)
    assert "cannot mint" in line and "--impersonate" in line and "service account key file" in line
    impersonated = run_kagg("invoke", fid, env={"KAGG_GCP_IMPERSONATE": f"runner@{PROJECT}.iam.gserviceaccount.com"})
    assert impersonated.returncode == 0, impersonated.stderr
    assert json.loads(impersonated.stdout)["caller"] == f"runner@{PROJECT}.iam.gserviceaccount.com"
    assert "iam.generateIdToken" in gcp.actions()
    assert run_kagg("delete", fid).returncode == 0


def test_delete_of_a_function_already_gone_warns_and_forgets(gcp, nb, fid, registry_path):
    assert run_kagg("deploy", str(nb), "--gcp", "--name", fid).returncode == 0
    with gcp.lock:
        del gcp.functions[f"projects/{PROJECT}/locations/us-central1/functions/{fid}"]
    result = run_kagg("delete", fid)
    assert result.returncode == 0, result.stderr
    assert "already gone" in result.stderr + result.stdout
    assert json.loads(registry_path.read_text())["endpoints"] == {}


@pytest.mark.parametrize("args,message", [
    (["--name", "Bad_Name"], "lower-case letters, digits and '-'"),
    (["--name", "a" * 64], "1-63 characters"),
    (["--name", "1abc"], "starting with a letter"),
    (["--region", "mars-north1"], "unknown Google Cloud region 'mars-north1'"),
    (["--memory", "300"], "memory 300 MB is not a Cloud Functions size"),
    (["--timeout", "2h"], "timeout 7200 s"),
    (["--env", "PORT=1"], "reserved"),
    (["--runtime", "python3.12"], "--runtime does not apply to the gcp provider"),
])
def test_bad_input_exits_2_in_one_line_and_creates_nothing(gcp, nb, registry_path, args, message):
    result = run_kagg("deploy", str(nb), "--gcp", *args)
    assert result.returncode == 2, result.stderr
    assert message in error_line(result)
    assert "building" not in result.stderr  # refused before anything was built
    assert gcp.actions(mutating=True) == [] and not registry_path.exists()


def test_no_project_is_a_clear_error(gcp, nb, registry_path, tmp_path):
    from gcp_fixtures import service_account_key

    key = service_account_key(tmp_path / "noproject.json", f"{gcp.url}/token", project="")
    result = run_kagg("deploy", str(nb), "--gcp", env={"GOOGLE_APPLICATION_CREDENTIALS": str(key)})
    assert result.returncode == 2
    line = error_line(result)
    assert "no Google Cloud project" in line and "--project" in line and "GOOGLE_CLOUD_PROJECT" in line
    assert gcp.actions() == [] and not registry_path.exists()


def test_no_credentials_is_a_clear_error(gcp, nb, registry_path, tmp_path):
    result = run_kagg("deploy", str(nb), "--gcp", env={"GOOGLE_APPLICATION_CREDENTIALS": str(tmp_path / "none.json")})
    assert result.returncode == 2
    assert "GOOGLE_APPLICATION_CREDENTIALS" in error_line(result)
    assert gcp.actions() == [] and not registry_path.exists()


def test_providers_lists_gcp_as_available(gcp):
    result = run_kagg("providers", "--json")
    assert result.returncode == 0, result.stderr
    assert {"name": "gcp", "available": True, "install": None} in json.loads(result.stdout)
