"""``/jobs`` under bad input, retries, the GPU cap, Kaggle faults and load, on the Lambda handler
(payload-2.0 events, one warm instance in a subprocess, requests on threads of it). Sessions are
made "stuck" (RUNNING, nothing run) so that these tests start no kernel process."""

from __future__ import annotations

import sys
from collections import Counter

import pytest

from jobs_helpers import DriverInstance, Req, artifact_tree, jobs_notebook
from kagg.packaging.builder import RUNTIME_DIR

if str(RUNTIME_DIR) not in sys.path:
    sys.path.insert(0, str(RUNTIME_DIR))


@pytest.fixture
def lam(kaggle_standin, tmp_path):
    """A warm Lambda instance of the train notebook's artifact; every session stays RUNNING."""
    for _ in range(80):
        kaggle_standin.make_stuck(None)
    folder = artifact_tree(jobs_notebook(tmp_path / "nb"), ("lambda",), tmp_path / "app")
    env = {**kaggle_standin.env(), "KAGG_JOBS_RETRY_S": "2"}
    inst = DriverInstance("lambda", folder, env, tmp_path / "lambda.log")
    yield inst
    inst.stop()
    assert kaggle_standin.key not in inst.log()


def post(inst, body=None, key=None, n=1):
    headers = {"Idempotency-Key": key} if key else {}
    return inst.send([Req("POST", "/jobs", body if body is not None else {}, headers) for _ in range(n)])


def versions(standin) -> dict[str, int]:
    with standin.lock:
        return {k.slug: len(k.versions) for k in standin.kernels.values()}


@pytest.mark.parametrize("body, word", [({"lr": "fast"}, "lr"), ({"nope": 1}, "nope"), ({"epochs": 1.5}, "epochs")])
def test_bad_parameters_are_refused_before_any_push(lam, kaggle_standin, body, word):
    resp = post(lam, body)[0]
    assert resp.status == 400, resp.text
    error = resp.json()["error"]
    assert error["type"] in ("InvalidParameter", "UnknownParameter") and word in error["message"]
    assert kaggle_standin.calls_to("SaveKernel") == []


def test_bad_body_and_key(lam, kaggle_standin):
    assert lam.send([Req("POST", "/jobs", None, {"content-type": "application/json"})])[0].status == 202
    bad = lam.send([Req("POST", "/jobs", ["x"]), Req("POST", "/jobs", {}, {"Idempotency-Key": "a b"})])
    assert [r.status for r in bad] == [400, 400]
    assert bad[1].json()["error"]["type"] == "InvalidIdempotencyKey"
    odd = lam.send([Req("GET", "/jobs/not-a-job"), Req("PUT", "/jobs"), Req("GET", "/jobs?limit=0")])
    assert [r.status for r in odd] == [404, 405, 400]
    import kagg_jobs  # the artifact's module, as a function runs it

    mine = post(lam)[0].json()["id"]
    owner, slug, version = kagg_jobs.decode_id(mine)
    foreign = [kagg_jobs.encode_id("someone-else", slug, version), kagg_jobs.encode_id(owner, "kagg-job-other-1", 1)]
    assert [r.status for r in lam.send([Req("GET", f"/jobs/{j}") for j in foreign])] == [404, 404]
    assert [r.status for r in lam.send([Req("DELETE", f"/jobs/{j}") for j in foreign])] == [404, 404]


def test_same_key_same_job_also_when_concurrent(lam, kaggle_standin):
    first = post(lam, {"lr": 0.2}, key="order-1")[0]
    again = post(lam, {"lr": 0.2}, key="order-1")[0]
    assert first.status == again.status == 202 and first.json()["id"] == again.json()["id"]
    pair = post(lam, key="order-2", n=2)
    assert [r.status for r in pair] == [202, 202] and pair[0].json()["id"] == pair[1].json()["id"]
    assert sorted(versions(kaggle_standin).values()) == [1, 1]
    assert len(kaggle_standin.calls_to("SaveKernel")) == 2


def test_gpu_cap_is_a_429_with_retry_after(lam, kaggle_standin):
    kaggle_standin.gpu_cap = 1
    assert post(lam, key="a")[0].status == 202
    busy = post(lam, key="b")[0]
    assert busy.status == 429 and int(busy.headers["retry-after"]) > 0
    assert busy.json()["error"]["type"] == "GpuSessionsBusy" and "Maximum batch GPU session" in busy.text
    assert post(lam, key="a")[0].status == 202  # the existing job is found, cap or not
    assert len(versions(kaggle_standin)) == 1


def test_kaggle_faults_are_retried_then_503(lam, kaggle_standin):
    kaggle_standin.fail("SaveKernel", status=503, html=True, times=1)
    kaggle_standin.fail("GetKernel", status=429, times=1)
    ok = post(lam, key="flaky")[0]
    assert ok.status == 202, ok.text
    kaggle_standin.fail("SaveKernel", status=500, accept_first=True, times=1)  # accepted, answered 500
    accepted = post(lam)[0]
    assert accepted.status == 202, accepted.text
    assert sorted(versions(kaggle_standin).values()) == [1, 1]  # looked up, not pushed twice
    kaggle_standin.fail("*", status=503, times=10_000)
    down = post(lam, key="later")[0]
    assert down.status == 503 and int(down.headers["retry-after"]) > 0
    assert down.json()["error"]["type"] == "KaggleUnavailable"
    status = lam.send([Req("GET", f"/jobs/{ok.json()['id']}")])[0]
    assert status.status == 503


def test_fifty_concurrent_posts(lam, kaggle_standin):
    kaggle_standin.gpu_cap = 10
    keys = [f"k{i % 20}" for i in range(50)]  # 20 keys, most sent two or three times at once
    reqs = [Req("POST", "/jobs", {"epochs": 1}, {"Idempotency-Key": k}) for k in keys]
    answers = lam.send(reqs)
    assert Counter(r.status for r in answers).keys() <= {202, 429}, [r.text for r in answers if r.status not in (202, 429)]
    ids: dict[str, set] = {}
    for key, resp in zip(keys, answers):
        if resp.status == 202:
            ids.setdefault(key, set()).add(resp.json()["id"])
        else:
            assert "retry-after" in resp.headers
    assert all(len(v) == 1 for v in ids.values())
    assert len(ids) == 10 and set(versions(kaggle_standin).values()) == {1}
    assert "Traceback" not in lam.log()


def test_public_endpoint_keeps_jobs_closed(kaggle_standin, tmp_path):
    nb = jobs_notebook(tmp_path / "nb")
    closed = DriverInstance("lambda", artifact_tree(nb, ("lambda",), tmp_path / "closed", public=True),
                            kaggle_standin.env(), tmp_path / "closed.log")
    opened = DriverInstance("lambda", artifact_tree(nb, ("lambda",), tmp_path / "open", public=True, public_jobs=True),
                            kaggle_standin.env(), tmp_path / "open.log")
    try:
        kaggle_standin.make_stuck(None)
        refused = closed.send([Req("POST", "/jobs", {}), Req("GET", "/jobs"), Req("POST", "/", {"x": 1})])
        assert [r.status for r in refused] == [403, 403, 200]
        assert refused[0].json()["error"]["type"] == "JobsClosed" and "--public-jobs" in refused[0].text
        assert opened.send([Req("POST", "/jobs", {})])[0].status == 202
        assert len(kaggle_standin.calls_to("SaveKernel")) == 1
    finally:
        closed.stop()
        opened.stop()


def test_no_credentials_is_a_503_that_says_so(kaggle_standin, tmp_path):
    folder = artifact_tree(jobs_notebook(tmp_path / "nb"), ("lambda",), tmp_path / "app")
    env = {"KAGG_KAGGLE_API_URL": kaggle_standin.url, "KAGGLE_USERNAME": "", "KAGGLE_KEY": ""}
    inst = DriverInstance("lambda", folder, env, tmp_path / "l.log")
    try:
        resp = post(inst)[0]
        assert resp.status == 503 and resp.json()["error"]["type"] == "NoKaggleCredentials"
    finally:
        inst.stop()


def test_an_access_token_works_as_well(kaggle_standin, tmp_path, monkeypatch):
    """A deployer with KAGGLE_API_TOKEN gives the function that (sent as a bearer token)."""
    from kagg.jobs_secrets import deployer_secrets

    monkeypatch.delenv("KAGGLE_KEY")
    monkeypatch.setenv("KAGGLE_API_TOKEN", kaggle_standin.key)
    secrets = deployer_secrets()
    assert secrets.problem is None and set(secrets.env) == {"KAGGLE_USERNAME", "KAGGLE_API_TOKEN", "KAGG_KAGGLE_API_URL"}
    kaggle_standin.make_stuck(None)
    folder = artifact_tree(jobs_notebook(tmp_path / "nb"), ("lambda",), tmp_path / "app")
    inst = DriverInstance("lambda", folder, secrets.env, tmp_path / "t.log")
    try:
        assert post(inst)[0].status == 202
    finally:
        inst.stop()
    push = kaggle_standin.calls_to("SaveKernel")[0]
    assert {k.lower(): v for k, v in push.headers.items()}["authorization"].startswith("Bearer ")
