"""Creates that race or lose their answer: "already exists" is read back, not taken for a failure.

Against moto in server mode through the fault proxy of tests/aws_fixtures.py,
which can forward a request to moto and then drop the reply ("accepted but
reply lost").
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import pytest

from aws_fixtures import FAST, aws, fname, hello_function, moto_stack  # noqa: F401
from kagg.errors import OperationFailed
from kagg.model import DeployOptions
from kagg.providers.aws import AWSProvider
from kagg.providers.aws.settings import ROLE_NAME, SID_URL, TRUST_POLICY


def options(**kwargs) -> DeployOptions:
    return DeployOptions(extra={**FAST, **kwargs.pop("extra", {})}, **kwargs)


@pytest.fixture
def provider(tmp_path) -> AWSProvider:
    return AWSProvider(state_dir=tmp_path / ".kagg")


def test_role_created_by_someone_else_after_the_plan_is_used(aws, provider, fname):
    aws.forget_role()
    opts = options()
    plan = provider.plan(provider.build(hello_function(fname), opts), None, opts)
    assert plan.steps[0].action == "iam:CreateRole"
    theirs = aws.direct("iam").create_role(RoleName=ROLE_NAME, AssumeRolePolicyDocument=json.dumps(TRUST_POLICY))
    ep = provider.apply(plan)
    assert aws.proxy.count("iam:CreateRole") == 1  # answered EntityAlreadyExists, then read back
    assert ep.provider_data["role_arn"] == theirs["Role"]["Arn"]
    conf = aws.direct("lambda").get_function(FunctionName=fname)["Configuration"]
    assert conf["Role"] == theirs["Role"]["Arn"]


def test_parallel_first_deploys_on_a_fresh_account_all_succeed(aws, tmp_path, fname):
    """A parallel batch on a fresh account: every item planned CreateRole; all must succeed."""
    aws.forget_role()
    names = [f"{fname}-{i}" for i in range(6)]
    plans = []
    for name in names:  # each item its own provider, as kagg.deploy makes them
        p = AWSProvider(state_dir=tmp_path / ".kagg")
        plans.append((p, p.plan(p.build(hello_function(name), options()), None, options())))
    assert all(plan.steps[0].action == "iam:CreateRole" for _, plan in plans)
    with ThreadPoolExecutor(len(plans)) as pool:
        endpoints = list(pool.map(lambda pp: pp[0].apply(pp[1]), plans))
    role = aws.direct("iam").get_role(RoleName=ROLE_NAME)["Role"]["Arn"]
    assert {ep.provider_data["role_arn"] for ep in endpoints} == {role}
    assert aws.proxy.count("iam:CreateRole") == len(names)
    lam = aws.direct("lambda")
    assert all(lam.get_function(FunctionName=n)["Configuration"]["Role"] == role for n in names)


def test_create_function_accepted_but_reply_lost_is_not_sent_again(aws, provider, fname):
    aws.proxy.faults.lose_reply["CreateFunction"] = 1
    ep = provider.apply(provider.plan(provider.build(hello_function(fname), options()), None, options()))
    assert aws.proxy.reached_moto("lambda:CreateFunction") == 1
    conf = aws.direct("lambda").get_function(FunctionName=fname)["Configuration"]
    assert ep.provider_data["function_arn"] == conf["FunctionArn"]
    assert ep.url == aws.direct("lambda").get_function_url_config(FunctionName=fname)["FunctionUrl"]


@pytest.mark.parametrize("action", ["CreateRole", "CreateFunctionUrlConfig", "AddPermission"])
def test_other_creates_whose_reply_was_lost_are_read_back(aws, provider, fname, action):
    if action == "CreateRole":
        aws.forget_role()
    aws.proxy.faults.lose_reply[action] = 1
    opts = options(public=True)
    ep = provider.apply(provider.plan(provider.build(hello_function(fname), opts), None, opts))
    expected = 2 if action == "AddPermission" else 1  # two statements, the first one's reply lost
    assert aws.proxy.reached_moto(f"{'iam' if action == 'CreateRole' else 'lambda'}:{action}") == expected
    lam = aws.direct("lambda")
    assert ep.url == lam.get_function_url_config(FunctionName=fname)["FunctionUrl"]
    assert SID_URL in lam.get_policy(FunctionName=fname)["Policy"]


def test_a_function_someone_else_created_meanwhile_is_not_taken_for_ours(aws, provider, fname):
    opts = options()
    plan = provider.plan(provider.build(hello_function(fname), opts), None, opts)
    arn = aws.direct("iam").create_role(RoleName=fname + "-theirs", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    aws.direct("lambda").create_function(FunctionName=fname, Runtime="python3.12", Role=arn, Handler="x.y",
                                         Code={"ZipFile": b"PK\x05\x06" + b"\0" * 18})
    with pytest.raises(OperationFailed, match="CreateFunction"):
        provider.apply(plan)
    assert aws.direct("lambda").get_function(FunctionName=fname)["Configuration"]["Handler"] == "x.y"
