"""Small notebooks written by the tests themselves (the corpus and examples cover real ones)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

PY_KERNEL = {"kernelspec": {"name": "python3", "language": "python", "display_name": "Python 3"},
             "language_info": {"name": "python"}}


def notebook(*cells: str | tuple[str, list[str]], kernel: Optional[dict] = None) -> dict:
    """A notebook dict; each cell is source text or (source, tags)."""
    out = []
    for i, cell in enumerate(cells):
        source, tags = (cell, []) if isinstance(cell, str) else cell
        out.append({"cell_type": "code", "execution_count": None, "id": f"c{i}",
                    "metadata": {"tags": tags} if tags else {}, "outputs": [], "source": source})
    return {"cells": out, "metadata": PY_KERNEL if kernel is None else kernel, "nbformat": 4, "nbformat_minor": 5}


def write(path: Path, *cells: str | tuple[str, list[str]], kernel: Optional[dict] = None) -> Path:
    path.write_text(json.dumps(notebook(*cells, kernel=kernel)))
    return path


HANDLER = 'def handler(x: int, y: float = 1.5, label: str = "n"):\n    return {"sum": x + y, "label": label}'
FAILS_AT_IMPORT = 'raise ValueError("model file is missing")\ndef handler():\n    return 1'


# -- the notebook the cloud-provider tests deploy ---------------------------------------------------
HELLO = '''\
import json


def handler(name: str = "world", times: int = 1):
    if name == "boom":
        raise ValueError("boom requested")
    return {"greeting": " ".join(["hello " + name] * times)}
'''



def notebook_json(source: str = HELLO, requirements: Optional[list[str]] = None) -> str:
    """An .ipynb with the function's code in one cell (and ``%pip install`` lines for requirements)."""
    cells = []
    if requirements:
        cells.append({"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [],
                      "source": [f"%pip install {r}\n" for r in requirements]})
    cells.append({"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [],
                  "source": source.splitlines(keepends=True)})
    return json.dumps({"nbformat": 4, "nbformat_minor": 5, "cells": cells,
                       "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                   "language": "python"},
                                    "language_info": {"name": "python"}}}, indent=1)
