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

The difference is what kagg adds to a cold start. It is measured twice: in a
bare interpreter, and with every module the entry imports beyond kagg's own
(the standard library modules kagg uses, the notebook's imports) loaded before
the clock starts, which leaves kagg's own modules (most of those stdlib modules
are loaded on Lambda by its bootstrap before the handler is imported). Medians
of N runs, interleaved.

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

from kagg.providers.aws import AWSProvider  # noqa: E402
from kagg.providers.aws import deps  # noqa: E402
from kagg.providers.aws.settings import MAX_UNZIPPED_BYTES  # noqa: E402

STDLIB_NOTEBOOK = ROOT / "examples" / "hello.ipynb"
SKLEARN_NOTEBOOK = ROOT / "examples" / "iris_classifier.ipynb"
RUNTIME = "python3.12"

#: every module ``import lambda_function`` loads that is not kagg's (stdlib, the notebook's imports)
NOT_KAGG = ("import sys; sys.path.insert(0, sys.argv[1]); before = set(sys.modules); import lambda_function; "
            "print(' '.join(sorted(m for m in set(sys.modules) - before "
            "if not m.startswith(('kagg_', 'lambda_function')))))")
TIMER = ("import sys, time; sys.path.insert(0, sys.argv[1]); {preload}t = time.perf_counter(); "
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
    notebook_ms: float  # import kagg_notebook
    entry_ms: float  # import lambda_function (the notebook through kagg)
    entry_iqr: tuple[float, float]  # 25th and 75th percentiles of entry_ms
    own_ms: float  # entry minus notebook with everything but kagg's modules loaded first

    @property
    def added_ms(self) -> float:
        return self.entry_ms - self.notebook_ms


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


def import_seconds(python: str, folder: Path, module: str, preload: str = "") -> float:
    env = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp"),
           "AWS_LAMBDA_FUNCTION_NAME": "bench", "LANG": "C.UTF-8"}
    script = TIMER.format(preload=f"import {preload}; " if preload else "")
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
        if keep_pyc:
            assert (folder / "__pycache__").is_dir(), "the artifact should carry kagg's .pyc"
        else:
            for cache in sorted(folder.rglob("__pycache__")):
                shutil.rmtree(cache)
        folders[mode] = folder
    preload = ", ".join(subprocess.run([python, "-I", "-B", "-c", NOT_KAGG, str(folders["shipped .pyc"])],
                                       capture_output=True, text=True, check=True, timeout=600).stdout.split())
    keys = ("notebook", "entry", "notebook+", "entry+")
    samples: dict[str, dict[str, list[float]]] = {mode: {k: [] for k in keys} for mode in folders}
    for _ in range(runs):  # interleaved, so drifts of the machine hit every measure alike
        for mode, folder in folders.items():
            got = samples[mode]
            got["notebook"].append(import_seconds(python, folder, "kagg_notebook") * 1000)
            got["entry"].append(import_seconds(python, folder, "lambda_function") * 1000)
            got["notebook+"].append(import_seconds(python, folder, "kagg_notebook", preload) * 1000)
            got["entry+"].append(import_seconds(python, folder, "lambda_function", preload) * 1000)
    with zipfile.ZipFile(zip_path) as zf:
        unzipped_all = sum(i.file_size for i in zf.infolist())
        unzipped_src = sum(i.file_size for i in zf.infolist() if "__pycache__/" not in i.filename)
    rows = []
    for mode, got in samples.items():
        med = {k: statistics.median(v) for k, v in got.items()}
        q = statistics.quantiles(got["entry"], n=4) if runs > 1 else [med["entry"]] * 3
        rows.append(Row(case, mode, zip_path.stat().st_size, unzipped_all if mode == "shipped .pyc" else unzipped_src,
                        med["notebook"], med["entry"], (q[0], q[2]), med["entry+"] - med["notebook+"]))
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
              f"{'notebook ms':>11} {'entry ms':>9} {'(IQR)':>15} {'kagg adds ms':>12} {'own modules ms':>14}")
    print(header)
    print("-" * len(header))
    for r in rows:
        print(f"{r.case:<22} {r.mode:<20} {r.zip_bytes / 1e6:>7.2f} {r.unzipped_bytes / 1e6:>11.1f} "
              f"{r.notebook_ms:>11.1f} {r.entry_ms:>9.1f} {f'({r.entry_iqr[0]:.1f} .. {r.entry_iqr[1]:.1f})':>15} "
              f"{r.added_ms:>12.1f} {r.own_ms:>14.1f}")
    shipped, reference = rows[0], rows[1]
    print(f"\nkagg adds {shipped.added_ms:.1f} ms to a stdlib-only notebook's cold import with the shipped "
          f".pyc (no cache written, fresh process, median of {args.runs}); the reference run without them: "
          f"{reference.added_ms:.1f} ms; ratio {shipped.added_ms / reference.added_ms:.2f}")
    print(f"of which kagg's own modules (everything else they import loaded first, as Lambda's bootstrap "
          f"loads most of it): {shipped.own_ms:.1f} ms, reference {reference.own_ms:.1f} ms; "
          f"ratio {shipped.own_ms / reference.own_ms:.2f}")


if __name__ == "__main__":
    main()
