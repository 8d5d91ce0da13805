"""Cleaning a notebook before it is shared or committed: outputs and editor metadata out.

Outputs can hold data and credentials printed during exploration, and editor
metadata (Colab ids, papermill timings, widget state) churns on every run; the
code and its tags are what kagg needs.
"""

from __future__ import annotations

import copy
import sys
import warnings
from pathlib import Path
from typing import Optional, Union

import nbformat

from kagg.atomic import write_bytes_atomic
from kagg.errors import OperationFailed
from kagg.notebook.loading import LoadedNotebook, NotebookNode

#: Notebook-level metadata that says which kernel runs the code; everything else is dropped.
KEPT_NOTEBOOK_METADATA = ("kernelspec", "language_info")
#: Cell-level metadata that drives conversion; everything else is dropped.
KEPT_CELL_METADATA = ("tags",)


def preprocess(loaded: LoadedNotebook, strip_outputs: bool = False,
               clean_metadata: bool = False) -> NotebookNode:
    """A cleaned copy of the notebook; the loaded one is left untouched."""
    nb = copy.deepcopy(loaded.nb)
    for cell in nb.get("cells", []):
        if strip_outputs and cell.get("cell_type") == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
        if clean_metadata:
            meta = cell.get("metadata") if isinstance(cell.get("metadata"), dict) else {}
            cell["metadata"] = NotebookNode({k: meta[k] for k in KEPT_CELL_METADATA if k in meta})
    if clean_metadata:
        meta = nb.get("metadata") if isinstance(nb.get("metadata"), dict) else {}
        nb["metadata"] = NotebookNode({k: meta[k] for k in KEPT_NOTEBOOK_METADATA if k in meta})
    return nb


def write_notebook(nb: dict, path: Union[str, Path]) -> Optional[Path]:
    """Write ``nb`` as nbformat 4 JSON, atomically (a crash never leaves half a notebook); ``-`` is stdout."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        text = nbformat.writes(nbformat.from_dict(nb), version=4)
    text = text if text.endswith("\n") else text + "\n"
    if str(path) == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
        return None
    target = Path(path)
    try:
        write_bytes_atomic(target, text.encode("utf-8"))
    except OSError as exc:
        raise OperationFailed(f"cannot write {target}: {exc.strerror or exc}; check the folder's permissions") from None
    return target
