"""Following a Kaggle run (issue 11): calls to Kaggle per kernel-hour, and time to the push.

1. Calls per kernel-hour while following. Time is scaled 100x so an hour takes 36 s: a kernel on
   the Kaggle stand-in prints a line every (scaled) minute for an (scaled) hour, and kagg follows
   it with its poll times scaled too (``KAGG_KAGGLE_POLL=0.1,0.6``: 10 s -> 60 s becomes
   0.1 s -> 0.6 s). Counted at the stand-in: status calls and log-stream connections. The
   reference, in the same run, is the loop people write by hand (status every 10 s, scaled
   0.1 s, plus the log fetched each time, as ``kaggle kernels logs`` without a stream does).
2. Time from ``kagg run examples/digits_training.ipynb --kaggle --no-wait`` starting to the
   SaveKernel request reaching the stand-in (check, build, quota, push), median of 3; the
   reference is ``kaggle kernels push`` of the very kernel folder kagg built (no check, no build).

Run: ``python benchmarks/bench_kaggle_follow.py`` (about two minutes).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT, print_table  # noqa: E402

sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

SCALE = 100.0
HOUR = 3600 / SCALE
KERNEL = f"import time\nfor minute in range(60):\n    print('minute', minute, flush=True)\n    time.sleep({60 / SCALE})\n"
KAGGLE_CLI = ("import sys\nfrom kagglesdk import kaggle_env\n"
              "kaggle_env._env_to_endpoint[kaggle_env.KaggleEnv.PROD] = sys.argv.pop(1)\n"
              "from kaggle.cli import main\nsys.argv[0] = 'kaggle'\nmain()\n")
WATCHED = ("GetKernelSessionStatus", "logs-stream", "ListKernelSessionOutput")


def calls_between(standin, first: int) -> int:
    with standin.lock:
        return sum(1 for c in standin.calls[first:] if c.service_method in WATCHED)


def follow_figures(standin, kaggle) -> tuple[float, float]:
    from notebooks import notebook

    from kagg.kaggle.follow import follow
    from kagg.kaggle.push import push_once
    from kagg.kaggle.settings import PollTimes

    def pushed(slug: str):
        meta = {"id": f"{standin.user}/{slug}", "title": slug, "language": "python", "kernel_type": "notebook"}
        return push_once(kaggle, meta, json.dumps(notebook(KERNEL)))

    job = pushed("bench-follow-kagg")
    first = len(standin.calls)
    start = time.monotonic()
    result = follow(kaggle, job, poll=PollTimes(10 / SCALE, 60 / SCALE, 1.5))
    hours = (time.monotonic() - start) / HOUR
    assert result.status == "COMPLETE" and any(line.startswith("minute 59") for line in result.log_lines)
    kagg_rate = calls_between(standin, first) / hours

    job = pushed("bench-follow-loop")
    first = len(standin.calls)
    start = time.monotonic()
    while True:  # the hand-written loop: status and log every 10 s
        status, _ = kaggle.status(job)
        kaggle.log(job)
        if status in ("COMPLETE", "ERROR"):
            break
        time.sleep(10 / SCALE)
    hours = (time.monotonic() - start) / HOUR
    return kagg_rate, calls_between(standin, first) / hours


def time_to_push(standin, work: Path, command: list[str]) -> float:
    first = len(standin.calls_to("SaveKernel"))
    start = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=work,
                            env=dict(os.environ, PYTHONPATH=str(ROOT)))
    while len(standin.calls_to("SaveKernel")) == first:
        if proc.poll() is not None and len(standin.calls_to("SaveKernel")) == first:
            raise SystemExit(f"{command[:4]} ended ({proc.returncode}) without pushing")
        time.sleep(0.001)
    took = time.perf_counter() - start
    proc.wait(timeout=120)
    return took


def main() -> None:
    from kaggle_standin import KaggleStandIn

    work = Path(tempfile.mkdtemp(prefix="bench-kaggle-follow-"))
    (work / "kaggle-config").mkdir()
    with KaggleStandIn(folder=work / "standin") as standin:
        os.environ.update(standin.env())
        os.environ["KAGGLE_CONFIG_DIR"] = str(work / "kaggle-config")
        from kagg.kaggle.client import Kaggle
        from kagg.kaggle.credentials import load_credentials

        kaggle = Kaggle(load_credentials())
        kagg_rate, loop_rate = follow_figures(standin, kaggle)
        print_table("Calls to Kaggle per kernel-hour while following (time scaled 100x)",
                    ["follower", "calls per hour", "vs kagg"],
                    [["kagg (status 10 s -> 60 s, one log stream)", f"{kagg_rate:.0f}", "1.0x"],
                     ["loop: status + log every 10 s", f"{loop_rate:.0f}", f"{loop_rate / kagg_rate:.1f}x more"]])

        example = ROOT / "examples" / "digits_training.ipynb"
        kagg_times, cli_times = [], []
        for turn in range(3):
            out = work / f"run-{turn}"
            kagg_times.append(time_to_push(standin, work, [sys.executable, "-m", "kagg", "run", str(example),
                                                           "--kaggle", "--device", "cpu", "--no-wait",
                                                           "-o", str(out)]))
            folder = out / "kernel"
            meta = json.loads((folder / "kernel-metadata.json").read_text())
            meta["id"] = meta["id"] + "-cli"
            meta["title"] = meta["id"].split("/")[1]
            (folder / "kernel-metadata.json").write_text(json.dumps(meta))
            cli_times.append(time_to_push(standin, work, [sys.executable, "-c", KAGGLE_CLI, standin.url, "kernels",
                                                          "push", "-p", str(folder)]))
        kagg_s, cli_s = statistics.median(kagg_times), statistics.median(cli_times)
        print_table("Time from the command starting to the push reaching Kaggle (median of 3)",
                    ["command", "seconds", "vs kaggle"],
                    [["kagg run examples/digits_training.ipynb --kaggle (check+build+push)", f"{kagg_s:.2f}",
                      f"{kagg_s / cli_s:.2f}x"],
                     ["kaggle kernels push (the folder kagg built)", f"{cli_s:.2f}", "1.0x"]])


if __name__ == "__main__":
    main()
