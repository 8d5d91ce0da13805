"""The AWS provider against moto in server mode, through a recording proxy (tests/aws_fixtures.py).

boto3 reaches moto only through ``AWS_ENDPOINT_URL``, the same code path a user
runs; checks of moto's state use a direct client so they do not show up in the
proxy's log of what kagg sent.
"""

from __future__ import annotations

import base64
import hashlib
import json
import sys

import pytest

from conftest import ROOT
from aws_fixtures import FAST, HELLO, aws, fname, hello_function, moto_stack  # noqa: F401
from kagg.errors import BadInput, OperationFailed
from kagg.model import DeployOptions, Endpoint
from kagg.providers import get_provider
from kagg.providers.aws import AWSProvider
from kagg.providers.aws.settings import ROLE_NAME, SID_INVOKE, SID_URL

CHANGED = HELLO.replace("hello ", "hi ")


def options(**kwargs) -> DeployOptions:
    extra = {**FAST, **kwargs.pop("extra", {})}
    return DeployOptions(extra=extra, **kwargs)


def deploy(provider: AWSProvider, function, opts: DeployOptions, current=None) -> Endpoint:
    artifact = provider.build(function, opts)
    plan = provider.plan(artifact, current, opts)
    return provider.apply(plan)


@pytest.fixture
def provider(tmp_path) -> AWSProvider:
    return AWSProvider(state_dir=tmp_path / ".kagg")


# -- deploys ---------------------------------------------------------------------------------------------
def test_builtin_lookup_gives_aws_provider(tmp_path):
    p = get_provider("aws", state_dir=tmp_path)
    assert isinstance(p, AWSProvider) and p.shims == ("lambda",)


def test_first_deploy_creates_role_function_and_private_url(aws, provider, fname):
    aws.forget_role()
    ep = deploy(provider, hello_function(fname), options())
    assert aws.proxy.actions(mutating=True) == [
        "iam:CreateRole", "iam:AttachRolePolicy", "lambda:CreateFunction", "lambda:CreateFunctionUrlConfig"]
    lam = aws.direct("lambda")
    conf = lam.get_function(FunctionName=fname)["Configuration"]
    assert conf["Runtime"] == "python3.12" and conf["Handler"] == "lambda_function.handler"
    assert conf["MemorySize"] == 512 and conf["Timeout"] == 30 and conf["Architectures"] == ["x86_64"]
    assert conf["Role"].endswith(f":role/{ROLE_NAME}")
    zip_bytes = (provider.state_dir / "artifacts" / "aws" / "python3.12-x86_64" / f"{ep.artifact_sha256}.zip").read_bytes()
    assert conf["CodeSha256"] == base64.b64encode(hashlib.sha256(zip_bytes).digest()).decode()
    url = lam.get_function_url_config(FunctionName=fname)
    assert url["AuthType"] == "AWS_IAM"
    assert ep.provider == "aws" and ep.auth == "aws_iam" and ep.region == "us-east-1"
    assert ep.url == url["FunctionUrl"]
    assert ep.provider_data["function_arn"] == conf["FunctionArn"]
    assert ep.provider_data["role_created_by_kagg"] is True
    attached = aws.direct("iam").list_attached_role_policies(RoleName=ROLE_NAME)["AttachedPolicies"]
    assert [p["PolicyName"] for p in attached] == ["AWSLambdaBasicExecutionRole"]
    assert "testing" not in json.dumps(ep.to_dict())  # no credential reaches the registry


def test_unchanged_redeploy_sends_no_update(aws, provider, fname):
    ep = deploy(provider, hello_function(fname), options())
    aws.proxy.clear()
    artifact = provider.build(hello_function(fname), options())
    plan = provider.plan(artifact, ep, options())
    assert plan.unchanged and plan.steps == []
    again = provider.apply(plan)  # even if asked, nothing is changed
    assert again.url == ep.url and again.created_at == ep.created_at
    assert aws.proxy.actions(mutating=True) == []
    assert aws.proxy.count("lambda:UpdateFunctionCode") == 0


def test_changed_code_is_uploaded_and_configuration_left_alone(aws, provider, fname):
    ep = deploy(provider, hello_function(fname), options())
    aws.proxy.clear()
    plan = provider.plan(provider.build(hello_function(fname, source=CHANGED), options()), ep, options())
    assert [s.action for s in plan.steps if s.mutating] == ["lambda:UpdateFunctionCode"]
    new = provider.apply(plan)
    assert aws.proxy.actions(mutating=True) == ["lambda:UpdateFunctionCode"]
    conf = aws.direct("lambda").get_function(FunctionName=fname)["Configuration"]
    assert conf["CodeSha256"] == new.provider_data["code_sha256"] != ep.provider_data["code_sha256"]
    assert new.url == ep.url and new.artifact_sha256 != ep.artifact_sha256


def test_force_uploads_unchanged_code(aws, provider, fname):
    ep = deploy(provider, hello_function(fname), options())
    aws.proxy.clear()
    plan = provider.plan(provider.build(hello_function(fname), options()), ep, options(force=True))
    assert not plan.unchanged and "forced" in plan.steps[0].description
    provider.apply(plan)
    assert aws.proxy.actions(mutating=True) == ["lambda:UpdateFunctionCode"]


def test_configuration_change_updates_only_configuration(aws, provider, fname):
    ep = deploy(provider, hello_function(fname), options())
    aws.proxy.clear()
    opts = options(memory=1024, timeout=60, env={"MODE": "fast"})
    plan = provider.plan(provider.build(hello_function(fname), opts), ep, opts)
    assert "MemorySize" in plan.steps[0].description and "Environment" in plan.steps[0].description
    new = provider.apply(plan)
    assert aws.proxy.actions(mutating=True) == ["lambda:UpdateFunctionConfiguration"]
    conf = aws.direct("lambda").get_function(FunctionName=fname)["Configuration"]
    assert conf["MemorySize"] == 1024 and conf["Timeout"] == 60
    assert conf["Environment"]["Variables"] == {"MODE": "fast"}
    assert new.provider_data["env_keys"] == ["MODE"]  # names only: values may be secrets
    aws.proxy.clear()
    assert provider.plan(provider.build(hello_function(fname), opts), new, opts).unchanged


def test_public_adds_both_permissions_and_private_withdraws_them(aws, provider, fname):
    ep = deploy(provider, hello_function(fname), options(public=True))
    assert ep.auth == "none"
    lam = aws.direct("lambda")
    assert lam.get_function_url_config(FunctionName=fname)["AuthType"] == "NONE"
    statements = {st["Sid"]: st for st in json.loads(lam.get_policy(FunctionName=fname)["Policy"])["Statement"]}
    assert statements[SID_URL]["Action"] == "lambda:InvokeFunctionUrl"
    assert statements[SID_URL]["Principal"] == "*" and statements[SID_URL]["FunctionUrlAuthType"] == "NONE"
    assert statements[SID_INVOKE]["Action"] == "lambda:InvokeFunction"
    assert statements[SID_INVOKE]["InvokedViaFunctionUrl"] is True
    aws.proxy.clear()
    assert provider.plan(provider.build(hello_function(fname), options(public=True)), ep, options(public=True)).unchanged
    private = deploy(provider, hello_function(fname), options(), current=ep)
    assert private.auth == "aws_iam"
    assert lam.get_function_url_config(FunctionName=fname)["AuthType"] == "AWS_IAM"
    assert sorted(a for a in aws.proxy.actions(mutating=True)) == [
        "lambda:RemovePermission", "lambda:RemovePermission", "lambda:UpdateFunctionUrlConfig"]


def test_given_role_is_used_and_no_role_is_created(aws, provider, fname):
    iam = aws.direct("iam")
    arn = iam.create_role(RoleName=fname + "-mine", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    ep = deploy(provider, hello_function(fname), options(role=arn))
    assert "iam:CreateRole" not in aws.proxy.actions()
    assert aws.direct("lambda").get_function(FunctionName=fname)["Configuration"]["Role"] == arn
    assert ep.provider_data["role_created_by_kagg"] is False


def test_second_function_reuses_the_shared_role(aws, provider, fname):
    deploy(provider, hello_function(fname + "-1"), options())
    aws.proxy.clear()
    deploy(provider, hello_function(fname + "-2"), options())
    assert "iam:CreateRole" not in aws.proxy.actions()


def test_foreign_function_of_the_same_name_is_not_taken_over(aws, provider, fname):
    iam = aws.direct("iam")
    arn = iam.create_role(RoleName=fname + "-theirs", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    aws.direct("lambda").create_function(FunctionName=fname, Runtime="python3.12", Role=arn,
                                         Handler="x.y", Code={"ZipFile": b"PK\x05\x06" + b"\0" * 18})
    aws.proxy.clear()
    with pytest.raises(BadInput, match="was not made by kagg"):
        provider.plan(provider.build(hello_function(fname), options()), None, options())
    assert aws.proxy.actions(mutating=True) == []


def test_region_of_an_existing_endpoint_is_kept(aws, provider, fname):
    ep = deploy(provider, hello_function(fname), options(region="eu-west-1"))
    assert ep.region == "eu-west-1" and ":eu-west-1:" in ep.provider_data["function_arn"]
    plan = provider.plan(provider.build(hello_function(fname), options()), ep, options())
    assert plan.unchanged and plan.data["region"] == "eu-west-1"
    with pytest.raises(BadInput, match="deployed in eu-west-1"):
        provider.plan(provider.build(hello_function(fname), options()), ep, options(region="us-west-2"))


# -- dry run ---------------------------------------------------------------------------------------------
def test_dry_run_plan_makes_only_read_calls(aws, provider, fname):
    aws.forget_role()
    opts = options(dry_run=True, public=True)
    plan = provider.plan(provider.build(hello_function(fname), opts), None, opts)
    assert [s.action for s in plan.steps] == [
        "iam:CreateRole", "iam:AttachRolePolicy", "lambda:CreateFunction", "lambda:GetFunction",
        "lambda:CreateFunctionUrlConfig", "lambda:AddPermission", "lambda:AddPermission"]
    assert [s.mutating for s in plan.steps] == [True, True, True, False, True, True, True]
    assert aws.proxy.actions() and aws.proxy.actions(mutating=True) == []
    with pytest.raises(ValueError):
        provider.apply(plan)
    assert aws.proxy.actions(mutating=True) == []


# -- delete ----------------------------------------------------------------------------------------------
def test_delete_removes_url_and_function_but_keeps_role(aws, provider, fname):
    ep = deploy(provider, hello_function(fname), options())
    aws.proxy.clear()
    assert provider.delete(ep, options()) == []
    assert aws.proxy.actions(mutating=True) == ["lambda:DeleteFunctionUrlConfig", "lambda:DeleteFunction"]
    assert fname not in [f["FunctionName"] for f in aws.direct("lambda").list_functions()["Functions"]]
    assert aws.direct("iam").get_role(RoleName=ROLE_NAME)["Role"]["RoleName"] == ROLE_NAME


def test_delete_with_purge_role_removes_the_role_when_unused(aws, provider, fname):
    aws.forget_functions()  # IAM is global: other tests' functions, in any region, would keep the role
    region = "ap-southeast-2"
    one = deploy(provider, hello_function(fname + "-1"), options(region=region))
    two = deploy(provider, hello_function(fname + "-2"), options(region=region))
    warnings = provider.delete(one, options(region=region, extra={"purge_role": True}))
    assert warnings and f"still used by {fname}-2" in warnings[0]
    assert provider.delete(two, options(region=region, extra={"purge_role": True})) == []
    assert ROLE_NAME not in [r["RoleName"] for r in aws.direct("iam").list_roles()["Roles"]]


def test_delete_of_a_function_removed_behind_kaggs_back_warns(aws, provider, fname):
    ep = deploy(provider, hello_function(fname), options())
    aws.direct("lambda").delete_function(FunctionName=fname)
    warnings = provider.delete(ep, options())
    assert len(warnings) == 1 and "already gone" in warnings[0] and fname in warnings[0]


# -- errors ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("status", [429, 500, 0])
def test_transient_errors_are_retried(aws, provider, status, fname):
    aws.forget_role()
    aws.proxy.faults.failure_status = status
    aws.proxy.faults.mutating_failures = 3
    ep = deploy(provider, hello_function(fname), options())
    injected = [s for s in aws.proxy.log if s.injected]
    assert len(injected) == 3
    assert aws.direct("lambda").get_function(FunctionName=fname)["Configuration"]["FunctionArn"] \
        == ep.provider_data["function_arn"]
    assert aws.proxy.count("iam:CreateRole") >= 2  # the first one was answered with an error


def test_transient_errors_give_up_within_the_bound(aws, provider, fname):
    aws.forget_role()
    aws.proxy.faults.mutating_failures = 1000
    with pytest.raises(OperationFailed) as info:
        deploy(provider, hello_function(fname), options(extra={"retry_attempts": 3}))
    message = str(info.value)
    assert "\n" not in message and "after 3 attempts" in message and "TooManyRequests" not in message
    assert info.value.transient is True
    assert aws.proxy.count("iam:CreateRole") == 3


def test_conflict_while_an_update_is_in_progress_is_retried(aws, provider, fname):
    ep = deploy(provider, hello_function(fname), options())
    aws.proxy.clear()
    aws.proxy.faults.failure_status = 409
    aws.proxy.faults.mutating_failures = 2
    deploy(provider, hello_function(fname, source=CHANGED), options(), current=ep)
    assert aws.proxy.count("lambda:UpdateFunctionCode") == 3


def test_throttled_waiter_is_waited_again(aws, provider, fname):
    opts = options()
    plan = provider.plan(provider.build(hello_function(fname), opts), None, opts)
    aws.proxy.clear()
    aws.proxy.faults.reject["GetFunction"] = [429, "TooManyRequestsException", "Rate exceeded", 2]
    provider.apply(plan)
    assert aws.proxy.count("lambda:GetFunction") == 3  # the waiter's polls: two throttled, one Active


def test_redeploy_after_the_function_vanished_creates_it_again(aws, provider, fname):
    ep = deploy(provider, hello_function(fname), options())
    aws.direct("lambda").delete_function(FunctionName=fname)
    aws.proxy.clear()
    again = deploy(provider, hello_function(fname), options(), current=ep)
    assert "lambda:CreateFunction" in aws.proxy.actions(mutating=True)
    assert again.created_at == ep.created_at and again.url.startswith("https://")


def test_access_denied_is_reported_in_one_line_without_retry(aws, provider, fname):
    aws.proxy.faults.deny = {"CreateFunction"}
    with pytest.raises(OperationFailed) as info:
        deploy(provider, hello_function(fname), options())
    message = str(info.value)
    assert "\n" not in message and "lambda:CreateFunction" in message and "permission" in message
    assert getattr(info.value, "transient", False) is False
    assert aws.proxy.count("lambda:CreateFunction") == 1


def test_validation_error_from_aws_is_one_line_and_not_retried(aws, provider, fname):
    aws.proxy.faults.reject["CreateFunction"] = [
        400, "InvalidParameterValueException",
        "1 validation error detected: Value '99999' at 'memorySize' failed to satisfy constraint:\n"
        "Member must have value less than or equal to 10240", 5]
    with pytest.raises(OperationFailed) as info:
        deploy(provider, hello_function(fname), options())
    message = str(info.value)
    assert "\n" not in message and "CreateFunction" in message and "'99999' at 'memorySize'" in message
    assert aws.proxy.count("lambda:CreateFunction") == 1


def test_role_not_yet_usable_by_lambda_is_retried(aws, provider, fname):
    aws.proxy.faults.reject["CreateFunction"] = [
        400, "InvalidParameterValueException",
        "The role defined for the function cannot be assumed by Lambda.", 2]
    deploy(provider, hello_function(fname), options())
    assert aws.proxy.count("lambda:CreateFunction") == 3


def test_role_that_never_becomes_usable_gives_up(aws, provider, fname):
    opts = options(role="arn:aws:iam::123456789012:role/does-not-exist", extra={"retry_attempts": 2})
    with pytest.raises(OperationFailed) as info:
        deploy(provider, hello_function(fname), opts)
    assert "\n" not in str(info.value) and "CreateFunction still failing after 2 attempts" in str(info.value)


# -- bad input: refused before any call ------------------------------------------------------------------
BAD_OPTIONS = [
    (dict(region="mars-north-1"), "unknown AWS region"),
    (dict(memory=64), "memory 64"),
    (dict(memory=20000), "memory 20000"),
    (dict(timeout=0), "timeout 0"),
    (dict(timeout=901), "timeout 901"),
    (dict(runtime="python3.9"), "runtime 'python3.9'"),
    (dict(arch="sparc"), "architecture 'sparc'"),
    (dict(env={"1BAD": "x"}), "--env name '1BAD'"),
    (dict(env={"AWS_REGION": "x"}), "reserved"),
    (dict(role="admin"), "--role 'admin'"),
    (dict(bucket="Bad_Bucket"), "--bucket"),
]


@pytest.mark.parametrize("kwargs,message", BAD_OPTIONS)
def test_bad_options_are_refused_before_any_call(aws, provider, kwargs, message, fname):
    with pytest.raises(BadInput) as info:
        provider.validate_options(options(**kwargs))
    assert message in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(BadInput):
        provider.plan(provider.build(hello_function(fname), options()), None, options(**kwargs))
    assert aws.proxy.actions() == []


@pytest.mark.parametrize("name", ["x" * 65, "has space", "dots.in.name", "slash/", ""])
def test_invalid_lambda_names_are_refused(provider, name):
    with pytest.raises(BadInput, match="1-64 characters"):
        provider.validate_name(name)


@pytest.mark.parametrize("name", ["x" * 64, "Upper_and-lower9", "a"])
def test_valid_lambda_names_pass(provider, name):
    provider.validate_name(name)


def no_credentials(monkeypatch, tmp_path):
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
                "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN"):
        monkeypatch.delenv(var, raising=False)
    (tmp_path / "empty_config").write_text("")
    (tmp_path / "empty_credentials").write_text("")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "empty_config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "empty_credentials"))


def test_no_credentials_at_all_names_the_standard_ways(aws, tmp_path, monkeypatch, fname):
    no_credentials(monkeypatch, tmp_path)
    provider = AWSProvider(state_dir=tmp_path)
    with pytest.raises(BadInput) as info:
        provider.validate_options(options())
    message = str(info.value)
    for way in ("AWS_ACCESS_KEY_ID", "~/.aws/credentials", "AWS_PROFILE", "aws configure", "SSO"):
        assert way in message
    assert "\n" not in message and aws.proxy.actions() == []


# -- big artifacts ---------------------------------------------------------------------------------------
def test_zip_over_the_direct_limit_goes_through_s3(aws, provider, fname):
    region = "eu-central-1"  # a region of its own, so the bucket is created here (with a LocationConstraint)
    opts = options(region=region, extra={"max_zip_bytes": 1000})
    ep = deploy(provider, hello_function(fname), opts)
    bucket = f"kagg-artifacts-123456789012-{region}"
    assert aws.proxy.actions(mutating=True)[:3] == ["s3:CreateBucket", "s3:PutPublicAccessBlock", "s3:PutObject"]
    key = f"kagg/{fname}/{ep.artifact_sha256}.zip"
    assert ep.provider_data["code_location"] == {"bucket": bucket, "key": key}
    s3 = aws.direct("s3", region)
    assert s3.get_bucket_location(Bucket=bucket)["LocationConstraint"] == region
    assert s3.head_object(Bucket=bucket, Key=key)["ContentLength"] > 1000
    conf = aws.direct("lambda", region).get_function(FunctionName=fname)["Configuration"]
    assert conf["CodeSha256"] == ep.provider_data["code_sha256"]
    aws.proxy.clear()
    assert provider.plan(provider.build(hello_function(fname), opts), ep, opts).unchanged
    changed = deploy(provider, hello_function(fname, source=CHANGED), opts, current=ep)
    assert aws.proxy.actions(mutating=True) == ["s3:PutObject", "lambda:UpdateFunctionCode"]
    provider.delete(changed, opts)
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])] == [key]


def test_given_bucket_is_used_and_a_missing_one_refused(aws, provider, fname):
    aws.direct("s3").create_bucket(Bucket=f"{fname}-artifacts")
    opts = options(bucket=f"{fname}-artifacts", extra={"max_zip_bytes": 1000})
    ep = deploy(provider, hello_function(fname), opts)
    assert ep.provider_data["code_location"]["bucket"] == f"{fname}-artifacts"
    assert "s3:CreateBucket" not in aws.proxy.actions()
    with pytest.raises(BadInput, match="does not exist"):
        provider.plan(provider.build(hello_function(fname), opts), ep,
                      options(bucket="absent-bucket", extra={"max_zip_bytes": 1000}))


def test_unzipped_size_over_the_limit_is_refused_before_any_call(aws, provider, fname):
    opts = options(extra={"max_unzipped_bytes": 5000})
    with pytest.raises(BadInput, match="over the 4.9 kB limit"):
        provider.build(hello_function(fname), opts)
    assert aws.proxy.actions() == []


# -- signing ---------------------------------------------------------------------------------------------
def test_sign_adds_sigv4_for_private_urls_only(provider):
    private = Endpoint(name="x", provider="aws", url="https://abc.lambda-url.eu-west-1.on.aws/",
                       auth="aws_iam", region="eu-west-1")
    headers = provider.sign(private, "POST", private.url, {"Content-Type": "application/json"}, b'{"a": 1}')
    assert headers["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=testing/")
    assert "/eu-west-1/lambda/aws4_request" in headers["Authorization"]
    assert headers["X-Amz-Security-Token"] == "testing" and "X-Amz-Date" in headers
    assert headers["X-Amz-Content-SHA256"] == hashlib.sha256(b'{"a": 1}').hexdigest()
    public = Endpoint(name="x", provider="aws", url=private.url, auth="none", region="eu-west-1")
    assert provider.sign(public, "GET", public.url, {"A": "b"}, b"") == {"A": "b"}


def test_sign_verifies_with_botocore(provider):
    """The signature is the one AWS computes: recompute it with the same inputs."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    ep = Endpoint(name="x", provider="aws", url="https://abc.lambda-url.us-east-1.on.aws/?q=1",
                  auth="aws_iam", region="us-east-1")
    headers = provider.sign(ep, "GET", ep.url, {}, b"")
    request = AWSRequest(method="GET", url=ep.url, data=b"",
                         headers={"X-Amz-Content-SHA256": headers["X-Amz-Content-SHA256"]})
    auth = SigV4Auth(Credentials("testing", "testing", "testing"), "lambda", "us-east-1")
    request.context["timestamp"] = headers["X-Amz-Date"]
    request.headers["X-Amz-Date"] = headers["X-Amz-Date"]
    request.headers["X-Amz-Security-Token"] = "testing"
    canonical = auth.canonical_request(request)
    signature = auth.signature(auth.string_to_sign(request, canonical), request)
    assert headers["Authorization"].endswith("Signature=" + signature)


def test_importing_the_provider_does_not_import_boto3():
    import subprocess

    code = ("import sys; from kagg.providers.aws import AWSProvider; "
            "print('boto3' in sys.modules or 'botocore' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=str(ROOT))
    assert out.stdout.strip() == "False"


def test_logs_come_from_the_functions_log_group(aws, provider, fname):
    import time

    ep = Endpoint(name=fname, provider="aws", url="https://x", auth="aws_iam", region="us-east-1",
                  provider_data={"function_name": fname})
    assert list(provider.logs(ep)) == []  # no log group yet: the function never ran
    logs = aws.direct("logs")
    group = f"/aws/lambda/{fname}"
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName="s")
    now = int(time.time() * 1000)
    logs.put_log_events(logGroupName=group, logStreamName="s", logEvents=[
        {"timestamp": now - 2000, "message": "START RequestId: 1\n"},
        {"timestamp": now - 1000, "message": "kagg: GET / 200"}])
    lines = list(provider.logs(ep))
    assert len(lines) == 2 and lines[0].endswith("START RequestId: 1\n") and "GET / 200" in lines[1]
