"""Requests per second through a kagg local endpoint vs a bare functions-framework function.

Both serve the same trivial work (read JSON `x`, answer `{"x": x}`) with the
same functions-framework (gunicorn) server and the same interpreter, so the
difference is kagg's runtime: parameter binding, JSON encoding, timing
headers. The client is `hey` (Debian package `hey`), same flags for both,
runs interleaved A/B to share the machine's noise. Target: overhead <= 10 %.
Run: python benchmarks/bench_local_rps.py [--seconds 8] [--rounds 3] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from _common import ROOT, print_table

BARE = '''
import json
import functions_framework

@functions_framework.http
def bare(request):
    body = request.get_json(silent=True) or {}
    return (json.dumps({"x": int(body.get("x", 1))}), 200, {"Content-Type": "application/json"})
'''

NOTEBOOK = {
    "cells": [{"cell_type": "code", "execution_count": None, "id": "c1", "metadata": {}, "outputs": [],
               "source": "def handler(x: int = 1):\n    return {\"x\": x}"}],
    "metadata": {"kernelspec": {"name": "python3", "language": "python", "display_name": "Python 3"}},
    "nbformat": 4, "nbformat_minor": 5,
}


def wait_up(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, data=b'{"x": 2}', timeout=1).read()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


def hey(url: str, seconds: int, concurrency: int) -> float:
    out = subprocess.run(["hey", "-z", f"{seconds}s", "-c", str(concurrency), "-m", "POST", "-T",
                          "application/json", "-d", '{"x": 2}', url], capture_output=True, text=True, check=True).stdout
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if not match or "[200]" not in out:
        raise RuntimeError(f"unexpected hey output:\n{out}")
    return float(match.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    if not shutil.which("hey"):
        sys.exit("hey is not installed: apt-get install hey")
    sys.path.insert(0, str(ROOT))
    from kagg.deploy import delete, deploy
    from kagg.model import DeployOptions
    from kagg.providers.local.process import pick_free_port
    from kagg.registry import Registry

    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        (tmp_path / "bench.ipynb").write_text(json.dumps(NOTEBOOK))
        (tmp_path / "bare").mkdir()
        (tmp_path / "bare" / "main.py").write_text(BARE)
        registry = Registry(tmp_path / "endpoints.json")
        result = deploy(str(tmp_path / "bench.ipynb"), "local", DeployOptions(name="bench"), registry)
        kagg_url = result.endpoint.url
        port = pick_free_port()
        bare = subprocess.Popen([sys.executable, "-m", "functions_framework", "--target", "bare", "--source",
                                 str(tmp_path / "bare" / "main.py"), "--host", "127.0.0.1", "--port", str(port)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp_path / "bare",
                                env=dict(os.environ, PYTHONPATH=str(ROOT)))
        bare_url = f"http://127.0.0.1:{port}/"
        try:
            wait_up(kagg_url)
            wait_up(bare_url)
            hey(kagg_url, 2, args.concurrency), hey(bare_url, 2, args.concurrency)  # warm-up
            kagg_rps, bare_rps = [], []
            for _ in range(args.rounds):
                bare_rps.append(hey(bare_url, args.seconds, args.concurrency))
                kagg_rps.append(hey(kagg_url, args.seconds, args.concurrency))
        finally:
            bare.terminate()
            bare.wait()
            delete("bench", registry)
    k, b = statistics.median(kagg_rps), statistics.median(bare_rps)
    rows = [["bare functions-framework (reference)", f"{b:.0f}", "1.00", ""],
            ["kagg local endpoint", f"{k:.0f}", f"{k / b:.2f}", f"{(1 - k / b) * 100:+.1f} %"]]
    print_table(f"POST {{\"x\": 2}}, hey -c {args.concurrency}, {args.rounds} rounds x {args.seconds}s, median",
                ["server", "req/s", "ratio", "overhead"], rows)


if __name__ == "__main__":
    main()
