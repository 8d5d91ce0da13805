"""A notebook + a :class:`KernelRequest` -> the :class:`KernelBundle` pushed to Kaggle (ARCHITECTURE.md §9).

Every check that can fail happens here, before any GPU time is spent: a Python notebook, no
hard-coded credentials (the secrets gate), known parameters with values of their declared
type, a known accelerator, code that compiles, modules that fit in the kernel. The result is
deterministic: the same notebook, modules and request give the same text and code hash.
Layout of the kernel and what it does when it runs: docs/kaggle-kernel.md.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Union

from kagg.errors import BadInput
from kagg.kaggle import kernel_notebook as kn
from kagg.kaggle.accelerators import choose
from kagg.kaggle.checkpoints import compat_keys
from kagg.kaggle.code_archive import build_archive
from kagg.kaggle.kernel_cells import Selection, select_cells
from kagg.kaggle.kernel_params import resolve
from kagg.notebook.convert import check_kernel
from kagg.notebook.loading import LoadedNotebook, load_notebook
from kagg.notebook.parameters import parameters_cell

METADATA_FILE = "kernel-metadata.json"
_SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{1,98}[a-z0-9])$")
_REF = re.compile(r"^[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*$")


@dataclass
class KernelRequest:
    owner: str  # Kaggle user name: metadata id is f"{owner}/{slug}"
    slug: str  # a fresh slug chosen by the caller (client helper)
    title: str  # slugified title == slug (Kaggle's rule)
    parameters: dict[str, Any] = field(default_factory=dict)  # raw -p values (str) or JSON values
    device: str = "gpu"  # "gpu" | "cpu"
    accelerator: Optional[str] = None  # e.g. "NvidiaTeslaT4"; checked against kagg/kaggle/accelerators.py
    internet: bool = False
    timeout_s: Optional[int] = None
    datasets: list[str] = field(default_factory=list)  # "owner/slug"
    competition: Optional[str] = None
    models: list[str] = field(default_factory=list)
    resume_from: Optional[str] = None  # "owner/slug" of an earlier job's kernel (attached as kernel source)
    force_resume: bool = False
    allow_secrets: bool = False  # --allow-secrets: build even when the secrets gate finds something


@dataclass
class KernelBundle:
    notebook: dict  # nbformat-4 notebook to push (kernelspec python3 set, outputs empty)
    metadata: dict  # kernel-metadata.json content
    code_hash: str  # sha256 of the training code (checkpoint compatibility)
    parameters: dict  # the parameters actually injected (validated, typed)
    notes: list[str]  # things to tell the user (e.g. "P100 is retired; Kaggle runs T4 x2")
    effective: dict = field(default_factory=dict)  # every parameter's value in this run
    compat: list[str] = field(default_factory=list)  # the parameters a resumed checkpoint must match
    modules: list[str] = field(default_factory=list)  # files shipped in the code archive

    @property
    def slug(self) -> str:
        return self.metadata["id"].split("/", 1)[1]

    @property
    def code_file(self) -> str:
        return self.metadata["code_file"]

    def text(self) -> str:
        """The notebook JSON exactly as pushed."""
        return kn.notebook_text(self.notebook)

    def write(self, folder: Path) -> Path:
        """``<folder>/<slug>.ipynb`` + ``kernel-metadata.json`` (what ``kaggle kernels push`` reads)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / self.code_file
        path.write_text(self.text(), encoding="utf-8")
        (folder / METADATA_FILE).write_text(json.dumps(self.metadata, indent=2, sort_keys=True) + "\n",
                                            encoding="utf-8")
        return path


def build_kernel(notebook: Union[str, Path, LoadedNotebook], request: KernelRequest) -> KernelBundle:
    """Build the kernel, or raise BadInput (one line) saying what to change."""
    _check_request(request)
    loaded = notebook if isinstance(notebook, LoadedNotebook) else load_notebook(str(notebook))
    _check_python(loaded)
    if not request.allow_secrets:
        from kagg.notebook.secrets import check_notebook

        check_notebook(loaded.nb, loaded.filename)
    machine = choose(request.device, request.accelerator)
    selection = select_cells(loaded)
    notes = [*machine.notes, *selection.notes]
    pcell = selection.parameters_cell
    declared = parameters_cell(pcell.source, pcell.number) if pcell else []
    injected, effective = resolve(declared, dict(request.parameters or {}), loaded.filename,
                                  pcell.number if pcell else None)
    if injected and not request.allow_secrets:
        _check_values(injected)
    compat = compat_keys(pcell.source if pcell else None, [p.name for p in declared], pcell.number if pcell else None)
    modules = _modules(loaded, selection, notes, request.allow_secrets)
    archive = build_archive(modules, loaded.filename)
    code_hash = kn.code_hash(selection.cells, modules)
    job = f"{request.owner}/{request.slug}"
    cells, labels = _cells(selection, injected)
    config = {"format": 1, "job": job, "notebook": loaded.filename, "code_hash": code_hash,
              "parameters": effective, "injected": injected, "compat": compat,
              "resume_from": _source_ref(request.resume_from), "force_resume": bool(request.force_resume),
              "archive_sha256": archive.sha256, "cells": labels}
    start = kn.code_cell("kagg-start", kn.start_source(config, archive.text, loaded.filename), [kn.START_TAG])
    end = kn.code_cell("kagg-end", kn.END_SOURCE, [kn.END_TAG])
    header = kn.markdown_cell("kagg-header", _header(loaded, request, effective, code_hash, archive.files))
    nb = kn.notebook([header, start, *cells, end])
    return KernelBundle(notebook=nb, metadata=_metadata(request, machine), code_hash=code_hash,
                        parameters=injected, notes=notes, effective=effective, compat=compat,
                        modules=archive.files)


def _check_values(injected: dict) -> None:
    """A credential passed with -p would be written into the kernel's source, stored on Kaggle."""
    from kagg.notebook.secret_rules import scan_text

    for finding in scan_text(kn.injected_source(injected), "code"):
        name = list(injected)[finding.line - 2] if 2 <= finding.line < len(injected) + 2 else "a parameter"
        raise BadInput(f"the value of parameter {name!r} looks like a {finding.description}: {finding.redacted}; "
                       "it would be stored in the kernel's source on Kaggle: read it from Kaggle Secrets "
                       "(kaggle_secrets.UserSecretsClient) instead, or pass --allow-secrets")


def _check_request(request: KernelRequest) -> None:
    if not request.owner or not re.match(r"^[A-Za-z0-9][\w-]*$", request.owner):
        raise BadInput(f"invalid Kaggle user name {request.owner!r}; check your Kaggle credentials")
    if not _SLUG.match(request.slug or ""):
        raise BadInput(f"invalid kernel slug {request.slug!r}: use 3-100 lower-case letters, digits and dashes")
    if len((request.title or "").strip()) < 5:
        raise BadInput(f"the kernel title {request.title!r} is too short: Kaggle needs at least 5 characters")
    for ref in [*request.datasets, *([request.resume_from] if request.resume_from else [])]:
        if not _REF.match(_source_ref(ref) or ""):
            raise BadInput(f"invalid Kaggle source {ref!r}: give it as OWNER/SLUG")


def _source_ref(ref: Optional[str]) -> Optional[str]:
    """``owner/slug`` of a job id (``owner/slug/v3`` -> ``owner/slug``): Kaggle attaches a kernel's latest output."""
    if not ref:
        return None
    parts = ref.strip().strip("/").split("/")
    if len(parts) == 3 and re.match(r"^v?\d+$", parts[2]):
        parts = parts[:2]
    return "/".join(parts)


def _check_python(loaded: LoadedNotebook) -> None:
    try:
        check_kernel(loaded.nb, loaded.filename)
    except BadInput as exc:
        raise BadInput(str(exc).replace("kagg serves Python notebooks only",
                                        "kagg runs only Python notebooks on Kaggle")) from None


def _modules(loaded: LoadedNotebook, selection: Selection, notes: list[str], allow_secrets: bool) -> dict[str, bytes]:
    """The modules beside the notebook that its kernel cells import (checked by the secrets gate), and a
    note for each data file they name there: data travels as a Kaggle dataset, not in the kernel."""
    from kagg.notebook.datafiles import data_refs
    from kagg.notebook.requirements import local_module_files

    trees = [(c.number, c.tree) for c in selection.cells if c.tree is not None]
    try:
        modules = local_module_files(trees, loaded.folder)
    except OSError as exc:
        raise BadInput(f"cannot read a module beside the notebook: {exc.strerror or exc} ({exc.filename})") from None
    if modules and not allow_secrets:
        from kagg.notebook.secrets import check_files

        check_files(modules, loaded.filename)
    refs = [r for r in data_refs([t for _n, t in trees], loaded.folder) if r not in modules]
    if refs:
        notes.append(f"{', '.join(refs[:3])}{' …' if len(refs) > 3 else ''} beside the notebook "
                     "not shipped to Kaggle: upload data as a dataset (--dataset OWNER/SLUG) and read it "
                     "from /kaggle/input/<slug>/")
    return modules


def _cells(selection: Selection, injected: dict) -> tuple[list[dict], dict[str, str]]:
    """The notebook's kernel cells, the injected-parameters cell after the parameters cell, and the
    labels the runtime reports a failing cell by (keyed by each cell's source hash)."""
    out: list[dict] = []
    labels: dict[str, str] = {}
    for cell in selection.cells:
        out.append(kn.code_cell(f"cell-{cell.number}", cell.source, cell.tags))
        labels.setdefault(kn.cell_key(cell.source), f"cell {cell.number}")
        if cell is selection.parameters_cell and injected:
            source = kn.injected_source(injected)
            out.append(kn.code_cell("injected-parameters", source, [kn.INJECTED_TAG]))
            labels.setdefault(kn.cell_key(source), "the injected parameters")
    labels.setdefault(kn.cell_key(kn.END_SOURCE), "kagg end")
    return out, labels


def _header(loaded: LoadedNotebook, request: KernelRequest, effective: dict, code_hash: str,
            modules: list[str]) -> str:
    lines = [f"# {request.title}", "",
             f"Built by kagg from `{loaded.filename}` (sha256 `{loaded.sha256[:12]}`); "
             f"training code hash `{code_hash[:12]}`."]
    if effective:
        shown = ", ".join(f"`{k}={json.dumps(v, ensure_ascii=False)}`" for k, v in effective.items())
        lines += ["", f"Parameters: {shown}."]
    if modules:
        lines += ["", f"Modules shipped in the first cell: {', '.join(f'`{m}`' for m in modules[:10])}."]
    if request.resume_from:
        lines += ["", f"Resumes from the checkpoints of `{_source_ref(request.resume_from)}` when they match."]
    return "\n".join(lines)


def _metadata(request: KernelRequest, machine) -> dict:
    return {
        "id": f"{request.owner}/{request.slug}",
        "title": request.title,
        "code_file": f"{request.slug}.ipynb",
        "language": "python",
        "kernel_type": "notebook",
        "is_private": True,
        "enable_gpu": machine.enable_gpu,
        "enable_tpu": machine.enable_tpu,
        "enable_internet": bool(request.internet),
        "dataset_sources": list(request.datasets),
        "competition_sources": [request.competition] if request.competition else [],
        "kernel_sources": [_source_ref(request.resume_from)] if request.resume_from else [],
        "model_sources": list(request.models),
        "machine_shape": machine.machine_shape,
    }
