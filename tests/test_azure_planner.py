"""The Azure planner and settings on hand-made RemoteState values: no server, no SDK call."""

from __future__ import annotations

import pytest

from kagg.errors import BadInput
from kagg.model import DeployOptions
from kagg.providers.azure import settings as st
from kagg.providers.azure.planner import BLOB, SHARED_TAG, ArtifactInfo, check_state, plan_calls, plan_id
from kagg.providers.azure.remote import RemoteState, Resource
from kagg.providers.base import OWNER_TAG

SUB = "00000000-1111-2222-3333-444444444444"
ART = ArtifactInfo("ab" * 32, 1234)
OWNER = "owner-1"


def settings(**kw) -> st.Settings:
    base = dict(subscription=SUB, location="eastus", resource_group="kagg-app", app="app", owner=OWNER)
    base.update(kw)
    return st.Settings(**base)


def deployed(s: st.Settings, sha: str = ART.sha256, **site_props) -> RemoteState:
    """A state where everything of ``s`` exists as kagg left it after deploying ``sha``."""
    blob = f"https://{s.storage_account}.blob.core.windows.net/"
    props = {"serverFarmId": plan_id(s), "runtime": {"name": "python", "version": s.python},
             "instanceMemoryMB": s.memory, "maximumInstanceCount": s.max_instances,
             "deploymentStorage": blob + s.container}
    props.update(site_props)
    conn = f"DefaultEndpointsProtocol=https;AccountName={s.storage_account};AccountKey=k;EndpointSuffix=core.windows.net"
    app_settings = {k: (conn if v == st.CONNECTION else v) for k, v in s.app_settings(sha).items()}
    return RemoteState(
        locations=frozenset({"eastus", "westeurope"}),
        group=Resource("/g", "eastus", {OWNER_TAG: OWNER}),
        storage=Resource("/sa", "eastus", {SHARED_TAG: "true"}, {"blob": blob}), container=True,
        plan=Resource("/p", "eastus", s.tags(), {"sku": "FC1", "tier": "FlexConsumption"}),
        site=Resource("/s", "eastus", s.tags(), props), app_settings=app_settings)


def ops(calls) -> list[str]:
    return [c.op for c in calls]


def test_empty_subscription_creates_everything_in_order():
    s = settings()
    calls = plan_calls(ART, s, RemoteState(locations=frozenset({"eastus"})))
    assert ops(calls) == ["group", "storage", "container", "plan", "site", "publish", "verify", "keys", "settings"]
    site = calls[4].body
    fac = site["properties"]["functionAppConfig"]
    assert fac["runtime"] == {"name": "python", "version": s.python}
    assert fac["scaleAndConcurrency"] == {"instanceMemoryMB": 2048, "maximumInstanceCount": 100}
    assert fac["deployment"]["storage"]["value"] == f"{BLOB}/{s.container}"
    assert site["tags"][OWNER_TAG] == OWNER and site["properties"]["httpsOnly"] is True
    names = {x["name"] for x in site["properties"]["siteConfig"]["appSettings"]}
    assert {"AzureWebJobsStorage", "DEPLOYMENT_STORAGE_CONNECTION_STRING", "AzureWebJobsDisableHomepage"} <= names
    assert not names & {"WEBSITE_RUN_FROM_PACKAGE", "SCM_DO_BUILD_DURING_DEPLOYMENT"}
    assert calls[1].body["properties"]["allowBlobPublicAccess"] is False
    assert calls[3].body["sku"] == {"name": "FC1", "tier": "FlexConsumption"}
    assert calls[-1].body["properties"][st.SHA_SETTING] == ART.sha256
    assert [c.mutating for c in calls].count(False) == 2  # verify and keys are reads


def test_unchanged_is_no_call_at_all():
    s = settings()
    assert plan_calls(ART, s, deployed(s)) == []


def test_code_change_publishes_and_records_the_new_sha():
    s = settings()
    calls = plan_calls(ART, s, deployed(s, sha="cd" * 32))
    assert ops(calls) == ["publish", "verify", "keys", "settings"]
    assert "changed" in calls[0].description
    assert calls[-1].body["properties"][st.SHA_SETTING] == ART.sha256


def test_force_publishes_the_same_code():
    s = settings(force=True)
    calls = plan_calls(ART, s, deployed(settings()))
    assert ops(calls)[:2] == ["publish", "verify"] and "forced" in calls[0].description


def test_memory_and_max_instances_update_the_site_without_touching_its_settings():
    old = settings()
    s = settings(memory=4096, max_instances=200)
    calls = plan_calls(ART, s, deployed(old))
    assert ops(calls) == ["site"]
    assert "instanceMemoryMB" in calls[0].description and "maximumInstanceCount" in calls[0].description
    assert "appSettings" not in calls[0].body["properties"]["siteConfig"]


def test_public_is_an_app_setting_and_env_values_are_never_described():
    old = settings()
    s = settings(public=True, env={"API_MODE": "secret-value"})
    calls = plan_calls(ART, s, deployed(old))
    assert ops(calls) == ["settings"]
    assert calls[0].body["properties"][st.AUTH_SETTING] == "anonymous"
    assert "API_MODE" in calls[0].description and "secret-value" not in calls[0].description


def test_an_env_name_dropped_is_removed():
    s = settings()
    state = deployed(s)
    state.app_settings["OLD"] = "x"
    calls = plan_calls(ART, s, state, previous_env=("OLD",))
    assert ops(calls) == ["settings"] and calls[0].body["remove"] == ["OLD"]
    assert plan_calls(ART, s, state, previous_env=()) == []  # a setting kagg did not set is left alone


def test_second_app_in_a_group_reuses_group_and_storage_but_gets_its_own_plan():
    first = settings()
    state = deployed(first)
    state.site, state.plan, state.container, state.app_settings = None, None, False, {}
    second = settings(app="other")
    calls = plan_calls(ART, second, state)
    assert ops(calls) == ["container", "plan", "site", "publish", "verify", "keys", "settings"]
    assert second.storage_account == first.storage_account and second.plan_name != first.plan_name
    assert calls[2].body["properties"]["functionAppConfig"]["deployment"]["storage"]["value"].startswith("https://")


@pytest.mark.parametrize("change,message", [
    (dict(web_registered=False), "az provider register --namespace Microsoft.Web"),
    (dict(site_name=(False, "AlreadyExists", "Hostname 'app' already exists.")), "is taken"),
    (dict(storage_name=(False, "AccountNameInvalid", "bad name")), "breaks Azure's rule"),
    (dict(storage_name=(False, "AlreadyExists", "already taken")), "taken by another subscription"),
])
def test_refusals(change, message):
    state = RemoteState(locations=frozenset({"eastus"}), **change)
    with pytest.raises(BadInput, match=message):
        check_state(settings(), state)


def test_unknown_location_names_some_known_ones():
    with pytest.raises(BadInput, match="unknown Azure location 'eastux'.*eastus"):
        check_state(settings(location="eastux"), RemoteState(locations=frozenset({"eastus", "westeurope"})))


def test_a_storage_account_kagg_did_not_make_or_a_non_flex_plan_is_refused():
    s = settings()
    state = deployed(s)
    state.storage.tags = {}
    with pytest.raises(BadInput, match="not made by kagg"):
        check_state(s, state)
    state = deployed(s)
    state.plan.properties["sku"] = "Y1"
    with pytest.raises(BadInput, match="not Flex Consumption"):
        check_state(s, state)


def test_the_suggested_name_for_a_taken_app_is_valid():
    with pytest.raises(BadInput) as info:
        check_state(settings(app="a" * 60), RemoteState(site_name=(False, "AlreadyExists", "")))
    suggested = info.value.message.rsplit("--name ", 1)[1]
    st.check_name(suggested)


@pytest.mark.parametrize("name,ok", [("ab", True), ("a", False), ("a" * 60, True), ("a" * 61, False),
                                     ("-ab", False), ("ab-", False), ("a_b", False), ("My-App-2", True)])
def test_name_rule(name, ok):
    if ok:
        st.check_name(name)
    else:
        with pytest.raises(BadInput, match="2-60 characters"):
            st.check_name(name)


def test_derived_names_fit_azure_rules():
    for group in ("g", "kagg-" + "x" * 80, "Mixed.Case(1)"):
        account = st.storage_account_name(SUB, group)
        assert 3 <= len(account) <= 24 and account.isalnum() and account == account.lower()
    assert st.storage_account_name(SUB, "A") == st.storage_account_name(SUB, "a")
    assert st.storage_account_name(SUB, "a") != st.storage_account_name(SUB.replace("0", "9"), "a")
    for app in ("ab", "a--b", "a" * 60):
        c = st.container_name(app)
        assert 3 <= len(c) <= 63 and "--" not in c and c == c.lower()
    assert st.container_name("a--b") != st.container_name("a-b")
    assert len(st.plan_name("a" * 60)) <= 60


@pytest.mark.parametrize("options,message", [
    (DeployOptions(memory=1024), "512, 2048, 4096"),
    (DeployOptions(max_instances=10), "40 to 1000"),
    (DeployOptions(env={"WEBSITE_X": "1"}), "reserved"),
    (DeployOptions(env={"A-B": "1"}), "invalid"),
    (DeployOptions(subscription="nope"), "not a subscription id"),
    (DeployOptions(region="East US"), "not an Azure location name"),
    (DeployOptions(resource_group="bad/group"), "not a valid resource group"),
])
def test_options_checked_locally(options, message):
    with pytest.raises(BadInput, match=message):
        st.check_options(options)
