"""50 concurrent ``POST /jobs`` against one warm instance, with the Kaggle stand-in behind it.

The train notebook's artifact is served twice: by a local endpoint (``kagg deploy``, gunicorn's
threaded worker, over sockets) and by the Lambda handler (payload-2.0 events on 50 threads of
one subprocess). 50 requests go at once, 20 keys among them (each sent two or three times),
with the account's GPU cap at 8; the stand-in's sessions stay RUNNING without running anything,
so only the function and the API are measured. Printed: how the requests were answered, the
kernels made (one per key at most), and the latency of the burst; the reference run is 50
concurrent ``GET /health`` on the same instance.

    python benchmarks/bench_jobs_concurrency.py [--latency-ms 20]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from benchmarks._common import print_table  # noqa: E402


def burst(inst, reqs) -> tuple[float, list]:
    start = time.perf_counter()
    answers = inst.send(reqs)
    return time.perf_counter() - start, answers


def measure(inst, standin, label: str) -> list:
    from jobs_helpers import Req

    keys = [f"key-{label}-{i % 20}" for i in range(50)]
    health_s, _ = burst(inst, [Req("GET", "/health") for _ in range(50)])
    jobs_s, answers = burst(inst, [Req("POST", "/jobs", {"epochs": 1}, {"Idempotency-Key": k}) for k in keys])
    counts = Counter(a.status for a in answers)
    with standin.lock:
        versions = [len(k.versions) for k in standin.kernels.values()]
    ids = {}
    for key, answer in zip(keys, answers):
        if answer.status == 202:
            ids.setdefault(key, set()).add(answer.json()["id"])
    duplicates = sum(len(v) - 1 for v in ids.values())
    return [label, dict(sorted(counts.items())), len(ids), duplicates, max(versions or [0]),
            f"{jobs_s * 1000:.0f}", f"{health_s * 1000:.0f}", f"{jobs_s / health_s:.1f}"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency-ms", type=float, default=20.0, help="added to every stand-in request")
    args = parser.parse_args()
    from jobs_helpers import DriverInstance, HttpInstance, artifact_tree, jobs_notebook
    from kaggle_standin import KaggleStandIn

    rows = []
    with tempfile.TemporaryDirectory() as tmp, KaggleStandIn(folder=Path(tmp) / "standin") as standin:
        tmp_path = Path(tmp)
        standin.latency_s = args.latency_ms / 1000.0
        for _ in range(200):
            standin.make_stuck(None)
        nb = jobs_notebook(tmp_path / "nb")
        env = {**standin.env(), "KAGGLE_CONFIG_DIR": str(tmp_path / "kaggle"), "KAGG_REGISTRY": str(tmp_path / "r.json")}
        full = {**os.environ, **env, "PYTHONPATH": str(ROOT)}

        standin.gpu_cap = 8
        lam = DriverInstance("lambda", artifact_tree(nb, ("lambda",), tmp_path / "app"), env, tmp_path / "lambda.log")
        try:
            rows.append(measure(lam, standin, "lambda"))
        finally:
            lam.stop()
        standin.gpu_cap += 8
        subprocess.run([sys.executable, "-m", "kagg", "deploy", str(nb), "--name", "bench-jobs"], env=full,
                       check=True, capture_output=True, cwd=tmp_path)
        try:
            import json

            url = json.loads((tmp_path / "r.json").read_text())["endpoints"]["bench-jobs"]["url"]
            rows.append(measure(HttpInstance(url), standin, "local"))
        finally:
            subprocess.run([sys.executable, "-m", "kagg", "delete", "bench-jobs"], env=full, capture_output=True,
                           cwd=tmp_path)
    print_table(f"50 concurrent POST /jobs, 20 keys, GPU cap 8, stand-in latency {args.latency_ms:g} ms",
                ["instance", "answers", "jobs", "duplicate ids", "most versions of a kernel", "burst ms",
                 "50x GET /health ms (reference)", "ratio"], rows)


if __name__ == "__main__":
    main()
