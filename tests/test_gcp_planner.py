"""The gcp planner on hand-made RemoteState values: no server, no SDK, only decisions.

Each test states what exists (a function as ``Function.to_dict`` gives it, and
whether allUsers may invoke it) and what is asked, and checks the calls and
the update mask.
"""

from __future__ import annotations

import pytest

from kagg.errors import BadInput
from kagg.model import DeployOptions, Endpoint
from kagg.providers.base import OWNER_TAG
from kagg.providers.gcp import settings
from kagg.providers.gcp.planner import ArtifactInfo, camel, changed_fields, desired_function, is_unchanged, plan_calls
from kagg.providers.gcp.remote import RemoteState
from kagg.providers.gcp.settings import Settings

SHA = "ab" * 32
ART = ArtifactInfo("fn", "fn", SHA, 2048)


def s(**kw) -> Settings:
    return Settings(project="proj-123456", region="us-central1", owner="o1", **kw)


def deployed(settings_: Settings, sha: str = SHA, **service) -> dict:
    """The function as GCF returns it after kagg made it with ``settings_`` (plus what GCF adds)."""
    fn = desired_function(ArtifactInfo("fn", "fn", sha, 2048), settings_, None)
    fn["service_config"]["environment_variables"]["LOG_EXECUTION_ID"] = "true"
    fn["service_config"].update(service_account_email="1-compute@developer.gserviceaccount.com",
                                uri="https://fn-x-uc.a.run.app", service="projects/p/locations/r/services/fn")
    fn["service_config"].update(service)
    fn["state"] = 1
    return fn


def kinds(calls) -> list[str]:
    return [c.kind for c in calls]


def test_a_new_function_is_uploaded_created_and_waited_for_and_stays_private():
    calls = plan_calls(ART, s(), RemoteState())
    assert kinds(calls) == ["upload", "create", "wait"]
    assert [c.mutating for c in calls] == [True, True, False]


def test_a_new_public_function_also_gets_allusers_invoker():
    assert kinds(plan_calls(ART, s(public=True), RemoteState()))[-1] == "set_public"


def test_unchanged_is_no_call_at_all():
    state = RemoteState(function=deployed(s()), public=False)
    calls = plan_calls(ART, s(), state)
    assert calls == [] and is_unchanged(calls, state)


def test_memory_in_another_spelling_is_the_same():
    state = RemoteState(function=deployed(s(), available_memory="512M"), public=False)
    assert plan_calls(ART, s(), state) == []


def test_new_code_uploads_and_patches_source_and_labels_only():
    state = RemoteState(function=deployed(s(), sha="cd" * 32), public=False)
    calls = plan_calls(ART, s(), state)
    assert kinds(calls) == ["upload", "update", "wait"]
    assert calls[1].mask == ["build_config.source", "labels"]
    assert "updateMask=buildConfig.source,labels" in calls[1].description


def test_config_only_change_patches_exactly_that_field_without_upload():
    state = RemoteState(function=deployed(s()), public=False)
    calls = plan_calls(ART, s(memory=1024, timeout=120), state)
    assert kinds(calls) == ["update", "wait"]
    assert calls[0].mask == ["service_config.available_memory", "service_config.timeout_seconds"]


def test_env_added_by_gcf_is_no_change_but_a_new_value_is():
    state = RemoteState(function=deployed(s(env={"A": "1"})), public=False)
    assert plan_calls(ART, s(env={"A": "1"}), state) == []
    assert plan_calls(ART, s(env={"A": "2"}), state)[0].mask == ["service_config.environment_variables"]


def test_a_failed_last_deploy_redeploys_the_code():
    fn = deployed(s())
    fn["state"] = 2
    calls = plan_calls(ART, s(), RemoteState(function=fn, public=False))
    assert kinds(calls)[:2] == ["upload", "update"] and "last deploy failed" in calls[1].description


def test_force_redeploys_the_same_code():
    calls = plan_calls(ART, s(force=True), RemoteState(function=deployed(s()), public=False))
    assert calls[1].mask[0] == "build_config.source" and "forced" in calls[1].description


def test_public_on_and_off():
    on = plan_calls(ART, s(public=True), RemoteState(function=deployed(s()), public=False))
    assert kinds(on) == ["set_public"]
    off = plan_calls(ART, s(), RemoteState(function=deployed(s()), public=True))
    assert kinds(off) == ["set_private"]
    assert plan_calls(ART, s(public=True), RemoteState(function=deployed(s()), public=True)) == []


def test_an_adopted_function_is_relabelled_and_others_labels_are_kept():
    fn = deployed(s())
    fn["labels"] = {"team": "ml", settings.LABEL_SHA: settings.sha_label(SHA), settings.LABEL_ENDPOINT: "fn"}
    mask = changed_fields(ART, s(), fn)
    assert mask == ["labels"]
    labels = desired_function(ART, s(), fn)["labels"]
    assert labels["team"] == "ml" and labels[OWNER_TAG] == "o1"


def test_service_account_is_compared_only_when_given():
    state = RemoteState(function=deployed(s()), public=False)
    assert plan_calls(ART, s(), state) == []
    sa = "runner@proj-123456.iam.gserviceaccount.com"
    assert plan_calls(ART, s(service_account=sa), state)[0].mask == ["service_config.service_account_email"]


def test_labels_fit_googles_rules():
    labels = settings.labels("My_Endpoint.v2", "f" * 64, "0123456789abcdef0123456789abcdef")
    assert all(len(v) <= 63 and settings._LABEL_VALUE.search(v) is None for v in labels.values())
    assert labels[settings.LABEL_SHA] == "f" * 63


def test_camel_case_mask_paths():
    assert camel("service_config.available_memory") == "serviceConfig.availableMemory"
    assert camel("labels") == "labels"


@pytest.mark.parametrize("unit,mb", [("512Mi", 512), ("512M", 512), ("1Gi", 1024), ("2G", 2000), ("x", None)])
def test_memory_units(unit, mb):
    assert settings.memory_mb(unit) == mb


@pytest.mark.parametrize("options,message", [
    (DeployOptions(memory=300), "memory 300 MB"),
    (DeployOptions(timeout=3601), "timeout 3601 s"),
    (DeployOptions(max_instances=0), "--max-instances 0"),
    (DeployOptions(min_instances=5, max_instances=2), "--min-instances 5"),
    (DeployOptions(env={"PORT": "1"}), "reserved"),
    (DeployOptions(project="My Project"), "not a Google Cloud project id"),
    (DeployOptions(service_account="me@example.com"), "not a service account email"),
    (DeployOptions(region="Mars"), "unknown Google Cloud region"),
])
def test_local_checks(options, message):
    with pytest.raises(BadInput, match=message):
        settings.check_options(options)


def test_a_region_cannot_move():
    current = Endpoint(name="fn", provider="gcp", url="u", region="europe-west1")
    with pytest.raises(BadInput, match="deployed in europe-west1"):
        settings.choose_region(DeployOptions(region="us-east1"), current, None)
    assert settings.choose_region(DeployOptions(), current, None) == "europe-west1"
    assert settings.choose_region(DeployOptions(), None, "asia-northeast1") == "asia-northeast1"
    assert settings.choose_region(DeployOptions(), None, None) == "us-central1"
