"""Downloading a kernel's outputs (issue 11): kagg vs ``kaggle kernels output``, same kernel, same run.

A Kaggle stand-in (tests/kaggle_standin) with 50 ms of added latency per request runs one kernel
that writes 50 output files of 1-20 MB (sizes fixed by a seed; about 500 MB in all). Then, in
turns (median of ``--repeat``):

- kagg: :func:`kagg.kaggle.outputs.fetch_outputs` — every page of the listing, the manifest
  first, the rest in 8 parallel streams, each file's size and sha256 checked against the manifest;
- kaggle: the kaggle CLI's ``kaggle kernels output OWNER/SLUG/1 -p DIR`` (kaggle 2.2.5, the one
  installed in this environment; a separate venv would install the same wheel), pointed at the
  stand-in by replacing kagglesdk's PROD endpoint, as the notes say — one file after another.

Both start with an empty folder. Prints seconds, MB/s and the ratio kaggle / kagg.
Run: ``python benchmarks/bench_kaggle_download.py`` (``--quick``: 10 files of 1-4 MB).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT, print_table  # noqa: E402

sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

WRITER = """\
import os
out = os.path.join(os.environ.get("KAGG_KAGGLE_ROOT", "/kaggle"), "working", "outputs")
os.makedirs(out, exist_ok=True)
block = bytes(range(256)) * 4096
for i, size in enumerate({sizes}):
    with open(os.path.join(out, f"shard-{{i:02d}}.bin"), "wb") as f:
        left = size
        while left:
            f.write(block[:min(left, len(block))])
            left -= min(left, len(block))
print("wrote", len({sizes}), "files")
"""
KAGGLE_CLI = ("import sys\nfrom kagglesdk import kaggle_env\n"
              "kaggle_env._env_to_endpoint[kaggle_env.KaggleEnv.PROD] = sys.argv.pop(1)\n"
              "from kaggle.cli import main\nsys.argv[0] = 'kaggle'\nmain()\n")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    count, most_mb = (10, 4) if args.quick else (50, 20)
    rng = random.Random(11)
    sizes = [rng.randint(1, most_mb) * 1024 * 1024 for _ in range(count)]

    from kaggle_standin import KaggleStandIn
    from notebooks import notebook

    work = Path(tempfile.mkdtemp(prefix="bench-kaggle-dl-"))
    config = work / "kaggle-config"
    config.mkdir()
    with KaggleStandIn(folder=work / "standin") as standin:
        os.environ.update(standin.env())
        os.environ["KAGGLE_CONFIG_DIR"] = str(config)
        from kagg.kaggle.client import Kaggle
        from kagg.kaggle.credentials import load_credentials
        from kagg.kaggle.outputs import fetch_outputs
        from kagg.kaggle.push import push_once

        kaggle = Kaggle(load_credentials())
        meta = {"id": f"{standin.user}/bench-outputs", "title": "bench-outputs", "language": "python",
                "kernel_type": "notebook"}
        job = push_once(kaggle, meta, json.dumps(notebook(WRITER.format(sizes=sizes))))
        version = standin.wait(job.slug, timeout=600)
        assert version.status == "COMPLETE", version.status
        total_mb = sum(sizes) / 1e6
        standin.latency_s = 0.05

        def with_kagg(dest: Path) -> None:
            fetched = fetch_outputs(kaggle, job, dest)
            assert len([f for f in fetched.files if f["name"].startswith("outputs/")]) == count

        def with_kaggle(dest: Path) -> None:
            env = dict(os.environ, PYTHONPATH="")
            subprocess.run([sys.executable, "-c", KAGGLE_CLI, standin.url, "kernels", "output", f"{job.kernel}/1",
                            "-p", str(dest), "-q"], check=True, env=env, capture_output=True)
            assert len(list((dest / "outputs").iterdir())) == count

        times: dict[str, list[float]] = {"kagg": [], "kaggle": []}
        for turn in range(args.repeat):
            for name, fn in (("kagg", with_kagg), ("kaggle", with_kaggle)):
                dest = work / f"{name}-{turn}"
                start = time.perf_counter()
                fn(dest)
                times[name].append(time.perf_counter() - start)
                shutil.rmtree(dest)
    shutil.rmtree(work, ignore_errors=True)
    kagg_s, kaggle_s = statistics.median(times["kagg"]), statistics.median(times["kaggle"])
    print_table(f"{count} output files, {total_mb:.0f} MB in all, 50 ms added per request "
                f"(median of {args.repeat})", ["tool", "seconds", "MB/s", "vs kagg"],
                [["kagg (8 streams, verified)", f"{kagg_s:.2f}", f"{total_mb / kagg_s:.0f}", "1.0x"],
                 ["kaggle kernels output", f"{kaggle_s:.2f}", f"{total_mb / kaggle_s:.0f}",
                  f"{kaggle_s / kagg_s:.1f}x slower"]])


if __name__ == "__main__":
    main()
