"""How fast the Kaggle stand-in (tests/kaggle_standin/) serves a kernel's output files, so that
the download benchmark of issue 11 (kagg vs `kaggle kernels output`) measures the clients, not
the stand-in.

One seeded kernel with 50 output files of 1-20 MB (fixed seed), `latency_s` added per request.
Three ways to fetch all of them, interleaved over the rounds:
  sequential   one file after the other, like `kaggle kernels output`
  parallel     8 threads, one requests.Session each (what a parallel client can reach)
  disk         reading the same files from disk (the reference: the ceiling on this machine)
Run: python benchmarks/bench_kaggle_standin_serving.py [--files 50] [--latency 0.05] [--rounds 2]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

from _common import ROOT, print_table

sys.path.insert(0, str(ROOT / "tests"))
from kaggle_standin import KaggleStandIn  # noqa: E402


def list_urls(standin: KaggleStandIn, slug: str) -> list[str]:
    urls, token = [], None
    while True:
        body = {"userName": standin.user, "kernelSlug": slug, "pageSize": 20, **({"pageToken": token} if token else {})}
        page = requests.post(f"{standin.url}/v1/kernels.KernelsApiService/ListKernelSessionOutput", json=body,
                             auth=(standin.user, standin.key), timeout=30).json()
        urls += [f["url"] for f in page.get("files", [])]
        token = page.get("nextPageToken")
        if not token:
            return urls


def fetch(session: requests.Session, url: str) -> int:
    total = 0
    with session.get(url, stream=True, timeout=60) as r:
        r.raise_for_status()
        for chunk in r.iter_content(1 << 20):
            total += len(chunk)
    return total


def sequential(urls: list[str]) -> int:
    with requests.Session() as s:
        return sum(fetch(s, u) for u in urls)


def parallel(urls: list[str], workers: int = 8) -> int:
    sessions = [requests.Session() for _ in range(workers)]
    with ThreadPoolExecutor(workers) as pool:
        sizes = list(pool.map(lambda iu: fetch(sessions[iu[0] % workers], iu[1]), enumerate(urls)))
    for s in sessions:
        s.close()
    return sum(sizes)


def disk(folder: Path) -> int:
    total = 0
    for path in sorted(folder.rglob("*.bin")):
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                total += len(chunk)
    return total


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=50)
    ap.add_argument("--latency", type=float, default=0.05)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    rng = random.Random(11)
    sizes = {f"outputs/part-{i:02d}.bin": rng.randint(1, 20) << 20 for i in range(args.files)}
    with tempfile.TemporaryDirectory() as tmp, KaggleStandIn(folder=Path(tmp) / "standin") as standin:
        kernel = standin.add_kernel(f"{standin.user}/bench-outputs", "{}", outputs=sizes)
        standin.latency_s = args.latency
        urls = list_urls(standin, "bench-outputs")
        total_mb = sum(sizes.values()) / 2**20
        runs: dict[str, list[float]] = {"sequential": [], "parallel": [], "disk": []}
        for _ in range(args.rounds):
            for name, fn in (("sequential", lambda: sequential(urls)), ("parallel", lambda: parallel(urls)),
                             ("disk", lambda: disk(kernel.latest.working))):
                start = time.perf_counter()
                assert fn() == sum(sizes.values())
                runs[name].append(time.perf_counter() - start)
        ref = statistics.median(runs["disk"])
        rows = [(name, f"{statistics.median(t):.2f}", f"{total_mb / statistics.median(t):.0f}",
                 f"{statistics.median(t) / ref:.1f}x") for name, t in runs.items()]
        print_table(f"{args.files} files, {total_mb:.0f} MB, {args.latency * 1000:.0f} ms per request",
                    ["how", "seconds (median)", "MB/s", "vs disk"], rows)


if __name__ == "__main__":
    main()
