"""``/jobs`` on a local endpoint made by ``kagg deploy``, driven by the ``kagg jobs`` commands and by
50 concurrent POSTs, against the Kaggle stand-in; the deployer's Kaggle key reaches the function
through the local env file only (0600), never the registry, the artifact, the log or an answer."""

from __future__ import annotations

import json
import stat
import zipfile
from collections import Counter
from pathlib import Path

import pytest

from jobs_helpers import HttpInstance, Req, jobs_notebook


def deploy(kagg, nb: Path, name: str = "trainer"):
    out = kagg("deploy", str(nb), "--name", name)
    assert out.returncode == 0, out.stderr
    return out


def entry(registry_path: Path, name: str = "trainer") -> dict:
    return json.loads(registry_path.read_text())["endpoints"][name]


def test_deploy_then_jobs_commands(kagg, reg, kaggle_standin, tmp_path):
    key = kaggle_standin.key
    out = deploy(kagg, jobs_notebook(tmp_path / "nb"))
    assert "kagg jobs start trainer" in out.stdout
    ep = entry(reg)
    assert key not in reg.read_text() and "KAGGLE_KEY" in ep["provider_data"]["env_names"]
    env_file = Path(ep["provider_data"]["app_dir"]).parent / "env.json"
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600 and json.loads(env_file.read_text())["KAGGLE_KEY"] == key
    artifacts = list((reg.parent / ".kagg" / "artifacts").glob("*.zip")) or list(reg.parent.rglob("artifacts/*.zip"))
    assert artifacts
    with zipfile.ZipFile(artifacts[0]) as zf:
        names = zf.namelist()
        assert {"kagg_jobs.py", "kagg_jobs.json", "kagg_jobs_kaggle.py"} <= set(names)
        assert "kagglesdk" in zf.read("requirements.txt").decode()
        assert not any(key.encode() in zf.read(n) for n in names)

    started = kagg("jobs", "start", "trainer", "-p", "lr=0.3", "-p", "label=cli", "--wait")
    assert started.returncode == 0, started.stderr
    assert "complete" in started.stdout and "outputs/model.json" in started.stdout
    job_id = started.stderr.split("started ", 1)[1].split()[0]
    listed = kagg("jobs", "list", "trainer", "--json")
    assert [j["id"] for j in json.loads(listed.stdout)] == [job_id]
    logs = kagg("jobs", "logs", "trainer", job_id)
    assert "trained 0.3 2 cli" in logs.stdout
    fetched = kagg("jobs", "output", "trainer", job_id, "-o", str(tmp_path / "out"))
    assert fetched.returncode == 0, fetched.stderr
    assert json.loads((tmp_path / "out" / "outputs" / "model.json").read_text()) == {"w": 0.6, "label": "cli"}
    status = kagg("jobs", "status", "trainer", job_id, "--json")
    assert json.loads(status.stdout)["status"] == "complete"
    bad = kagg("jobs", "start", "trainer", "-p", "epochs=many")
    assert bad.returncode == 2 and "epochs" in bad.stderr and "Traceback" not in bad.stderr
    stopped = kagg("jobs", "stop", "trainer", job_id)
    assert stopped.returncode == 0 and "deleted" in stopped.stdout
    assert kagg("jobs", "status", "trainer", job_id).returncode == 1
    server_log = Path(ep["provider_data"]["log"]).read_text()
    for text in (out.stdout, out.stderr, started.stdout, started.stderr, logs.stdout, status.stdout, server_log,
                 reg.read_text()):
        assert key not in text


def test_fifty_concurrent_posts_on_a_local_endpoint(kagg, reg, kaggle_standin, tmp_path):
    for _ in range(60):
        kaggle_standin.make_stuck(None)  # RUNNING, nothing run: no kernel process for this test
    kaggle_standin.gpu_cap = 8
    deploy(kagg, jobs_notebook(tmp_path / "nb"), "loaded")
    inst = HttpInstance(entry(reg, "loaded")["url"])
    keys = [f"key-{i % 25}" for i in range(50)]
    answers = inst.send([Req("POST", "/jobs", {"lr": 0.01}, {"Idempotency-Key": k}) for k in keys])
    counts = Counter(r.status for r in answers)
    assert set(counts) <= {202, 429}, [r.text for r in answers if r.status not in (202, 429)]
    ids: dict[str, set] = {}
    for k, r in zip(keys, answers):
        if r.status == 202:
            ids.setdefault(k, set()).add(r.json()["id"])
    assert all(len(v) == 1 for v in ids.values()) and len(ids) == 8
    with kaggle_standin.lock:
        assert {len(k.versions) for k in kaggle_standin.kernels.values()} == {1}
    assert "Traceback" not in Path(entry(reg, "loaded")["provider_data"]["log"]).read_text()
    from kagg.errors import OperationFailed
    from kagg.jobs_client import JobsClient

    url = entry(reg, "loaded")["url"]
    with pytest.raises(OperationFailed, match="429.*GpuSessionsBusy"):
        JobsClient(url, retry_s=0).start({}, key="over-the-cap")
    waits = []

    def wait_out(seconds):  # the session that ends while the client waits out Retry-After
        waits.append(seconds)
        kaggle_standin.gpu_cap += 1

    started = JobsClient(url, sleep=wait_out).start({}, key="over-the-cap")
    assert waits == [60.0] and started["status"] == "queued"
    probed = kagg("monitor", "loaded", "--jobs", "--count", "4", "--rate", "20/s", "--json", "--no-history")
    assert probed.returncode == 0, probed.stderr
    (report,) = json.loads(probed.stdout)["endpoints"]
    assert report["statuses"] == {"200": 4} and report["url"].endswith("/jobs?limit=1") and report["method"] == "GET"
    refused = kagg("monitor", "loaded", "--jobs", "--health")
    assert refused.returncode == 2 and "--jobs" in refused.stderr


def test_a_notebook_without_train_cells_has_no_jobs(kagg, reg, tmp_path):
    from notebooks import HANDLER, write

    deploy(kagg, write(tmp_path / "plain.ipynb", HANDLER), "plain")
    inst = HttpInstance(entry(reg, "plain")["url"])
    resp = inst.send([Req("POST", "/jobs", {})])[0]
    assert resp.status == 404 and "train" in resp.json()["error"]["message"]
