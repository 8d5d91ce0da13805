"""The AWS planner on hand-made remote states: no moto, no boto3, no I/O (kagg/providers/aws/planner.py)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import ROOT
from kagg.errors import BadInput
from kagg.providers.aws.planner import ROLE_ARN, ZIP, ArtifactInfo, config_changes, is_unchanged, plan_calls, role_arn
from kagg.providers.aws.remote import CodeStore, RemoteState, RoleState
from kagg.providers.aws.settings import BASIC_POLICY, ROLE_NAME, SID_INVOKE, SID_URL, Settings

ART = ArtifactInfo("greet", "ab" * 32, 10_000)
OTHER = ArtifactInfo("greet", "cd" * 32, 10_000)
KAGG_ROLE = RoleState("arn:aws:iam::123456789012:role/" + ROLE_NAME,
                      frozenset({BASIC_POLICY.format(partition="aws")}))


def settings(**kwargs) -> Settings:
    return Settings(region="eu-west-1", **kwargs)


def deployed(s: Settings, art: ArtifactInfo = ART, role: RoleState = KAGG_ROLE, public: bool = False,
             **config) -> RemoteState:
    """The state after a successful deploy of ``art`` with ``s``."""
    conf = {**s.function_config(art.function_name, role.arn), "CodeSha256": art.code_sha256,
            "Architectures": [s.arch], "FunctionArn": f"arn:aws:lambda:eu-west-1:123456789012:function:{art.function_name}",
            **config}
    return RemoteState(role=role, function=conf, tags={"kagg:endpoint": art.function_name},
                       url={"FunctionUrl": "https://x.lambda-url.eu-west-1.on.aws/",
                            "AuthType": "NONE" if public else "AWS_IAM"},
                       policy_sids=frozenset({SID_URL, SID_INVOKE}) if public else frozenset())


def actions(calls, mutating_only: bool = False) -> list[str]:
    return [c.action for c in calls if c.mutating or not mutating_only]


def test_first_deploy_on_a_fresh_account_creates_role_function_and_url():
    s = settings()
    calls = plan_calls(ART, s, RemoteState())
    assert actions(calls) == ["iam:CreateRole", "iam:AttachRolePolicy", "lambda:CreateFunction",
                              "lambda:GetFunction", "lambda:CreateFunctionUrlConfig"]
    create = calls[2].kwargs
    assert create["Role"] == ROLE_ARN and create["Code"] == {"ZipFile": ZIP}
    assert create["Runtime"] == "python3.12" and create["MemorySize"] == 512 and create["Architectures"] == ["x86_64"]
    assert calls[3].waiter == "function_active_v2" and not calls[3].mutating
    assert calls[4].kwargs == {"FunctionName": "greet", "AuthType": "AWS_IAM"}
    assert role_arn(s, RemoteState()) is None  # known only once CreateRole has answered


def test_first_deploy_with_the_role_there_reuses_it():
    calls = plan_calls(ART, settings(), RemoteState(role=KAGG_ROLE))
    assert actions(calls, mutating_only=True) == ["lambda:CreateFunction", "lambda:CreateFunctionUrlConfig"]
    assert calls[0].kwargs["Role"] == KAGG_ROLE.arn


def test_role_without_the_logging_policy_gets_it_attached():
    calls = plan_calls(ART, settings(), RemoteState(role=RoleState(KAGG_ROLE.arn), partition="aws-cn"))
    assert calls[0].action == "iam:AttachRolePolicy"
    assert calls[0].kwargs["PolicyArn"].startswith("arn:aws-cn:iam::aws:policy/")


def test_given_role_is_used_as_is():
    arn = "arn:aws:iam::123456789012:role/mine"
    calls = plan_calls(ART, settings(role=arn), RemoteState())
    assert not any(c.service == "iam" for c in calls) and calls[0].kwargs["Role"] == arn


def test_unchanged_function_needs_no_call():
    s = settings()
    state = deployed(s)
    calls = plan_calls(ART, s, state)
    assert calls == [] and is_unchanged(calls, state)


def test_code_change_uploads_code_only():
    s = settings()
    calls = plan_calls(OTHER, s, deployed(s))
    assert actions(calls) == ["lambda:UpdateFunctionCode", "lambda:GetFunction"]
    assert calls[0].kwargs["ZipFile"] == ZIP and "changed" in calls[0].description
    assert calls[1].waiter == "function_updated_v2"
    assert not is_unchanged(calls, deployed(s))


def test_force_uploads_the_same_code():
    s = settings(force=True)
    calls = plan_calls(ART, s, deployed(s))
    assert actions(calls, mutating_only=True) == ["lambda:UpdateFunctionCode"] and "forced" in calls[0].description


def test_architecture_change_uploads_code():
    old = settings()
    calls = plan_calls(ART, settings(arch="arm64"), deployed(old))
    assert actions(calls, mutating_only=True) == ["lambda:UpdateFunctionCode"]
    assert calls[0].kwargs["Architectures"] == ["arm64"]


def test_configuration_only_change_updates_configuration_only():
    old = settings()
    new = settings(memory=1024, env={"MODE": "fast"})
    calls = plan_calls(ART, new, deployed(old))
    assert actions(calls) == ["lambda:UpdateFunctionConfiguration", "lambda:GetFunction"]
    assert calls[0].kwargs["MemorySize"] == 1024 and calls[0].kwargs["Environment"] == {"Variables": {"MODE": "fast"}}
    assert "MemorySize" in calls[0].description and "Environment" in calls[0].description
    assert config_changes(deployed(old).function, new.function_config("greet", KAGG_ROLE.arn)) == [
        "MemorySize", "Environment"]


def test_public_on_updates_the_url_and_adds_both_permissions():
    old = settings()
    calls = plan_calls(ART, settings(public=True), deployed(old))
    assert actions(calls) == ["lambda:UpdateFunctionUrlConfig", "lambda:AddPermission", "lambda:AddPermission"]
    assert calls[0].kwargs["AuthType"] == "NONE"
    assert [c.kwargs["StatementId"] for c in calls[1:]] == [SID_URL, SID_INVOKE]
    assert calls[1].kwargs["FunctionUrlAuthType"] == "NONE" and calls[2].kwargs["InvokedViaFunctionUrl"] is True


def test_public_off_makes_the_url_private_and_withdraws_the_permissions():
    calls = plan_calls(ART, settings(), deployed(settings(public=True), public=True))
    assert actions(calls) == ["lambda:UpdateFunctionUrlConfig", "lambda:RemovePermission", "lambda:RemovePermission"]
    assert calls[0].kwargs["AuthType"] == "AWS_IAM"
    assert sorted(c.kwargs["StatementId"] for c in calls[1:]) == sorted([SID_URL, SID_INVOKE])


def test_public_and_unchanged_needs_no_call():
    s = settings(public=True)
    assert plan_calls(ART, s, deployed(s, public=True)) == []


def test_function_without_url_gets_one():
    s = settings()
    state = deployed(s)
    state.url = None
    assert actions(plan_calls(ART, s, state)) == ["lambda:CreateFunctionUrlConfig"]


BIG = ArtifactInfo("greet", "ef" * 32, 60 * 2**20)


def test_big_zip_creates_the_bucket_and_uploads_through_s3():
    store = CodeStore("kagg-artifacts-123456789012-eu-west-1", "kagg/greet/x.zip", bucket_exists=False)
    calls = plan_calls(BIG, settings(), RemoteState(role=KAGG_ROLE, store=store))
    assert actions(calls, mutating_only=True) == ["s3:CreateBucket", "s3:PutPublicAccessBlock", "s3:PutObject",
                                                  "lambda:CreateFunction", "lambda:CreateFunctionUrlConfig"]
    assert calls[0].kwargs["CreateBucketConfiguration"] == {"LocationConstraint": "eu-west-1"}
    assert calls[3].kwargs["Code"] == {"S3Bucket": store.bucket, "S3Key": store.key}


def test_big_zip_already_uploaded_is_not_sent_again():
    store = CodeStore("b-1", "kagg/greet/x.zip", bucket_exists=True, object_exists=True)
    calls = plan_calls(BIG, settings(), RemoteState(role=KAGG_ROLE, store=store))
    assert not any(c.service == "s3" for c in calls)


def test_missing_given_bucket_is_bad_input():
    store = CodeStore("mine", "kagg/greet/x.zip", bucket_exists=False)
    with pytest.raises(BadInput, match=r"mine \(--bucket\) does not exist"):
        plan_calls(BIG, settings(bucket="mine"), RemoteState(role=KAGG_ROLE, store=store))


def test_same_inputs_same_plan():
    s = settings(public=True, env={"B": "2", "A": "1"})
    assert plan_calls(ART, s, RemoteState()) == plan_calls(ART, s, RemoteState())


def test_the_planner_imports_no_boto3():
    code = ("import sys; import kagg.providers.aws.planner; "
            "print('boto3' in sys.modules or 'botocore' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=str(ROOT))
    assert out.stdout.strip() == "False"


OWNER = "0123456789abcdef0123456789abcdef"


def test_a_new_function_is_tagged_with_its_owner():
    create = plan_calls(ART, settings(owner=OWNER), RemoteState(role=KAGG_ROLE))[0]
    assert create.action == "lambda:CreateFunction"
    assert create.kwargs["Tags"]["kagg-owner"] == OWNER and create.kwargs["Tags"]["kagg:endpoint"] == "greet"
    assert "kagg-owner" not in plan_calls(ART, settings(), RemoteState(role=KAGG_ROLE))[0].kwargs["Tags"]


def test_a_function_without_this_owner_tag_is_tagged_first():
    s = settings(owner=OWNER)
    state = deployed(s)
    calls = plan_calls(OTHER, s, state)
    assert actions(calls, mutating_only=True) == ["lambda:TagResource", "lambda:UpdateFunctionCode"]
    assert calls[0].kwargs == {"Resource": state.function["FunctionArn"],
                               "Tags": {"kagg:endpoint": "greet", "kagg:version": calls[0].kwargs["Tags"]["kagg:version"],
                                        "kagg-owner": OWNER}}
    state.tags["kagg-owner"] = OWNER
    assert plan_calls(ART, s, state) == []
