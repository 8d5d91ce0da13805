"""AWS out of reach, or not set up: said at once and by its real name, through the real CLI."""

from __future__ import annotations

import re

from conftest import free_port

FAST_RETRIES = "attempts=3 base=0.01 cap=0.02"


def errors(result) -> list[str]:
    return [ln for ln in result.stderr.splitlines() if ln.startswith("Error:")]


def test_an_unreachable_endpoint_shows_each_retry_and_names_the_cause(kagg, nb, registry_path):
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    result = kagg("deploy", str(nb), "--aws", env={"AWS_ENDPOINT_URL": url, "KAGG_AWS_RETRY": FAST_RETRIES})
    assert result.returncode == 1, result.stderr
    retries = [ln for ln in result.stderr.splitlines() if ln.startswith("retrying ")]
    assert len(retries) == 2  # three attempts, two waits between them
    assert all(re.fullmatch(rf"retrying \w+( of [\w-]+)? in \d+\.\d s \(cannot connect to {url}\)", ln)
               for ln in retries), retries
    (error,) = errors(result)
    assert f"cannot connect to the endpoint URL {url}" in error and "after 3 attempts" in error
    assert f"AWS_ENDPOINT_URL is {url}" in error
    assert "throttl" not in error.lower() and "Traceback" not in result.stderr
    assert not registry_path.exists()


def test_a_bad_retry_setting_is_bad_input(kagg, nb):
    result = kagg("deploy", str(nb), "--aws", "--dry-run", env={"KAGG_AWS_RETRY": "tries=3"})
    assert result.returncode == 2 and "KAGG_AWS_RETRY" in errors(result)[0]


def test_no_region_and_no_credentials_are_reported_together(kagg, nb, tmp_path, registry_path):
    (tmp_path / "empty").write_text("")
    env = {"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_SESSION_TOKEN": "", "AWS_DEFAULT_REGION": "",
           "AWS_REGION": "", "AWS_CONFIG_FILE": str(tmp_path / "empty"),
           "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "empty")}
    result = kagg("deploy", str(nb), "--aws", env=env)
    assert result.returncode == 2, result.stderr
    (error,) = errors(result)
    assert "no AWS region chosen" in error and "--region" in error
    assert "no AWS credentials found" in error and "AWS_PROFILE" in error
    assert not registry_path.exists()
