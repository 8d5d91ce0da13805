"""Cold-start cost kagg adds on Lambda, and the size of the Lambda zip.

For each notebook the Lambda artifact is built exactly as ``kagg deploy --aws``
builds it (dependencies installed for manylinux x86_64 / CPython 3.12) and
unzipped into an empty folder. Then, in fresh interpreter processes of the
runtime's Python (3.12), it times:

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

Two modes: without bytecode caches (``python -B``, as on Lambda, whose
/var/task is read-only and whose zip holds no .pyc: every module is compiled
at each cold start), and with a warm ``__pycache__`` for comparison.

    python benchmarks/bench_lambda_coldstart.py [--runs 10] [--python /path/to/python3.12]
"""

from __future__ import annotations

import argparse
import glob
import os
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

STDLIB_NOTEBOOK = ROOT / "examples" / "hello.ipynb"
SKLEARN_NOTEBOOK = ROOT / "examples" / "iris_classifier.ipynb"

MARGINAL = ("import sys, time; sys.path.insert(0, sys.argv[1]); import kagg_notebook; "
            "t = time.perf_counter(); import kagg_runtime; "
            "assert callable(kagg_runtime._import_notebook); "
            "kagg_runtime._import_notebook = lambda path: sys.modules['kagg_notebook']; "
            "import lambda_function; print(time.perf_counter() - t)")
TIMER = ("import sys, time; sys.path.insert(0, sys.argv[1]); t = time.perf_counter(); "
         "__import__(sys.argv[2]); print(time.perf_counter() - t)")


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


def find_python(wanted: str = "3.12") -> str:
    """An interpreter of the Lambda runtime's version: the vendored wheels are built for it."""
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


def import_seconds(python: str, folder: Path, module: str, pyc: bool, script: str = TIMER) -> float:
    env = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp"),
           "AWS_LAMBDA_FUNCTION_NAME": "bench", "LANG": "C.UTF-8"}
    flags = ["-I"] if pyc else ["-I", "-B"]  # -I ignores PYTHON* variables: -B, not PYTHONDONTWRITEBYTECODE
    proc = subprocess.run([python, *flags, "-c", script, str(folder), module], capture_output=True, text=True,
                          env=env, cwd=folder, timeout=300)
    if proc.returncode != 0:
        raise SystemExit(f"import {module} failed in {folder}:\n{proc.stderr}")
    return float(proc.stdout.strip().splitlines()[-1])


def measure(case: str, notebook: Path, python: str, runs: int, work: Path) -> list[Row]:
    from kagg.notebook.convert import convert_source

    function = convert_source(str(notebook))
    provider = AWSProvider(state_dir=work / "state")
    artifact = provider.build(function, DeployOptions(runtime="python3.12", arch="x86_64"))
    rows = []
    for mode, pyc in (("no .pyc (as on Lambda)", False), ("warm __pycache__", True)):
        folder = work / f"{case}-{'pyc' if pyc else 'nopyc'}"
        zipfile.ZipFile(artifact.path).extractall(folder)
        if pyc:  # warm the cache once, outside the timed runs
            import_seconds(python, folder, "lambda_function", pyc=True)
        else:
            assert not list(folder.rglob("*.pyc")), "the artifact should carry no bytecode"
        notebook_s, entry_s, marginal_s = [], [], []
        for _ in range(runs):
            notebook_s.append(import_seconds(python, folder, "kagg_notebook", pyc))
            entry_s.append(import_seconds(python, folder, "lambda_function", pyc))
            marginal_s.append(import_seconds(python, folder, "lambda_function", pyc, script=MARGINAL))
        diffs = [m * 1000 for m in marginal_s]
        quartiles = statistics.quantiles(diffs, n=4) if len(diffs) > 1 else [diffs[0]] * 3
        rows.append(Row(case, mode, artifact.size, artifact.unzipped_size,
                        statistics.median(notebook_s) * 1000, statistics.median(entry_s) * 1000,
                        statistics.median(diffs), (quartiles[0], quartiles[2])))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--python", help="Python 3.12 interpreter (default: found on this machine)")
    args = parser.parse_args()
    python = args.python or find_python("3.12")
    cases = [("stdlib only (hello)", STDLIB_NOTEBOOK), ("scikit-learn (iris)", SKLEARN_NOTEBOOK)]
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="kagg-bench-") as tmp:
        for case, notebook in cases:
            rows += measure(case, notebook, python, args.runs, Path(tmp))
    print(f"Lambda cold start: import times in fresh {python} processes, median of {args.runs}\n")
    header = (f"{'notebook':<22} {'mode':<24} {'zip MB':>7} {'unzipped MB':>11} "
              f"{'notebook ms':>11} {'entry ms':>9} {'difference':>10} {'kagg adds ms':>12} {'(IQR)':>13}")
    print(header)
    print("-" * len(header))
    for r in rows:
        print(f"{r.case:<22} {r.mode:<24} {r.zip_bytes / 1e6:>7.2f} {r.unzipped_bytes / 1e6:>11.1f} "
              f"{r.notebook_ms:>11.1f} {r.entry_ms:>9.1f} {r.entry_ms - r.notebook_ms:>10.1f} "
              f"{r.added_ms:>12.1f} {f'({r.added_iqr[0]:.0f} .. {r.added_iqr[1]:.0f})':>13}")


if __name__ == "__main__":
    main()
