"""``kagg delete --purge-role``: kagg's role is global, so every region's functions are checked first."""

from __future__ import annotations

import pytest

from aws_fixtures import FAST, aws, fname, hello_function, moto_stack  # noqa: F401
from kagg.model import DeployOptions
from kagg.providers.aws import AWSProvider
from kagg.providers.aws.settings import ROLE_NAME

PURGE = {"purge_role": True}


def options(**kwargs) -> DeployOptions:
    return DeployOptions(extra={**FAST, **kwargs.pop("extra", {})}, **kwargs)


@pytest.fixture
def provider(tmp_path) -> AWSProvider:
    return AWSProvider(state_dir=tmp_path / ".kagg")


def deploy(provider, name, region):
    opts = options(region=region)
    return provider.apply(provider.plan(provider.build(hello_function(name), opts), None, opts))


def role_exists(aws) -> bool:
    return ROLE_NAME in [r["RoleName"] for r in aws.direct("iam").list_roles()["Roles"]]


def test_a_function_in_another_region_keeps_the_role(aws, provider, fname):
    aws.forget_functions()
    here = deploy(provider, f"{fname}-1", "ca-central-1")
    there = deploy(provider, f"{fname}-2", "sa-east-1")
    warnings = provider.delete(here, options(extra=PURGE))
    assert warnings == [f"role {ROLE_NAME} kept: still used by {fname}-2 (sa-east-1)"]
    assert role_exists(aws)
    assert provider.delete(there, options(extra=PURGE)) == []
    assert not role_exists(aws)


def test_regions_not_enabled_for_the_account_are_skipped(aws, provider, fname):
    aws.forget_functions()
    ep = deploy(provider, fname, "ca-central-1")
    aws.proxy.faults.reject_in[("ListFunctions", "me-south-1")] = [
        403, "UnrecognizedClientException", "The security token included in the request is invalid.", 10]
    assert provider.delete(ep, options(extra=PURGE)) == []
    assert aws.proxy.count("lambda:ListFunctions") >= 30  # every region of the partition was asked
    assert not role_exists(aws)


def test_a_region_that_cannot_be_listed_keeps_the_role(aws, provider, fname):
    aws.forget_functions()
    ep = deploy(provider, fname, "ca-central-1")
    aws.proxy.faults.reject_in[("ListFunctions", "eu-north-1")] = [500, "ServiceException", "Internal error", 100]
    warnings = provider.delete(ep, options(extra={**PURGE, "retry_attempts": 2}))
    assert len(warnings) == 1 and "kept: could not list the functions of eu-north-1 (ServiceException)" in warnings[0]
    assert role_exists(aws)
    assert "lambda:DeleteFunction" in aws.proxy.actions(mutating=True)
