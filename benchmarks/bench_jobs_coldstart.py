"""Cold start of a function with and without ``train`` cells (``/jobs``), and the first ``/jobs`` call.

The same handler notebook is built twice as a Lambda artifact (unzipped tree, ``kagg convert``'s
files): once plain (the reference run) and once with a ``parameters`` and a ``train`` cell, which
adds kagg_jobs.py, its Kaggle client and the kernel template (``kagg_jobs.json``). In fresh
interpreter processes, interleaved, it times:

- ``import lambda_function`` + the first ``POST /``   — the cold start a caller of the function sees
- the first ``GET /jobs/ID`` on that warm instance    — what the first jobs request pays once:
  importing kagg_jobs and kagglesdk (a local socket answers it, so Kaggle's own latency is not in it)

The figure to watch is the ratio of the train notebook's cold start to the reference: the jobs
machinery is loaded lazily, so it should stay ~1.0.

    python benchmarks/bench_jobs_coldstart.py [--runs 15]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from benchmarks._common import print_table  # noqa: E402

SETUP = "import json"
PARAMS = "lr = 0.1"
TRAIN = "print('training', lr)"
HANDLER = "def handler(x: float = 1.0):\n    return {'y': x * 2}"

PROBE = r"""
import json, sys, time
t0 = time.perf_counter()
sys.path.insert(0, sys.argv[1])
import lambda_function
ev = lambda m, p, b=None: {"version": "2.0", "rawPath": p, "rawQueryString": "", "headers": {},
                           "requestContext": {"http": {"method": m, "path": p}}, "body": b}
first = lambda_function.handler(ev("POST", "/", json.dumps({"x": 2})))
t1 = time.perf_counter()
out = {"cold_s": t1 - t0, "status": first["statusCode"]}
if sys.argv[2] == "jobs":
    loaded = [m for m in sys.modules if m.startswith(("kagg_jobs", "kagglesdk"))]
    assert not loaded, loaded
    t2 = time.perf_counter()
    job = lambda_function.handler(ev("GET", "/jobs/" + sys.argv[3]))
    out["first_jobs_s"] = time.perf_counter() - t2
    out["jobs_status"] = job["statusCode"]
print(json.dumps(out))
"""


class _Kaggle(BaseHTTPRequestHandler):
    """Answers GetKernelSessionStatus as Kaggle does (RUNNING), nothing else."""

    def do_POST(self):  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = json.dumps({"status": "RUNNING"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def build(folder: Path, train: bool) -> Path:
    from notebooks import write

    from kagg.deploy import convert_checked
    from kagg.jobs_template import attach_jobs
    from kagg.packaging.builder import write_tree

    cells = [SETUP, (PARAMS, ["parameters"]), (TRAIN, ["train"]), HANDLER] if train else [SETUP, HANDLER]
    nb = write(folder / ("train.ipynb" if train else "plain.ipynb"), *cells)
    function = convert_checked(str(nb))
    if train:
        assert attach_jobs(function, str(nb)).enabled
    tree = folder / ("app-train" if train else "app-plain")
    write_tree(function, ("lambda",), tree)
    return tree


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Kaggle)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = {"KAGG_KAGGLE_API_URL": f"http://127.0.0.1:{server.server_address[1]}", "KAGGLE_USERNAME": "bench",
           "KAGGLE_KEY": "0" * 32, "KAGG_ACCESS_LOG": "0", "PATH": "/usr/bin:/bin"}
    with tempfile.TemporaryDirectory() as tmp:
        plain, train = build(Path(tmp), False), build(Path(tmp), True)
        prefix = json.loads((train / "kagg_jobs.json").read_text())["slug_prefix"]
        sys.path.insert(0, str(ROOT / "kagg" / "packaging" / "runtime"))
        import kagg_jobs

        job = kagg_jobs.encode_id("bench", prefix + "0" * 16, 1)
        times: dict[str, list[float]] = {"plain": [], "train": [], "jobs": []}
        for _ in range(args.runs):
            for kind, tree in (("plain", plain), ("train", train)):
                out = subprocess.run([sys.executable, "-B", "-c", PROBE, str(tree), "jobs" if kind == "train" else "-",
                                      job], capture_output=True, text=True, check=True, env=env, cwd=tree)
                data = json.loads(out.stdout)
                assert data["status"] == 200, data
                times[kind].append(data["cold_s"])
                if kind == "train":
                    assert data["jobs_status"] == 200, data
                    times["jobs"].append(data["first_jobs_s"])
        server.shutdown()
    med = {k: statistics.median(v) * 1000 for k, v in times.items()}
    print_table(f"Lambda artifact, cold start to the first POST / answered (median of {args.runs}, ms)",
                ["artifact", "cold start", "ratio to reference"],
                [["no train cells (reference)", f"{med['plain']:.1f}", "1.00"],
                 ["with train cells (/jobs)", f"{med['train']:.1f}", f"{med['train'] / med['plain']:.2f}"]])
    print_table("First /jobs request on a warm instance (imports kagg_jobs + kagglesdk; local socket)",
                ["request", "ms", "ratio to the reference cold start"],
                [["GET /jobs/ID (first)", f"{med['jobs']:.1f}", f"{med['jobs'] / med['plain']:.2f}"]])


if __name__ == "__main__":
    main()
