"""The errors people hit on Cloud Functions, each one line that says what to do; transient ones retried.

Faults are injected in the Google stand-in (tests/gcp_standin.py): 429/503/ABORTED
answers, a disabled API, a missing permission, a failed build, a container that
fails its health check.
"""

from __future__ import annotations

import json

import pytest

from conftest import run_kagg
from gcp_fixtures import fid, gcp, google_standin, sa_key  # noqa: F401
from gcp_standin import PROJECT


def error_line(result) -> str:
    lines = [ln for ln in result.stderr.splitlines() if ln.startswith("Error:")]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


def endpoints(registry_path) -> dict:
    return json.loads(registry_path.read_text())["endpoints"] if registry_path.exists() else {}


@pytest.mark.parametrize("status", [429, 503, 409])
def test_transient_answers_are_retried_with_backoff(gcp, nb, fid, registry_path, status):
    gcp.faults.transient, gcp.faults.transient_status = 2, status
    result = run_kagg("deploy", str(nb), "--gcp", "--name", fid)
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("retrying") == 2
    assert gcp.function(fid)["state"] == 1 and endpoints(registry_path)[fid]["status"] == "ready"
    assert run_kagg("delete", fid).returncode == 0


def test_a_403_from_the_signed_upload_url_is_tried_again(gcp, nb, fid, registry_path):
    gcp.faults.upload_forbidden = 2  # permissions on the upload bucket propagate slowly (gcloud retries too)
    result = run_kagg("deploy", str(nb), "--gcp", "--name", fid)
    assert result.returncode == 0, result.stderr
    assert gcp.actions().count("upload.put") == 3 and gcp.uploaded(fid) is not None
    assert run_kagg("delete", fid).returncode == 0


def test_retries_are_bounded(gcp, nb, fid, registry_path):
    gcp.faults.transient, gcp.faults.transient_status = 100, 503
    result = run_kagg("deploy", str(nb), "--gcp", "--name", fid)
    assert result.returncode == 1
    line = error_line(result)
    assert "still failing after 4 attempts" in line and "UNAVAILABLE" in line
    assert gcp.function(fid) is None and endpoints(registry_path) == {}


def test_a_disabled_api_names_it_and_the_enable_line(gcp, nb, registry_path):
    gcp.faults.disabled = True
    result = run_kagg("deploy", str(nb), "--gcp")
    assert result.returncode == 1
    line = error_line(result)
    assert "cloudfunctions.googleapis.com API is not enabled" in line
    assert "gcloud services enable cloudfunctions.googleapis.com cloudbuild.googleapis.com" in line
    assert f"--project {PROJECT}" in line and endpoints(registry_path) == {}


@pytest.mark.parametrize("action,permission,args", [
    ("functions.create", "cloudfunctions.functions.create", []),
    ("functions.create", "iam.serviceAccounts.actAs", ["--service-account", f"runner@{PROJECT}.iam.gserviceaccount.com"]),
])
def test_a_missing_permission_is_named_and_nothing_is_left(gcp, nb, fid, registry_path, action, permission, args):
    gcp.faults.deny[action] = permission
    result = run_kagg("deploy", str(nb), "--gcp", "--name", fid, *args)
    assert result.returncode == 1
    line = error_line(result)
    assert f"lack the permission {permission}" in line and PROJECT in line
    assert gcp.function(fid) is None and endpoints(registry_path) == {}


def test_a_failed_build_shows_its_lines_and_log_url_and_a_redeploy_recovers(gcp, nb, fid, registry_path):
    gcp.faults.build_failure = True
    result = run_kagg("deploy", str(nb), "--gcp", "--name", fid)
    assert result.returncode == 1
    line = error_line(result)
    assert line.startswith(f"Error: the deploy of function {fid}: the build failed: ERROR: Could not find a version "
                           f"that satisfies the requirement nosuchpackage")
    assert "https://console.cloud.google.com/cloud-build/builds;region=us-central1/" in line
    assert endpoints(registry_path)[fid]["status"] == "pending"  # the FAILED function is named: delete finds it
    gcp.clear()
    again = run_kagg("deploy", str(nb), "--gcp", "--name", fid)
    assert again.returncode == 0, again.stderr
    assert "functions.patch" in gcp.actions() and gcp.function(fid)["state"] == 1
    assert endpoints(registry_path)[fid]["status"] == "ready"
    assert run_kagg("delete", fid).returncode == 0


def test_a_failed_health_check_says_it_is_usually_an_import_error(gcp, nb, fid, registry_path):
    gcp.faults.health_failure = True
    result = run_kagg("deploy", str(nb), "--gcp", "--name", fid)
    assert result.returncode == 1
    line = error_line(result)
    assert "failed the health check" in line and "crashed at import" in line and f"kagg logs {fid}" in line
    deleted = run_kagg("delete", fid)  # the pending entry names the FAILED function: delete removes it
    assert deleted.returncode == 0, deleted.stderr
    assert gcp.function(fid) is None and endpoints(registry_path) == {}


def test_an_unreachable_api_is_named(nb, registry_path, sa_key, monkeypatch):
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(sa_key))
    monkeypatch.setenv("KAGG_GCP_RETRY", "attempts=2 base=0.01 cap=0.02")
    result = run_kagg("deploy", str(nb), "--gcp")  # KAGG_GCP_API_URL is the closed port of conftest
    assert result.returncode == 1
    line = error_line(result)
    assert "cannot reach http://127.0.0.1:9" in line and "KAGG_GCP_API_URL" in line
