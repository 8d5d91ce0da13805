"""Fetching a kernel's source from Kaggle: ``kagg kaggle pull`` and ``kagg deploy OWNER/SLUG``.

A source is a Kaggle kernel only when it has the shape ``owner/slug[/vN]`` and is not a file
or folder here: ``dir/nb.ipynb`` (a dot) or an existing ``dir/nb`` stays a local path.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

from kagg.errors import BadInput
from kagg.kaggle.jobs import JobId, looks_like_kernel_ref, parse_job


def is_kernel_source(source: str) -> bool:
    """Whether ``source`` names a Kaggle kernel rather than a local path."""
    if source.lower().endswith((".ipynb", ".py", ".json")) or Path(source).expanduser().exists():
        return False
    return looks_like_kernel_ref(source)


def fetch_source(job: "JobId | str", kaggle=None) -> tuple[bytes, dict]:
    """The kernel's notebook (bytes of .ipynb JSON) and its metadata, as kernel-metadata.json has it."""
    if isinstance(job, str):
        job = parse_job(job, "notebook")
    if kaggle is None:
        from kagg.kaggle.client import Kaggle
        from kagg.kaggle.credentials import load_credentials

        kaggle = Kaggle(load_credentials())
    reply = kaggle.get_kernel(job)
    blob, meta = reply.blob, reply.metadata
    if blob is None or not blob.source:
        raise BadInput(f"{job}: Kaggle returned no source for it (a kernel never saved in the web UI?); "
                       "save a version on Kaggle and try again")
    kind = (blob.kernel_type or getattr(meta, "kernel_type", "") or "").lower()
    language = (blob.language or getattr(meta, "language", "") or "").lower()
    if language and language != "python":
        raise BadInput(f"{job} is a {language} kernel; kagg deploys Python notebooks only")
    if kind == "script":
        raise BadInput(f"{job} is a script kernel, not a notebook; kagg deploys notebooks")
    metadata = {"id": job.kernel, "title": getattr(meta, "title", None) or job.slug,
                "code_file": f"{job.slug}.ipynb", "language": "python", "kernel_type": "notebook",
                "is_private": bool(getattr(meta, "is_private", True)),
                "enable_gpu": bool(getattr(meta, "enable_gpu", False)),
                "enable_internet": bool(getattr(meta, "enable_internet", False)),
                "dataset_sources": list(getattr(meta, "dataset_data_sources", None) or []),
                "competition_sources": list(getattr(meta, "competition_data_sources", None) or []),
                "kernel_sources": list(getattr(meta, "kernel_data_sources", None) or []),
                "model_sources": list(getattr(meta, "model_data_sources", None) or [])}
    if getattr(meta, "machine_shape", None):
        metadata["machine_shape"] = meta.machine_shape
    return blob.source.encode("utf-8"), metadata


def pull(ref: str, dest: Optional[Path] = None, kaggle=None) -> Path:
    """Write ``<dest>/<slug>.ipynb`` and ``kernel-metadata.json``; returns the notebook's path."""
    job = parse_job(ref, "kernel")
    raw, metadata = fetch_source(job, kaggle)
    folder = Path(dest) if dest else Path(job.slug)
    folder.mkdir(parents=True, exist_ok=True)
    from kagg.atomic import write_bytes_atomic

    notebook = folder / metadata["code_file"]
    write_bytes_atomic(notebook, raw)
    write_bytes_atomic(folder / "kernel-metadata.json", (json.dumps(metadata, indent=2) + "\n").encode())
    return notebook
