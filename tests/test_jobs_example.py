"""examples/competition_baseline.ipynb end to end on the Lambda artifact, against the Kaggle stand-in
with a small competition: POST /jobs → poll → submission.csv and model.pkl from Kaggle's links;
then the handler, deployed with that model beside the notebook, answers predictions."""

from __future__ import annotations

import csv
import io
import shutil
from pathlib import Path

import pytest

from jobs_helpers import DriverInstance, Req, artifact_tree, fetch, wait_done

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "competition_baseline.ipynb"


def competition(folder: Path, regression: bool) -> Path:
    folder.mkdir(parents=True)
    rows = [(i, i % 7, "ab"[i % 2], (i % 7) * 1.5 + 0.25 if regression else int(i % 7 > 3)) for i in range(60)]
    with open(folder / "train.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "x", "kind", "y"])
        w.writerows(rows)
    with open(folder / "test.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "x", "kind"])
        w.writerows((100 + i, i % 7, "ab"[i % 2]) for i in range(10))
    with open(folder / "sample_submission.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "y"])
        w.writerows((100 + i, 0) for i in range(10))
    return folder


@pytest.mark.parametrize("regression", [False, True], ids=["classification", "regression"])
def test_competition_baseline(kaggle_standin, tmp_path, regression):
    slug = "tiny-reg" if regression else "tiny-class"
    kaggle_standin.add_competition(slug, competition(tmp_path / "data", regression))
    inst = DriverInstance("lambda", artifact_tree(EXAMPLE, ("lambda",), tmp_path / "app"), kaggle_standin.env(),
                          tmp_path / "lambda.log")
    try:
        started = inst.send([Req("POST", "/jobs", {"competition": slug, "n_estimators": 10})])[0]
        assert started.status == 202, started.text
        done = wait_done(inst, started.json()["id"])
        assert done["status"] == "complete", (done, inst.send([Req("GET", f"/jobs/{started.json()['id']}/logs")])[0].text)
        urls = {o["name"]: o["url"] for o in done["outputs"]}
        rows = list(csv.DictReader(io.StringIO(fetch(urls["outputs/submission.csv"]).decode())))
        assert [r["id"] for r in rows] == [str(100 + i) for i in range(10)]
        predictions = [float(r["y"]) for r in rows]
        assert (len(set(predictions) - {0.0, 1.0}) > 0) == regression
        logs = inst.send([Req("GET", f"/jobs/{started.json()['id']}/logs")])[0].json()["log"]
        assert ("regression" if regression else "classification") in logs
        model = fetch(urls["outputs/model.pkl"])
    finally:
        inst.stop()
    if regression:
        return  # the handler with a trained model: once is enough
    folder = tmp_path / "redeploy"
    folder.mkdir()
    shutil.copy(EXAMPLE, folder / EXAMPLE.name)
    (folder / "model.pkl").write_bytes(model)
    served = DriverInstance("lambda", artifact_tree(folder / EXAMPLE.name, ("lambda",), tmp_path / "app2"),
                            kaggle_standin.env(), tmp_path / "served.log")
    try:
        answer = served.send([Req("POST", "/", {"rows": [{"x": 6, "kind": "a"}, {"x": 1, "kind": "b"}]})])[0]
        assert answer.status == 200, answer.text
        assert answer.json() == {"kind": "classification", "target": "y", "predictions": [1, 0]}
    finally:
        served.stop()
