"""Cold-start cost kagg adds on Lambda, and the size of the Lambda zip.

For each notebook the Lambda artifact is built as ``kagg deploy --aws`` builds it
on a machine whose Python is the runtime's (3.12): dependencies installed for
manylinux x86_64 / CPython 3.12, and the ``__pycache__`` .pyc of every module,
compiled by that interpreter. The zip is unzipped into an empty folder; then, in
fresh interpreter processes of that Python run with ``-B`` (the same as
``PYTHONDONTWRITEBYTECODE=1``: nothing is written, as on Lambda, whose code
folder is read-only), it times:

- ``import kagg_notebook``   — the notebook's own code (what any packaging would pay)
- ``import lambda_function`` — Lambda's entry: the shim, kagg's runtime, the manifest,
                               and the notebook through them

The difference is what kagg adds to a cold start. With a notebook whose own
start takes seconds (scikit-learn) that difference drowns in run-to-run noise,
so kagg's part is also measured directly, in one process: the notebook is
imported first, then the clock runs over ``import kagg_runtime`` and ``import
lambda_function`` with the runtime told to reuse the loaded notebook — the
marginal cost of everything kagg puts around the notebook. Medians of N runs,
interleaved; the interquartile range of the direct measure shows the noise.

Each case is measured twice: with the shipped .pyc, and, as the reference run,
the same tree with every ``__pycache__`` removed (what kagg shipped before:
every module compiled from source at each cold start). The headline is kagg's
marginal cost for the stdlib-only notebook and its ratio to the reference.

    python benchmarks/bench_lambda_coldstart.py [--runs 15] [--python /path/to/python3.12] [--stdlib-only]
"""

from __future__ import annotations

import argparse
import glob
import os
import pickle
import shutil
import statistics
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kagg.model import DeployOptions  # noqa: E402
from kagg.providers.aws import AWSProvider  # noqa: E402
from kagg.providers.aws import deps  # noqa: E402
from kagg.providers.aws.settings import MAX_UNZIPPED_BYTES  # noqa: E402

STDLIB_NOTEBOOK = ROOT / "examples" / "hello.ipynb"
SKLEARN_NOTEBOOK = ROOT / "examples" / "iris_classifier.ipynb"
RUNTIME = "python3.12"

MARGINAL = ("import sys, time; sys.path.insert(0, sys.argv[1]); import kagg_notebook; "
            "t = time.perf_counter(); import kagg_runtime; "
            "assert callable(kagg_runtime._import_notebook); "
            "kagg_runtime._import_notebook = lambda path: sys.modules['kagg_notebook']; "
            "import lambda_function; print(time.perf_counter() - t)")
#: the stdlib modules kagg's runtime and shim import (most of which Lambda's own bootstrap loads first)
STDLIB_USED = ("import sys; sys.path.insert(0, sys.argv[1]); before = set(sys.modules); import kagg_notebook; "
               "nb = set(sys.modules); import lambda_function; "
               "print(' '.join(sorted(m for m in set(sys.modules) - nb if not m.startswith(('kagg_', 'lambda_')))))")
TIMER = ("import sys, time; sys.path.insert(0, sys.argv[1]); t = time.perf_counter(); "
         "__import__(sys.argv[2]); print(time.perf_counter() - t)")
#: the build step, run by the runtime's Python so that its .pyc are the ones Lambda loads
BUILD = ("import pickle, sys; from kagg.packaging.builder import build_artifact, bytecode_matches; "
         "f, out, vendor, cache, budget, version = pickle.load(sys.stdin.buffer); "
         "assert bytecode_matches(version), 'not the runtime Python'; "
         "print(build_artifact(f, provider='aws', shims=('lambda',), out_dir=out, vendor_dir=vendor, "
         "bytecode=True, bytecode_cache=cache, bytecode_budget=budget).path)")


@dataclass
class Row:
    case: str
    mode: str
    zip_bytes: int
    unzipped_bytes: int
    notebook_ms: float
    entry_ms: float
    added_ms: float  # measured directly: kagg's code around an already-loaded notebook
    added_iqr: tuple[float, float]  # 25th and 75th percentiles of that measure
    own_ms: float  # the same with the stdlib modules kagg imports loaded first: kagg's own modules only


def find_python(wanted: str = "3.12") -> str:
    """An interpreter of the Lambda runtime's version: the vendored wheels and the .pyc are for it."""
    candidates = [shutil.which(f"python{wanted}")]
    candidates += sorted(glob.glob(os.path.expanduser(f"~/.pyenv/versions/{wanted}*/bin/python{wanted}")))
    candidates += [f"/usr/bin/python{wanted}", f"/usr/local/bin/python{wanted}"]
    for path in filter(None, candidates):
        try:
            out = subprocess.run([path, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                                 capture_output=True, text=True, timeout=30)
        except OSError:
            continue
        if out.returncode == 0 and out.stdout.strip() == wanted:
            return path
    raise SystemExit(f"no Python {wanted} found (Lambda's runtime); pass --python PATH")


def build(python: str, notebook: Path, work: Path) -> Path:
    """The Lambda zip of ``notebook``: dependencies as the provider vendors them, built by ``python``."""
    from kagg.notebook.convert import convert_source

    function = convert_source(str(notebook))
    vendor = None
    if any(r.strip() for r in function.requirements):
        vendor = deps.vendor(function.requirements, deps.Platform(RUNTIME, "x86_64")).path
    job = pickle.dumps((function, work / "artifacts", vendor, work / "pyc", MAX_UNZIPPED_BYTES,
                        deps.RUNTIMES[RUNTIME]))
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run([python, "-c", BUILD], input=job, capture_output=True, env=env, timeout=1800)
    if proc.returncode != 0:
        raise SystemExit(f"building {notebook.name} with {python} failed:\n{proc.stderr.decode()}")
    return Path(proc.stdout.decode().strip().splitlines()[-1])


def import_seconds(python: str, folder: Path, module: str, script: str = TIMER) -> float:
    env = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp"),
           "AWS_LAMBDA_FUNCTION_NAME": "bench", "LANG": "C.UTF-8"}
    # -I ignores PYTHON* variables, so -B stands for PYTHONDONTWRITEBYTECODE=1: no cache is written
    proc = subprocess.run([python, "-I", "-B", "-c", script, str(folder), module], capture_output=True,
                          text=True, env=env, cwd=folder, timeout=300)
    if proc.returncode != 0:
        raise SystemExit(f"import {module} failed in {folder}:\n{proc.stderr}")
    return float(proc.stdout.strip().splitlines()[-1])


def measure(case: str, zip_path: Path, python: str, runs: int, work: Path) -> list[Row]:
    folders = {}
    for mode, keep_pyc in (("shipped .pyc", True), ("no .pyc (reference)", False)):
        folder = work / f"{zip_path.stem[:12]}-{'pyc' if keep_pyc else 'nopyc'}"
        zipfile.ZipFile(zip_path).extractall(folder)
        caches = sorted(folder.rglob("__pycache__"))
        if keep_pyc:
            assert (folder / "__pycache__").is_dir(), "the artifact should carry kagg's .pyc"
        else:
            for cache in caches:
                shutil.rmtree(cache)
        folders[mode] = folder
    stdlib = subprocess.run([python, "-I", "-B", "-c", STDLIB_USED, str(folders["shipped .pyc"])],
                            capture_output=True, text=True, check=True, timeout=300).stdout.split()
    own = MARGINAL.replace("t = time.perf_counter()", f"import {', '.join(stdlib) or 'sys'}; t = time.perf_counter()")
    samples: dict[str, tuple[list, list, list, list]] = {mode: ([], [], [], []) for mode in folders}
    for _ in range(runs):  # interleaved, so drifts of the machine hit both modes alike
        for mode, folder in folders.items():
            notebook_s, entry_s, marginal_s, own_s = samples[mode]
            notebook_s.append(import_seconds(python, folder, "kagg_notebook"))
            entry_s.append(import_seconds(python, folder, "lambda_function"))
            marginal_s.append(import_seconds(python, folder, "lambda_function", script=MARGINAL))
            own_s.append(import_seconds(python, folder, "lambda_function", script=own))
    rows = []
    with zipfile.ZipFile(zip_path) as zf:
        unzipped_all = sum(i.file_size for i in zf.infolist())
        unzipped_src = sum(i.file_size for i in zf.infolist() if "__pycache__/" not in i.filename)
    for mode, (notebook_s, entry_s, marginal_s, own_s) in samples.items():
        diffs = [m * 1000 for m in marginal_s]
        quartiles = statistics.quantiles(diffs, n=4) if len(diffs) > 1 else [diffs[0]] * 3
        rows.append(Row(case, mode, zip_path.stat().st_size, unzipped_all if mode == "shipped .pyc" else unzipped_src,
                        statistics.median(notebook_s) * 1000, statistics.median(entry_s) * 1000,
                        statistics.median(diffs), (quartiles[0], quartiles[2]), statistics.median(own_s) * 1000))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--python", help="Python 3.12 interpreter (default: found on this machine)")
    parser.add_argument("--stdlib-only", action="store_true", help="skip the scikit-learn notebook")
    args = parser.parse_args()
    python = args.python or find_python(deps.RUNTIMES[RUNTIME])
    cases = [("stdlib only (hello)", STDLIB_NOTEBOOK)]
    if not args.stdlib_only:
        cases.append(("scikit-learn (iris)", SKLEARN_NOTEBOOK))
    assert AWSProvider.shims == ("lambda",)  # what BUILD packages
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="kagg-bench-") as tmp:
        for case, notebook in cases:
            rows += measure(case, build(python, notebook, Path(tmp)), python, args.runs, Path(tmp))
    print(f"Lambda cold start: import times in fresh `{python} -I -B` processes, median of {args.runs}\n")
    header = (f"{'notebook':<22} {'mode':<20} {'zip MB':>7} {'unzipped MB':>11} "
              f"{'notebook ms':>11} {'entry ms':>9} {'difference':>10} {'kagg adds ms':>12} {'(IQR)':>13} "
              f"{'own modules ms':>14}")
    print(header)
    print("-" * len(header))
    for r in rows:
        print(f"{r.case:<22} {r.mode:<20} {r.zip_bytes / 1e6:>7.2f} {r.unzipped_bytes / 1e6:>11.1f} "
              f"{r.notebook_ms:>11.1f} {r.entry_ms:>9.1f} {r.entry_ms - r.notebook_ms:>10.1f} "
              f"{r.added_ms:>12.1f} {f'({r.added_iqr[0]:.1f} .. {r.added_iqr[1]:.1f})':>13} {r.own_ms:>14.1f}")
    shipped, reference = rows[0], rows[1]
    print(f"\nkagg adds {shipped.added_ms:.1f} ms to a stdlib-only notebook's cold import with the shipped "
          f".pyc (no cache written, fresh process, median of {args.runs}); the reference run without them: "
          f"{reference.added_ms:.1f} ms; ratio {shipped.added_ms / reference.added_ms:.2f}")
    print(f"of which kagg's own modules (the stdlib modules they import loaded first, as Lambda's bootstrap "
          f"loads most of them): {shipped.own_ms:.1f} ms, reference {reference.own_ms:.1f} ms; "
          f"ratio {shipped.own_ms / reference.own_ms:.2f}")


if __name__ == "__main__":
    main()
