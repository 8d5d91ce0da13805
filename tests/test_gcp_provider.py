"""GCPProvider in-process against the Google stand-in: plan data, owners, lost answers, impersonation.

The provider is called as kagg.deploy calls it (build -> plan -> apply), with
the key file and KAGG_GCP_API_URL of the ``gcp`` fixture; the stand-in's log
says what reached Google.
"""

from __future__ import annotations

import uuid

import pytest

from aws_fixtures import HELLO, hello_function
from gcp_fixtures import fid, gcp, google_standin, sa_key  # noqa: F401
from gcp_standin import PROJECT
from kagg.errors import BadInput
from kagg.model import DeployOptions
from kagg.providers.base import OWNER_TAG
from kagg.providers.gcp import GCPProvider, clients

CHANGED = HELLO.replace("hello ", "hi ")


@pytest.fixture
def provider(gcp, tmp_path) -> GCPProvider:
    clients.forget()  # clients are cached per environment; each test's stand-in settings are fresh
    return GCPProvider(state_dir=tmp_path / ".kagg")


def deploy(provider, function, opts, current=None):
    return provider.apply(provider.plan(provider.build(function, opts), current, opts))


def test_plan_names_what_a_killed_deploy_may_leave(provider, fid, gcp):
    opts = DeployOptions(owner=uuid.uuid4().hex)
    plan = provider.plan(provider.build(hello_function(fid), opts), None, opts)
    assert provider.pending_data(plan) == {"function_id": fid, "project": PROJECT, "impersonate": None}
    assert [s.action for s in plan.steps] == ["functions.generateUploadUrl", "functions.create", "operations.get"]
    assert gcp.actions(mutating=True) == []


def test_a_function_of_another_owner_is_refused_and_left_alone(provider, fid, gcp):
    theirs = uuid.uuid4().hex
    deploy(provider, hello_function(fid), DeployOptions(owner=theirs))
    gcp.clear()
    mine = DeployOptions(owner=uuid.uuid4().hex)
    with pytest.raises(BadInput) as info:  # a second registry deploying the same name
        provider.plan(provider.build(hello_function(fid, source=CHANGED), mine), None, mine)
    message = str(info.value)
    assert f"Cloud Function {fid} in {PROJECT}/us-central1" in message and theirs in message and "--adopt" in message
    assert gcp.actions(mutating=True) == [] and gcp.function(fid)["labels"][OWNER_TAG] == theirs

    adopted = DeployOptions(owner=mine.owner, adopt=True)
    ep = deploy(provider, hello_function(fid, source=CHANGED), adopted)
    assert gcp.function(fid)["labels"][OWNER_TAG] == mine.owner
    assert provider.delete(ep) == [] and gcp.function(fid) is None


def test_delete_leaves_a_function_another_entry_made_since(provider, fid, gcp):
    stale = deploy(provider, hello_function(fid), DeployOptions(owner=uuid.uuid4().hex))
    with gcp.lock:  # gone; then another registry takes the name
        del gcp.functions[f"projects/{PROJECT}/locations/us-central1/functions/{fid}"]
    theirs = uuid.uuid4().hex
    deploy(GCPProvider(state_dir=provider.state_dir), hello_function(fid, source=CHANGED), DeployOptions(owner=theirs))
    warnings = provider.delete(stale)
    assert len(warnings) == 1 and "made by another kagg endpoint" in warnings[0]
    assert gcp.function(fid)["labels"][OWNER_TAG] == theirs
    with gcp.lock:
        del gcp.functions[f"projects/{PROJECT}/locations/us-central1/functions/{fid}"]


def test_a_create_whose_answer_was_lost_is_not_made_twice(provider, fid, gcp):
    gcp.faults.lose_reply["functions.create"] = 1
    ep = deploy(provider, hello_function(fid), DeployOptions(owner=uuid.uuid4().hex))
    assert gcp.actions().count("functions.create") == 2  # the retry met "already exists": ours, by its labels
    assert ep.url == gcp.function(fid)["serviceConfig"]["uri"] + "/"
    assert provider.delete(ep) == []


def test_a_lost_answer_to_a_patch_is_retried(provider, fid, gcp):
    opts = DeployOptions(owner=uuid.uuid4().hex)
    ep = deploy(provider, hello_function(fid), opts)
    gcp.faults.lose_reply["functions.patch"] = 1
    more = DeployOptions(owner=opts.owner, memory=2048)
    ep = deploy(provider, hello_function(fid), more, current=ep)
    assert gcp.function(fid)["serviceConfig"]["availableMemory"] == "2Gi" and ep.provider_data["memory"] == 2048
    assert provider.delete(ep) == []


def test_impersonation_makes_the_calls_as_the_service_account(provider, fid, gcp):
    account = f"deployer-sa@{PROJECT}.iam.gserviceaccount.com"
    opts = DeployOptions(owner=uuid.uuid4().hex, impersonate=account)
    ep = deploy(provider, hello_function(fid), opts)
    assert "iam.generateAccessToken" in gcp.actions()
    create = next(s for s in gcp.log if s.action == "functions.create")
    assert create.headers["authorization"].startswith("Bearer ya29.impersonated-")
    assert ep.provider_data["impersonate"] == account  # an email, never a token
    assert provider.delete(ep) == []


def test_the_registry_entry_holds_no_credential(provider, fid, gcp, sa_key):
    import json

    ep = deploy(provider, hello_function(fid), DeployOptions(owner=uuid.uuid4().hex, env={"TOKEN": "s3cret"}))
    text = json.dumps(ep.to_dict())
    key = json.loads(sa_key.read_text())
    assert "s3cret" not in text and key["private_key_id"] not in text and "ya29." not in text
    assert ep.provider_data["env_keys"] == ["TOKEN"]
    assert provider.delete(ep) == []


def test_sign_uses_the_account_impersonated_at_deploy(provider, fid, gcp):
    from gcp_standin_edges import jwt_payload

    account = f"caller-sa@{PROJECT}.iam.gserviceaccount.com"
    ep = deploy(provider, hello_function(fid), DeployOptions(owner=uuid.uuid4().hex, impersonate=account))
    headers = provider.sign(ep, "GET", ep.url + "health", {"accept": "application/json"}, b"")
    claims = jwt_payload(headers["authorization"].split(" ", 1)[1])
    assert claims["email"] == account and claims["aud"] == gcp.url and headers["accept"] == "application/json"
    public = deploy(provider, hello_function(fid), DeployOptions(owner=ep.owner, impersonate=account, public=True),
                    current=ep)
    assert public.auth == "none" and provider.sign(public, "GET", public.url, {}, b"") == {}
    assert provider.delete(public) == []
