"""Calls and wall time of ``kagg deploy --azure``: a first deploy, and an unchanged redeploy.

Runs the real CLI (``python -m kagg``) against the Azure stand-in of the test suite
(tests/azure_standin.py, over local sockets), which logs every request. For the
first deploy it counts ARM reads, ARM writes, deployment-host calls and polls, and
compares the calls with what the az CLI makes for the same result
(``az group create`` + ``az storage account create`` + ``az storage container create``
+ ``az functionapp create --flexconsumption-location`` + ``az functionapp deployment
source config-zip``), as listed in shared/notes/cloud-apis.md. For the unchanged
redeploy it reports the calls (goal: reads only) and the median wall time of N runs,
and the ratio to the first deploy (the reference run of this script). Wall times
include the CLI's start-up and the stand-in's fixed waits (1 s polls), not Azure's.

    python benchmarks/bench_azure_deploy.py [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "tests")]

from _common import ROOT, print_table, run  # noqa: E402
from azure_fixtures import HELLO, notebook_json  # noqa: E402
from azure_standin import TOKEN, AzureStandIn  # noqa: E402

#: the az CLI's calls for the same deploy (cloud-apis.md): writes, and the POST reads it needs
AZ_CLI_WRITES = ["PUT resourcegroup", "PUT storageAccount", "PUT container", "PUT serverfarm", "PUT site",
                 "POST publish"]
AZ_CLI_POST_READS = ["POST storage listKeys", "POST host listkeys"]


def kinds(standin: AzureStandIn) -> Counter:
    out: Counter = Counter()
    for seen in standin.log:
        if seen.op == "operation.get" or seen.op == "scm.latest":
            out["polls"] += 1
        elif seen.host == "scm":
            out["deploy host"] += 1
        else:
            out["ARM writes" if seen.mutating else "ARM reads"] += 1
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-azure-"))
    (work / "greet.ipynb").write_text(notebook_json(HELLO))
    standin = AzureStandIn().start()
    env = {"KAGG_AZURE_ARM_URL": standin.arm, "KAGG_AZURE_SCM_URL": standin.scm, "KAGG_AZURE_SITE_URL": standin.site,
           "KAGG_AZURE_TEST_TOKEN": TOKEN, "KAGG_REGISTRY": str(work / "endpoints.json"),
           "AZURE_CONFIG_DIR": str(work / "az")}
    deploy = [sys.executable, "-m", "kagg", "deploy", str(work / "greet.ipynb"), "--azure", "--name", "bench-app"]
    try:
        start = time.perf_counter()
        run([*deploy, "--location", "eastus"], env=env, cwd=work)
        first_time = time.perf_counter() - start
        first = kinds(standin)
        first_writes = [s.op for s in standin.log if s.mutating]
        times, redeploy = [], Counter()
        for _ in range(args.runs):
            standin.clear()
            start = time.perf_counter()
            out = run(deploy, env=env, cwd=work)
            times.append(time.perf_counter() - start)
            assert "unchanged, skipped" in out.stdout, out.stdout
            redeploy = kinds(standin)
            assert not any(s.mutating for s in standin.log), standin.log
        median = statistics.median(times)
    finally:
        standin.stop()
    print_table("first deploy (the reference run)", ["what", "kagg", "az CLI"], [
        ["ARM writes + publish", f"{first['ARM writes']} + {first['deploy host']}", f"{len(AZ_CLI_WRITES) - 1} + 1"],
        ["ARM reads (GET, and POST list*/check*)", first["ARM reads"], f">= {len(AZ_CLI_POST_READS)}"],
        ["polls (async operations, deployment status)", first["polls"], "(the same kind)"],
        ["wall time", f"{first_time:.2f} s", "-"]])
    print(f"  kagg's writes: {', '.join(first_writes)}")
    print("  (the one write more than the az CLI: PUT appsettings recording the artifact's sha256, which makes the "
          "next deploy a read-only skip)")
    print_table(f"unchanged redeploy (median of {args.runs})", ["what", "value", "ratio to first deploy"], [
        ["ARM writes + deploy-host calls", redeploy["ARM writes"] + redeploy["deploy host"], "0"],
        ["ARM reads", redeploy["ARM reads"], f"{redeploy['ARM reads'] / max(1, first['ARM reads']):.2f}"],
        ["wall time", f"{median:.2f} s", f"{median / first_time:.2f}"]])
    print(json.dumps({"first": dict(first), "first_seconds": round(first_time, 3), "redeploy": dict(redeploy),
                      "redeploy_median_seconds": round(median, 3), "runs": args.runs}))


if __name__ == "__main__":
    os.chdir(ROOT)
    main()
