"""The kernel notebook's own cells (start, injected parameters, end) and its deterministic text.

The start cell carries the stdlib runtime (:mod:`kagg.kaggle.kernel_runtime.kagg_kernel`) as a
visible string, the run's configuration and the code archive; it defines ``kagg_checkpoint_dir()``
and ``kagg_output_dir()`` for the notebook's code. The parameters are injected after the
``parameters`` cell in a cell tagged ``injected-parameters``, as papermill does.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Iterable

from kagg.kaggle.kernel_cells import KernelCell

RUNTIME_PATH = Path(__file__).resolve().parent / "kernel_runtime" / "kagg_kernel.py"
DRIVER_PATH = Path(__file__).resolve().parent / "kernel_runtime" / "kagg_driver.py"
KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}
START_TAG, END_TAG, INJECTED_TAG = "kagg-start", "kagg-end", "injected-parameters"
_HASH_FORMAT = b"kagg-kernel-code-1\n"


def runtime_source() -> str:
    text = RUNTIME_PATH.read_text(encoding="utf-8")
    if "'''" in text or text.rstrip().endswith("\\"):  # it is embedded in r'''...'''
        raise RuntimeError(f"{RUNTIME_PATH} cannot be embedded: it contains ''' or ends with a backslash")
    return text


def code_hash(cells: Iterable[KernelCell], modules: dict[str, bytes]) -> str:
    """sha256 of the training code: every kernel cell but the parameters cell (its values are compared
    one by one, as compatibility parameters), plus the shipped modules."""
    digest = hashlib.sha256(_HASH_FORMAT)
    for cell in cells:
        if cell.role == "parameters":
            continue
        source = cell.source.replace("\r\n", "\n").encode("utf-8", "surrogatepass")
        digest.update(b"cell %d\n" % len(source) + source)
    for name in sorted(modules):
        digest.update(b"file %d %s\n" % (len(modules[name]), name.encode("utf-8")) + modules[name])
    return digest.hexdigest()


def cell_key(source: str) -> str:
    """How the runtime recognizes a cell it is told about (IPython hands it the cell's source)."""
    return hashlib.sha1(source.encode("utf-8", "surrogatepass")).hexdigest()


def injected_source(values: dict[str, Any]) -> str:
    lines = ["# Parameters (injected by kagg, as papermill does)"]
    lines += [f"{name} = {value!r}" for name, value in values.items()]
    return "\n".join(lines) + "\n"


def start_source(config: dict, archive_text: str, notebook_name: str) -> str:
    archive = "\n".join(f'    "{line}"' for line in archive_text.splitlines())
    return "\n".join([
        f"# kagg: kernel start. Built by kagg from {notebook_name}; change the notebook, not this cell.",
        "# Prints the start marker, unpacks the modules shipped beside the notebook, restores checkpoints",
        "# (see the `checkpoint` decision in kagg-result.json) and defines kagg_checkpoint_dir() and",
        "# kagg_output_dir(); sets KAGG_CHECKPOINT_DIR and KAGG_OUTPUT_DIR. Docs: docs/kaggle-kernel.md",
        "import json as _kagg_json, sys as _kagg_sys, types as _kagg_types",
        "_kagg_source = r'''" + runtime_source() + "'''",
        "_kagg_config = _kagg_json.loads(" + repr(json.dumps(config, sort_keys=True, ensure_ascii=False)) + ")",
        "_kagg_code = (\n" + archive + "\n)" if archive else '_kagg_code = ""',
        '_kagg = _kagg_types.ModuleType("kagg_kernel")',
        '_kagg.__file__ = "kagg_kernel.py"',
        '_kagg_sys.modules["kagg_kernel"] = _kagg',
        'exec(compile(_kagg_source, "kagg_kernel.py", "exec"), _kagg.__dict__)',
        "kagg_checkpoint_dir = _kagg.checkpoint_dir",
        "kagg_output_dir = _kagg.output_dir",
        "_kagg.start(_kagg_config, _kagg_code)",
        "del _kagg_json, _kagg_sys, _kagg_types, _kagg_source, _kagg_config, _kagg_code, _kagg",
    ]) + "\n"


END_SOURCE = ("# kagg: kernel end. Lists the outputs, writes kagg-result.json, removes scratch files and prints\n"
              "# the end marker: a run whose log lacks it did not finish its cells.\n"
              "import kagg_kernel as _kagg_kernel\n"
              "_kagg_kernel.finish()\n"
              "del _kagg_kernel\n")


def code_cell(cell_id: str, source: str, tags: list[str]) -> dict:
    return {"cell_type": "code", "execution_count": None, "id": cell_id,
            "metadata": {"tags": list(tags)} if tags else {}, "outputs": [], "source": source}


def markdown_cell(cell_id: str, source: str) -> dict:
    return {"cell_type": "markdown", "id": cell_id, "metadata": {}, "source": source}


def notebook(cells: list[dict]) -> dict:
    return {"cells": cells, "metadata": {"kernelspec": dict(KERNELSPEC),
                                         "language_info": {"name": "python"}},
            "nbformat": 4, "nbformat_minor": 5}


def notebook_text(nb: dict) -> str:
    """The notebook JSON exactly as pushed: sorted keys, fixed indent, so a build is reproducible."""
    return json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
