"""``/jobs`` on every provider's artifact (Lambda payload 2.0, functions-framework, azure-functions),
against the Kaggle stand-in that runs the pushed kernel: start, poll to complete, outputs, logs,
list, stop; ``/`` and ``/health`` load nothing of Kaggle; no credential in any answer or log."""

from __future__ import annotations

import json

import pytest

from jobs_helpers import DriverInstance, HttpInstance, Req, artifact_tree, fetch, jobs_notebook, wait_done

SHIMS = {"lambda": ("lambda",), "ff": ("gcf",), "azure": ("azure",)}


def start_instance(kind: str, folder, env, log):
    if kind == "ff":
        return HttpInstance.functions_framework(folder, env, log)
    return DriverInstance(kind, folder, env, log)


@pytest.mark.parametrize("kind", ["lambda", "ff", "azure"])
def test_a_job_from_start_to_outputs(kind, kaggle_standin, tmp_path):
    nb = jobs_notebook(tmp_path / "nb")
    folder = artifact_tree(nb, SHIMS[kind], tmp_path / "app")
    inst = start_instance(kind, folder, kaggle_standin.env(), tmp_path / "instance.log")
    try:
        if kind != "ff":  # a socket server's health probe already ran: check the others before any /jobs
            first = inst.send([Req("GET", "/health"), Req("POST", "/", {"x": 2})])
            assert [r.status for r in first] == [200, 200] and first[1].json() == {"y": 4.0}
            assert inst.modules() == [], "/ and /health must load nothing of Kaggle"
        started = inst.send([Req("POST", "/jobs", {"lr": 0.5, "label": "run1"})])[0]
        assert started.status == 202, started.text
        body = started.json()
        assert body["status"] == "queued" and body["status_url"] == f"/jobs/{body['id']}"
        assert started.headers["location"] == body["status_url"]
        if kind != "ff":
            assert {"kagg_jobs", "kagglesdk"} <= set(inst.modules()) and "kagg" not in inst.modules()
        done = wait_done(inst, body["id"])
        assert done["status"] == "complete", done
        assert done["result"]["status"] == "complete" and done["result"]["parameters"]["lr"] == 0.5
        assert done["started_at"] and done["finished_at"]
        outputs = {o["name"]: o for o in done["outputs"]}
        model = outputs["outputs/model.json"]
        assert json.loads(fetch(model["url"])) == {"w": 1.0, "label": "run1"}
        assert model["size"] == len(fetch(model["url"]))
        logs = inst.send([Req("GET", f"/jobs/{body['id']}/logs")])[0].json()
        assert "trained 0.5 2 run1" in logs["log"] and logs["status"] == "complete"
        listed = inst.send([Req("GET", "/jobs?limit=5")])[0].json()["jobs"]
        assert [j["id"] for j in listed] == [body["id"]]
        stopped = inst.send([Req("DELETE", f"/jobs/{body['id']}")])[0]
        assert stopped.status == 200 and stopped.json()["status"] == "stopped"
        gone = inst.send([Req("GET", f"/jobs/{body['id']}")])[0]
        assert gone.status == 404 and gone.json()["error"]["type"] == "NotFound"
        texts = [started.text, json.dumps(done), json.dumps(logs), stopped.text, gone.text, inst.log()]
        assert not any(kaggle_standin.key in t for t in texts)
        pushed = kaggle_standin.calls_to("SaveKernel")
        assert len(pushed) == 1 and kaggle_standin.key not in pushed[0].body["text"]
    finally:
        inst.stop()


def test_logs_of_a_running_job_and_an_error(kaggle_standin, tmp_path):
    """GET /jobs/ID/logs while the kernel runs (Kaggle's log stream, read briefly); a failing
    train cell ends the job as `error` naming the cell's exception."""
    from jobs_helpers import HANDLER, PARAMS, SETUP
    from notebooks import write

    gate = ("import time\nprint('waiting at the gate', flush=True)\n"
            "while not (ROOT / 'go').exists():\n    time.sleep(0.02)\nif label == 'fail':\n"
            "    raise ValueError('the data is empty')")
    nb = write(tmp_path / "gated.ipynb", SETUP, (PARAMS, ["parameters"]), (gate, ["train"]), HANDLER)
    folder = artifact_tree(nb, ("lambda",), tmp_path / "app")
    inst = DriverInstance("lambda", folder, {**kaggle_standin.env(), "KAGG_JOBS_LOG_WAIT_S": "1"}, tmp_path / "l.log")
    try:
        job = inst.send([Req("POST", "/jobs", {"label": "fail"})])[0].json()["id"]
        kernel = kaggle_standin.only_kernel()

        def running_log():
            body = inst.send([Req("GET", f"/jobs/{job}/logs")])[0].json()
            return body if "waiting at the gate" in body["log"] else None

        from conftest import wait_until

        body = wait_until(running_log, timeout=120, what="the gate line in the live log")
        assert body["status"] == "running"
        (kernel.latest.root / "go").write_text("")
        done = wait_done(inst, job)
        assert done["status"] == "error" and "the data is empty" in (done["failure"] or ""), done
    finally:
        inst.stop()
