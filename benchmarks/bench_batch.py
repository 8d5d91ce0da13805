"""Batch figures (issue 4): parallel efficiency, and kagg's own cost per item.

1. 200 items against the ``slow`` test provider (each deploy sleeps 0.2 s) at
   ``--parallel`` 1, 10 and 50, through :func:`kagg.batch.run_batch` (what the
   CLI calls): wall time against the ideal ``items x 0.2 s / N``. "run" is the
   execution phase alone; "total" adds reading the list and checking every
   item (the whole list is prepared before anything runs). At 10 and 50 the
   list is checked both ways in the same run, in this process alone ("1 proc",
   as before kagg checked in worker processes) and in one process per CPU (what
   ``kagg batch`` does when the CPUs are idle; on a busy machine it checks in
   fewer), alternating, median of 3 each (1 at ``--parallel 1``,
   which takes 40 s). Each run starts once the previous run's idle worker
   threads have exited (``kagg batch`` leaves them to the process's exit, after
   the summary is printed). "ref" is the same sleeps in a bare thread pool of N
   threads, measured in the same run: the best Python threads do on this
   machine right now, so "vs ref" (ref / total) says what is kagg's own cost
   even when the machine is shared and slow.
2. One ``kagg batch`` subprocess at ``--parallel 50``, to show interpreter start-up on top.
3. kagg's own work per item for the notebooks in ``examples/``: load + convert,
   build (the local provider's deterministic zip), registry write (into a
   registry already holding 200 entries).

Run: ``python benchmarks/bench_batch.py`` (about two minutes; ``--quick`` for 50 items).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from _common import ROOT, median_seconds  # noqa: E402  (benchmarks/ is the script's folder)

sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from batch_provider import SlowProvider, install_entry_point  # noqa: E402

from kagg.batch import BatchRequest, RunOptions, run_batch  # noqa: E402
from kagg.batch.report import Display  # noqa: E402
from kagg.batch.runner import join_finished_workers  # noqa: E402
from kagg.model import Endpoint  # noqa: E402
from kagg.providers import register  # noqa: E402
from kagg.registry import Registry  # noqa: E402

DELAY = 0.2


def handler_notebook(i: int) -> str:
    code = f"def handler(x: int = {i}):\n    return {{'x': x, 'item': {i}}}\n"
    return json.dumps({"nbformat": 4, "nbformat_minor": 5,
                       "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                   "language": "python"}},
                       "cells": [{"cell_type": "code", "metadata": {}, "execution_count": None,
                                  "outputs": [], "source": code}]})


def make_list(folder: Path, items: int) -> Path:
    """``items`` distinct notebooks (no two alike) and a CSV listing them for the slow provider."""
    lines = ["notebook,name,provider"]
    for i in range(items):
        (folder / f"nb{i:03d}.ipynb").write_text(handler_notebook(i))
        lines.append(f"nb{i:03d}.ipynb,item-{i:03d},slow")
    path = folder / "list.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


class _Clock(Display):
    """Notes when the execution phase starts (right after every item was checked)."""

    def __init__(self) -> None:
        self.run_started = 0.0

    def start(self, total: int, what: str) -> None:
        self.run_started = time.perf_counter()


def prefill(registry: Registry, count: int) -> None:
    """Give the registry ``count`` unrelated endpoints, as a team's long-lived one would have."""
    with registry.transaction() as endpoints:
        for i in range(count):
            endpoints[f"other-{i:03d}"] = Endpoint(
                f"other-{i:03d}", "local", f"http://127.0.0.1:{9000 + i}/", source={"path": "x.ipynb", "sha256": "0" * 64},
                artifact_sha256="1" * 64, provider_data={"pid": 1, "port": 9000 + i}).to_dict()


def efficiency(folder: Path, list_path: Path, items: int, parallel: int, run: int = 0, others: int = 0,
               check_processes: int | None = None) -> dict:
    registry = Registry(folder / f"endpoints-{parallel}-{run}-{others}-{check_processes}.json")
    prefill(registry, others)
    clock = _Clock()
    request = BatchRequest(str(list_path), run=RunOptions(parallel=parallel))
    if check_processes is not None:
        request.check_processes = check_processes
    join_finished_workers()  # the last run's idle threads (`kagg batch` leaves them to the process's exit)
    began = time.perf_counter()
    report = run_batch(request, registry, display_for=lambda jobs: clock)
    ended = time.perf_counter()
    assert report.counts["ok"] == items, report.counts
    assert len(registry.all()) == items + others
    ideal = items * DELAY / parallel
    run, total = ended - clock.run_started, ended - began
    return {"parallel": parallel, "ideal": ideal, "run": run, "total": total, "check": total - run,
            "run_eff": ideal / run, "total_eff": ideal / total}


def reference(items: int, parallel: int) -> float:
    """The same sleeps in a bare thread pool of ``parallel`` threads: the best case, measured now."""
    with ThreadPoolExecutor(max_workers=parallel) as pool:
        began = time.perf_counter()
        list(pool.map(lambda _: time.sleep(DELAY), range(items)))
        return time.perf_counter() - began


def compare(folder: Path, list_path: Path, items: int, parallel: int, modes: dict[str, int | None],
            repeat: int) -> dict[str, dict]:
    """Each mode ``repeat`` times, the modes alternating (so a busy moment hurts them alike),
    with a reference before each round; the median run of each, and the median reference."""
    runs: dict[str, list[dict]] = {mode: [] for mode in modes}
    refs = []
    for i in range(repeat):
        refs.append(reference(items, parallel))
        for mode, processes in modes.items():
            runs[mode].append(efficiency(folder, list_path, items, parallel, i, check_processes=processes))
    ref = statistics.median(refs)
    out = {}
    for mode, rs in runs.items():
        r = sorted(rs, key=lambda r: r["total"])[len(rs) // 2]
        out[mode] = dict(r, ref=ref, vs_ref=ref / r["total"])
    return out


def cli_wall(folder: Path, list_path: Path, parallel: int) -> float:
    site = install_entry_point(folder / "site")
    env = dict(os.environ, KAGG_REGISTRY=str(folder / "endpoints-cli.json"),
               PYTHONPATH=os.pathsep.join([str(site), str(ROOT / "tests"), str(ROOT)]))
    began = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "kagg", "batch", str(list_path), "--parallel", str(parallel)],
                          env=env, capture_output=True, text=True)
    wall = time.perf_counter() - began
    if proc.returncode != 0:
        raise SystemExit(f"kagg batch failed: {proc.stderr[-2000:]}")
    return wall


def overhead(folder: Path, repeat: int = 7) -> list[dict]:
    """Median seconds of each of kagg's own steps, per example notebook."""
    from kagg.notebook.convert import convert
    from kagg.providers import get_provider
    from kagg.notebook.loading import load_notebook

    registry = Registry(folder / "endpoints-overhead.json")
    with registry.transaction() as endpoints:  # a registry that already holds 200 entries
        for i in range(200):
            endpoints[f"filler-{i:03d}"] = Endpoint(f"filler-{i:03d}", "local", f"http://127.0.0.1:{9000 + i}/").to_dict()
    provider = get_provider("local", state_dir=folder / ".kagg")
    rows = []
    from kagg.errors import BadInput

    for nb in sorted((ROOT / "examples").glob("*.ipynb")):
        try:
            function = convert(load_notebook(str(nb)))
        except BadInput:  # a training notebook (kagg run), not an endpoint
            continue
        conv = median_seconds(lambda: convert(load_notebook(str(nb))), repeat)
        build = median_seconds(lambda: provider.build(function, None), repeat)
        endpoint = Endpoint(function.name, "local", "http://127.0.0.1:1/")
        write = median_seconds(lambda: registry.put(endpoint), repeat)
        rows.append({"notebook": nb.name, "convert": conv, "build": build, "registry": write,
                     "total": conv + build + write})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=200)
    parser.add_argument("--quick", action="store_true", help="50 items, parallel 10 and 50 only")
    args = parser.parse_args()
    items = 50 if args.quick else args.items
    levels = (10, 50) if args.quick else (1, 10, 50)
    register("slow", SlowProvider)
    os.environ.pop("KAGG_TEST_DELAY", None)
    with tempfile.TemporaryDirectory(prefix="kagg-bench-batch-") as tmp:
        folder = Path(tmp)
        list_path = make_list(folder, items)
        warm = folder / "warm"
        warm.mkdir()
        efficiency(warm, make_list(warm, 2), 2, 2)  # one-time imports (nbformat, conversion) out of the figures
        from kagg.batch.operations import get_operation
        from kagg.batch.spec import load

        try:
            from kagg.batch.checking import check_processes
        except ImportError:  # a kagg from before kagg/batch/checking.py (for a before/after figure)
            try:
                from kagg.batch.session import check_processes
            except ImportError:  # from before checking in processes
                check_processes = None
        if check_processes is None:
            procs, auto = 1, 1
        else:
            procs = check_processes(load(str(list_path)).items, get_operation("deploy"), load=0.0)
            auto = check_processes(load(str(list_path)).items, get_operation("deploy"))
        print(f"Parallel efficiency: {items} items, test provider 'slow' ({DELAY} s per deploy); "
              f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}: kagg batch would check in "
              f"{auto} process{'es' if auto > 1 else ''} now (one per idle CPU)")
        print(f"{'parallel':>8}  {'checking':>8}  {'ideal s':>7}  {'ref s':>6}  {'run s':>6}  {'run eff':>7}  "
              f"{'total s':>7}  {'total eff':>9}  {'vs ref':>6}  {'check ms/item':>13}")
        totals = {}
        for n in levels:
            modes = {"auto": None} if n == 1 or procs == 1 else {"1 proc": 1, f"{procs} proc": procs}
            for mode, r in compare(folder, list_path, items, n, modes, 1 if n == 1 else 3).items():
                totals[(n, mode)] = r
                print(f"{n:>8}  {f'{auto} proc' if mode == 'auto' else mode:>8}  {r['ideal']:>7.2f}  {r['ref']:>6.2f}  "
                      f"{r['run']:>6.2f}  {r['run_eff']:>6.1%}  {r['total']:>7.2f}  {r['total_eff']:>8.1%}  "
                      f"{r['vs_ref']:>5.1%}  {r['check'] * 1e3 / items:>13.2f}")
        top = max(levels)
        if procs > 1:
            one, many = totals[(top, "1 proc")], totals[(top, f"{procs} proc")]
            print(f"--parallel {top}: total efficiency {one['total_eff']:.1%} checking in 1 process, "
                  f"{many['total_eff']:.1%} in {procs} (x{one['total'] / many['total']:.2f} faster); "
                  f"vs the reference {one['vs_ref']:.1%} and {many['vs_ref']:.1%}")
        busy = efficiency(folder, list_path, items, 50, others=200)
        print(f"\nwith 200 other endpoints already in the registry, --parallel 50: run {busy['run']:.2f} s "
              f"({busy['run_eff']:.1%}), checking {busy['check'] * 1e3 / items:.2f} ms/item")
        wall = cli_wall(folder, list_path, 50)
        print(f"`kagg batch list.csv --parallel 50` as a subprocess: {wall:.2f} s wall "
              f"(ideal {items * DELAY / 50:.2f} s; includes interpreter start-up and imports)")
        rows = overhead(folder)
        if rows:
            print("\nkagg's own work per item (median ms), examples/:")
            print(f"{'notebook':<24}  {'convert':>8}  {'build':>8}  {'registry':>8}  {'total':>8}")
            for row in rows:
                print(f"{row['notebook']:<24}  {row['convert'] * 1e3:>8.1f}  {row['build'] * 1e3:>8.1f}  "
                      f"{row['registry'] * 1e3:>8.1f}  {row['total'] * 1e3:>8.1f}")
        else:
            print("\n(no notebooks in examples/: per-item overhead not measured)")


if __name__ == "__main__":
    main()
