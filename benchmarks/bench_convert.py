"""Converting a 300-cell notebook: kagg vs `jupyter nbconvert --to script`, same file, same script.

kagg is timed both as a library call and as the `kagg convert` command (new
process each run, as a user runs it); nbconvert runs from its own virtual
environment (benchmarks/.venv-nbconvert, made on first run).
Run: python benchmarks/bench_convert.py [--repeat 7]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from kagg.notebook.convert import convert_source

    venv = peer_venv("nbconvert", ["nbconvert"])
    with tempfile.TemporaryDirectory() as tmp:
        nb_path = Path(tmp) / "big.ipynb"
        make_notebook(nb_path)
        env = {"PYTHONPATH": str(ROOT)}
        lib = median_seconds(lambda: convert_source(str(nb_path)), args.repeat)
        cli = median_seconds(lambda: subprocess.run(
            [sys.executable, "-m", "kagg", "convert", str(nb_path), "-o", str(Path(tmp) / "out"), "--json"],
            capture_output=True, check=True, env=env), args.repeat)
        peer = median_seconds(lambda: subprocess.run(
            [str(venv / "bin" / "jupyter"), "nbconvert", "--to", "script", str(nb_path), "--output-dir",
             str(Path(tmp) / "nbconvert")], capture_output=True, check=True), args.repeat)
    rows = [
        ["jupyter nbconvert --to script (reference)", f"{peer * 1000:.0f}", "1.00"],
        ["kagg convert -o DIR (command)", f"{cli * 1000:.0f}", f"{peer / cli:.1f}x faster"],
        ["kagg.notebook.convert.convert_source (library)", f"{lib * 1000:.1f}", f"{peer / lib:.0f}x faster"],
    ]
    print_table(f"Converting a 300-cell notebook, median of {args.repeat} runs", ["tool", "ms", "vs nbconvert"], rows)


if __name__ == "__main__":
    main()
