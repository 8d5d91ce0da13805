"""Ownership: kagg changes only a Lambda function that this registry's entry made (its kagg-owner
tag), unless told to adopt it. Against moto in server mode (tests/aws_fixtures.py)."""

from __future__ import annotations

import json
import re
import uuid

import pytest

from aws_fixtures import FAST, HELLO, aws, fname, hello_function, moto_stack, notebook_json  # noqa: F401
from conftest import run_kagg
from kagg.errors import BadInput
from kagg.model import DeployOptions
from kagg.providers.aws import AWSProvider
from kagg.providers.base import OWNER_TAG

CHANGED = HELLO.replace("hello ", "hi ")


def options(**kwargs) -> DeployOptions:
    return DeployOptions(extra={**FAST, **kwargs.pop("extra", {})}, **kwargs)


@pytest.fixture
def provider(tmp_path) -> AWSProvider:
    return AWSProvider(state_dir=tmp_path / ".kagg")


def deploy(provider, function, opts, current=None):
    return provider.apply(provider.plan(provider.build(function, opts), current, opts))


def tags(aws, name) -> dict:
    return aws.direct("lambda").get_function(FunctionName=name).get("Tags") or {}


def code_sha(aws, name) -> str:
    return aws.direct("lambda").get_function(FunctionName=name)["Configuration"]["CodeSha256"]


def foreign_function(aws, name) -> None:
    """A function of that name made without kagg (no tags)."""
    arn = aws.direct("iam").create_role(RoleName=name + "-theirs", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    aws.direct("lambda").create_function(FunctionName=name, Runtime="python3.12", Role=arn, Handler="x.y",
                                         Code={"ZipFile": b"PK\x05\x06" + b"\0" * 18})


def test_the_function_is_tagged_with_the_owner_and_the_endpoint_records_it(aws, provider, fname):
    owner = uuid.uuid4().hex
    ep = deploy(provider, hello_function(fname), options(owner=owner))
    assert tags(aws, fname)[OWNER_TAG] == owner and ep.owner == owner
    aws.proxy.clear()
    again = provider.plan(provider.build(hello_function(fname), options(owner=owner)), ep, options(owner=owner))
    assert again.unchanged


def test_a_function_of_another_owner_is_refused_and_left_alone(aws, provider, fname):
    theirs = uuid.uuid4().hex
    deploy(provider, hello_function(fname), options(owner=theirs))
    before = code_sha(aws, fname)
    aws.proxy.clear()
    mine = uuid.uuid4().hex
    opts = options(owner=mine)
    with pytest.raises(BadInput) as info:  # a second registry deploying the same name
        provider.plan(provider.build(hello_function(fname, source=CHANGED), opts), None, opts)
    message = str(info.value)
    assert f"Lambda function {fname} in us-east-1" in message and theirs in message and "--adopt" in message
    assert "\n" not in message
    assert aws.proxy.actions(mutating=True) == [] and code_sha(aws, fname) == before
    assert tags(aws, fname)[OWNER_TAG] == theirs


def test_a_stale_entry_does_not_replace_a_function_made_since(aws, provider, fname):
    stale = deploy(provider, hello_function(fname), options(owner=uuid.uuid4().hex))
    aws.direct("lambda").delete_function(FunctionName=fname)  # gone; then another registry takes the name
    theirs = uuid.uuid4().hex
    deploy(AWSProvider(state_dir=provider.state_dir), hello_function(fname, source=CHANGED), options(owner=theirs))
    before = code_sha(aws, fname)
    aws.proxy.clear()
    opts = options(owner=stale.owner)
    with pytest.raises(BadInput, match=f"owner {theirs}"):
        provider.plan(provider.build(hello_function(fname), opts), stale, opts)
    assert aws.proxy.actions(mutating=True) == [] and code_sha(aws, fname) == before
    warnings = provider.delete(stale, options())  # deleting the stale entry leaves their function
    assert len(warnings) == 1 and "left it in place" in warnings[0] and theirs in warnings[0]
    assert aws.proxy.actions(mutating=True) == [] and code_sha(aws, fname) == before


def test_adopt_takes_the_function_over_and_tags_it(aws, provider, fname):
    deploy(provider, hello_function(fname), options(owner=uuid.uuid4().hex))
    aws.proxy.clear()
    mine = uuid.uuid4().hex
    opts = options(owner=mine, adopt=True)
    plan = provider.plan(provider.build(hello_function(fname, source=CHANGED), opts), None, opts)
    assert [s.action for s in plan.steps if s.mutating][:2] == ["lambda:TagResource", "lambda:UpdateFunctionCode"]
    ep = provider.apply(plan)
    assert tags(aws, fname)[OWNER_TAG] == mine and ep.owner == mine
    assert code_sha(aws, fname) == ep.provider_data["code_sha256"]
    aws.proxy.clear()
    assert provider.plan(provider.build(hello_function(fname, source=CHANGED), options(owner=mine)), ep,
                         options(owner=mine)).unchanged


def test_an_untagged_function_without_an_entry_is_refused(aws, provider, fname):
    foreign_function(aws, fname)
    aws.proxy.clear()
    opts = options(owner=uuid.uuid4().hex)
    with pytest.raises(BadInput, match=f"Lambda function {fname} in us-east-1 already exists and was not made by kagg"):
        provider.plan(provider.build(hello_function(fname), opts), None, opts)
    assert aws.proxy.actions(mutating=True) == []
    assert aws.direct("lambda").get_function(FunctionName=fname)["Configuration"]["Handler"] == "x.y"


def test_a_legacy_entry_may_change_its_untagged_function_and_tags_it(aws, provider, fname):
    legacy = deploy(provider, hello_function(fname), options())  # a kagg without owner tags
    assert OWNER_TAG not in tags(aws, fname) and legacy.owner is None
    aws.proxy.clear()
    owner = uuid.uuid4().hex
    opts = options(owner=owner)
    ep = deploy(provider, hello_function(fname, source=CHANGED), opts, current=legacy)
    assert "lambda:TagResource" in aws.proxy.actions(mutating=True)
    assert tags(aws, fname)[OWNER_TAG] == owner and ep.owner == owner


def test_two_registries_through_the_cli(aws, tmp_path, fname):
    nb = tmp_path / "greet.ipynb"
    nb.write_text(notebook_json(HELLO))
    env = {"AWS_ENDPOINT_URL": aws.url}
    first = run_kagg("--registry", str(tmp_path / "a.json"), "deploy", str(nb), "--aws", "--name", fname, env=env)
    assert first.returncode == 0, first.stderr
    owner = json.loads((tmp_path / "a.json").read_text())["endpoints"][fname]["owner"]
    assert re.fullmatch(r"[0-9a-f]{32}", owner) and tags(aws, fname)[OWNER_TAG] == owner
    aws.proxy.clear()
    second = run_kagg("--registry", str(tmp_path / "b.json"), "deploy", str(nb), "--aws", "--name", fname, env=env)
    assert second.returncode == 2
    errors = [ln for ln in second.stderr.splitlines() if ln.startswith("Error:")]
    assert len(errors) == 1 and f"Lambda function {fname} in us-east-1" in errors[0] and owner in errors[0]
    assert aws.proxy.actions(mutating=True) == []
    adopted = run_kagg("--registry", str(tmp_path / "b.json"), "deploy", str(nb), "--aws", "--name", fname,
                       "--adopt", env=env)
    assert adopted.returncode == 0, adopted.stderr
    new_owner = json.loads((tmp_path / "b.json").read_text())["endpoints"][fname]["owner"]
    assert new_owner != owner and tags(aws, fname)[OWNER_TAG] == new_owner
