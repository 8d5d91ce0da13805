"""Run a notebook's code cells in order in this one Python process, stopping at the first error.

What papermill does on Kaggle, without a Jupyter kernel: ``kagg run NB`` (no ``--kaggle``) uses
it to run a built kernel locally. With IPython installed, cells go through an
``InteractiveShell`` (magics, ``!shell``, ``display`` and the post-run hooks behave as in a
notebook); without it they are compiled and executed as plain Python.

Usage: ``python kagg_driver.py KERNEL.ipynb``; exit status 0 when every cell ran, 1 otherwise.
"""

import json
import os
import sys
import traceback


def _source(cell):
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else str(src)


def _code_cells(path):
    with open(path, encoding="utf-8") as f:
        nb = json.load(f)
    return [_source(c) for c in nb.get("cells", []) if c.get("cell_type") == "code" and _source(c).strip()]


def _shell():
    try:
        from IPython.core.interactiveshell import InteractiveShell
        from traitlets.config import Config
    except ImportError:
        return None
    config = Config()
    config.HistoryManager.enabled = False
    config.InteractiveShell.colors = "NoColor"
    return InteractiveShell.instance(config=config)


def _run_with_ipython(shell, cells):
    for source in cells:
        result = shell.run_cell(source, store_history=True)
        sys.stdout.flush()
        sys.stderr.flush()
        if not result.success:
            return 1
    return 0


def _run_plain(cells):
    """No IPython: exec each cell in one ``__main__`` namespace, calling the kernel's hooks by hand."""
    import types

    main = types.ModuleType("__main__")
    sys.modules["__main__"] = main
    for number, source in enumerate(cells, start=1):
        hooks = sys.modules.get("kagg_kernel")
        if hooks is not None:
            hooks.before_cell(source)
        try:
            exec(compile(source, f"<cell {number}>", "exec"), main.__dict__)
        except BaseException as exc:  # a notebook cell may raise anything, SystemExit included
            traceback.print_exc()
            hooks = sys.modules.get("kagg_kernel")
            if hooks is not None:
                hooks.after_cell(source, exc)
            return 1
        hooks = sys.modules.get("kagg_kernel")
        if hooks is not None:
            hooks.after_cell(source)
    return 0


def main(argv):
    if len(argv) != 2:
        print("usage: kagg_driver.py KERNEL.ipynb", file=sys.stderr)
        return 2
    cells = _code_cells(argv[1])
    sys.path.insert(0, os.getcwd())  # as in Jupyter: modules in the working folder import
    sys.argv = [argv[1]]
    shell = None if os.environ.get("KAGG_DRIVER_PLAIN") else _shell()
    if shell is None:
        return _run_plain(cells)
    return _run_with_ipython(shell, cells)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
