"""Converting a 300-cell notebook: kagg vs `jupyter nbconvert --to script`, same file, same script.

kagg is timed both as a library call and as the `kagg convert` command (new
process each run, as a user runs it); nbconvert runs from its own virtual
environment (benchmarks/.venv-nbconvert, made on first run). Each command is
measured in wall time and in CPU time (user + system of the process): on a busy
machine the CPU time is the steadier figure. The ratio is kagg's time over
nbconvert's, both measured in this run.

Run: python benchmarks/bench_convert.py [--repeat 7] [--root CHECKOUT]
(``--root`` times another checkout of kagg, e.g. an older commit unpacked with ``git archive``.)
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Sequence

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from _common import ROOT, median_seconds, peer_venv, print_table


def make_notebook(path: Path, cells: int = 300) -> None:
    """A realistic notebook: imports, helper functions, magics, markdown, outputs and a handler."""
    nb = new_notebook(metadata={"kernelspec": {"name": "python3", "language": "python", "display_name": "Python 3"}})
    nb.cells.append(new_code_cell("import json\nimport math\nimport statistics\n%matplotlib inline"))
    for i in range(1, cells - 1):
        if i % 3 == 0:
            nb.cells.append(new_markdown_cell(f"## Step {i}\nSome explanation of step {i} with *markdown*."))
        elif i % 10 == 1:
            nb.cells.append(new_code_cell(f"%%time\nvalues_{i} = [math.sqrt(x) for x in range({i})]"))
        else:
            cell = new_code_cell(f"def step_{i}(x):\n    '''Step {i}.'''\n    return statistics.mean([x, {i}])\n"
                                 f"value_{i} = step_{i}({i})\nvalue_{i}")
            cell.outputs = [nbformat.v4.new_output("execute_result", data={"text/plain": str(i)}, execution_count=i)]
            nb.cells.append(cell)
    nb.cells.append(new_code_cell("def handler(x: float = 1.0):\n    return {'y': step_2(x)}"))
    nbformat.write(nb, str(path))


def time_command(argv: Sequence[str], repeat: int, env: dict | None, cwd: Path) -> tuple[float, float]:
    """(median wall seconds, median CPU seconds of the process) over ``repeat`` runs, after one warm-up
    (which also writes the bytecode caches a user's second run finds). ``cwd`` is a folder without
    a kagg in it: ``python -m`` puts the current folder first on ``sys.path``."""
    subprocess.run(list(argv), capture_output=True, check=True, env=env, cwd=cwd)
    walls, cpus = [], []
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run(list(argv), capture_output=True, check=True, env=env, cwd=cwd)
        walls.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return statistics.median(walls), statistics.median(cpus)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--root", type=Path, default=ROOT, help="the kagg checkout to time (default: this one)")
    args = parser.parse_args()
    root = args.root.resolve()
    sys.path.insert(0, str(root))
    from kagg.notebook.convert import convert_source

    venv = peer_venv("nbconvert", ["nbconvert"])
    with tempfile.TemporaryDirectory() as tmp:
        nb_path = Path(tmp) / "big.ipynb"
        make_notebook(nb_path)
        env = {"PYTHONPATH": str(root)}
        lib = median_seconds(lambda: convert_source(str(nb_path)), args.repeat)
        bare = time_command([sys.executable, "-c", "pass"], args.repeat, env, Path(tmp))
        cli = time_command([sys.executable, "-m", "kagg", "convert", str(nb_path), "-o", str(Path(tmp) / "out"),
                            "--json"], args.repeat, env, Path(tmp))
        peer = time_command([str(venv / "bin" / "jupyter"), "nbconvert", "--to", "script", str(nb_path),
                             "--output-dir", str(Path(tmp) / "nbconvert")], args.repeat, None, Path(tmp))
    rows = [
        ["jupyter nbconvert --to script (reference)", f"{peer[0] * 1000:.0f}", f"{peer[1] * 1000:.0f}", "1.00", "1.00"],
        ["kagg convert -o DIR (command)", f"{cli[0] * 1000:.0f}", f"{cli[1] * 1000:.0f}",
         f"{cli[0] / peer[0]:.2f}", f"{cli[1] / peer[1]:.2f}"],
        ["python -c pass (interpreter start, for scale)", f"{bare[0] * 1000:.0f}", f"{bare[1] * 1000:.0f}",
         f"{bare[0] / peer[0]:.2f}", f"{bare[1] / peer[1]:.2f}"],
        ["kagg.notebook.convert.convert_source (library)", f"{lib * 1000:.1f}", "", f"{lib / peer[0]:.3f}", ""],
    ]
    print_table(f"Converting a 300-cell notebook ({root}), median of {args.repeat} runs",
                ["tool", "wall ms", "cpu ms", "wall x nbconvert", "cpu x nbconvert"], rows)


if __name__ == "__main__":
    main()
