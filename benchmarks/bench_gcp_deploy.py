"""`kagg deploy --gcp` against the Google stand-in: calls made and wall time, and the import cost.

Figures:
- a first deploy: the API calls kagg makes, next to the sequence `gcloud functions deploy --gen2`
  makes (shared/notes/cloud-apis.md; gcloud's own source), both with the stand-in's 2 polls;
- an unchanged redeploy: API calls (goal: one read, no write) and median wall time, with the
  ratio to `kagg --version` (the CLI's start-up, the reference run);
- the import cost of the --gcp path (kagg's gcp modules and the Google SDKs they load).

Run: python benchmarks/bench_gcp_deploy.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT, median_seconds, print_table

sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
from aws_fixtures import HELLO, notebook_json  # noqa: E402
from gcp_fixtures import FAST_RETRY, service_account_key  # noqa: E402
from gcp_standin import GoogleStandIn  # noqa: E402

#: `gcloud functions deploy NAME --gen2 --runtime python312 --trigger-http --source .` (notes; gcloud's
#: source): the API requests, with the operation polled as often as the stand-in makes kagg poll
GCLOUD = ["functions.get", "functions.listRuntimes (runtime check)", "serviceusage: run/cloudbuild/"
          "artifactregistry enabled? (3 reads)", "functions.generateUploadUrl", "upload.put", "functions.create",
          "operations.get x POLLS", "functions.get (read serviceConfig.uri)"]


def gcloud_count(polls: int) -> int:
    return 1 + 1 + 3 + 1 + 1 + 1 + polls + 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    standin = GoogleStandIn(polls=2, locations_page=100).start()  # all regions on one page
    work = Path(tempfile.mkdtemp(prefix="kagg-bench-gcp-"))
    key = service_account_key(work / "key.json", f"{standin.url}/token")
    standin.trust(str(key))
    (work / "bench.ipynb").write_text(notebook_json(HELLO))
    env = dict(os.environ, PYTHONPATH=str(ROOT), KAGG_GCP_API_URL=standin.url, GOOGLE_APPLICATION_CREDENTIALS=str(key),
               KAGG_GCP_RETRY=FAST_RETRY, KAGG_REGISTRY=str(work / "endpoints.json"), NO_GCE_CHECK="true",
               GCE_METADATA_HOST="127.0.0.1:9", GCE_METADATA_IP="127.0.0.1:9", CLOUDSDK_CONFIG=str(work / "gcloud"))

    def kagg(*argv: str) -> None:
        subprocess.run([sys.executable, "-m", "kagg", *argv], capture_output=True, check=True, env=env, cwd=work)

    try:
        standin.clear()
        start = time.perf_counter()
        kagg("deploy", "bench.ipynb", "--gcp", "--name", "bench")
        first_s = time.perf_counter() - start
        first = standin.actions()
        standin.clear()
        redeploy = median_seconds(lambda: kagg("deploy", "bench.ipynb", "--gcp", "--name", "bench"), args.repeat)
        per_run = len(standin.actions()) / (args.repeat + 1)
        writes = len(standin.actions(mutating=True))
        tokens = sum(1 for s in standin.log if s.action == "token") / (args.repeat + 1)
        reference = median_seconds(lambda: kagg("--version"), args.repeat)
        kagg("delete", "bench")
    finally:
        standin.stop()

    polls = first.count("operations.get")
    print_table("First deploy: API requests (the stand-in finishes an operation after 2 polls)",
                ["who", "requests", "sequence"],
                [["kagg", len(first), ", ".join(first)],
                 ["gcloud functions deploy --gen2", gcloud_count(polls), ", ".join(GCLOUD).replace("POLLS", str(polls))]])
    print(f"  kagg's first deploy took {first_s:.2f} s wall time (stand-in on 127.0.0.1)")
    print_table(f"Unchanged redeploy, median of {args.repeat}", ["what", "value", "x reference"],
                [["API requests per run", f"{per_run:g}", ""], ["mutating requests (all runs)", writes, ""],
                 ["token requests per run", f"{tokens:g}", ""],
                 ["wall time, kagg deploy --gcp (unchanged)", f"{redeploy * 1000:.0f} ms", f"{redeploy / reference:.2f}"],
                 ["wall time, kagg --version (reference)", f"{reference * 1000:.0f} ms", "1.00"]])
    imports(args.repeat)


def imports(repeat: int) -> None:
    """What the --gcp path adds to kagg's own import time (the SDKs are imported only there)."""
    env = {"PYTHONPATH": str(ROOT), "PATH": os.environ.get("PATH", "")}
    cases = [("python -c pass", "pass"), ("import kagg.cli (reference)", "import kagg.cli"),
             ("+ kagg.providers.gcp.provider", "import kagg.cli, kagg.providers.gcp.provider"),
             ("+ functions_v2, run_v2, google.oauth2 (a --gcp deploy)",
              "import kagg.cli, kagg.providers.gcp.provider; from google.cloud import functions_v2, run_v2; "
              "import google.oauth2.service_account, google.auth.transport.requests")]
    times = {label: median_seconds(lambda c=code: subprocess.run([sys.executable, "-c", c], check=True, env=env),
                                   repeat) for label, code in cases}
    base = times["import kagg.cli (reference)"]
    print_table(f"Import cost, median of {repeat}", ["imports", "ms", "x kagg.cli"],
                [[label, f"{t * 1000:.0f}", f"{t / base:.2f}"] for label, t in times.items()])
    print(json.dumps({k: round(v * 1000) for k, v in times.items()}))


if __name__ == "__main__":
    main()
