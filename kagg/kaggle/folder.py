"""An existing kernel folder (``kernel-metadata.json`` + its ``code_file``), read and checked
as ``kaggle kernels push`` would, so ``kagg kaggle push DIR`` refuses in one line what Kaggle
would refuse (or accept and then answer 403 to, like a title that does not slugify to the id)."""

from __future__ import annotations

import json
from pathlib import Path

from kagg.errors import BadInput
from kagg.kaggle.jobs import parse_job, slugify

METADATA = "kernel-metadata.json"


def read_folder(folder: Path) -> tuple[dict, str]:
    """``(metadata, text to push)``; a notebook's outputs are cleared as kaggle's push does."""
    meta_path = Path(folder) / METADATA
    if not meta_path.is_file():
        raise BadInput(f"{folder} has no {METADATA}; give a kernel folder (`kagg kaggle pull` makes one)")
    try:
        metadata = json.loads(meta_path.read_text(encoding="utf-8"))
    except (ValueError, OSError) as exc:
        raise BadInput(f"{meta_path} is not valid JSON ({exc}); fix it and push again") from None
    if not isinstance(metadata, dict):
        raise BadInput(f"{meta_path} must hold a JSON object")
    job = parse_job(str(metadata.get("id") or ""), f"{METADATA} id")
    if job.version is not None:
        raise BadInput(f"{meta_path}: the id {metadata['id']!r} must not name a version")
    title = str(metadata.get("title") or job.slug)
    if len(title) < 5:
        raise BadInput(f"{meta_path}: the title {title!r} is shorter than 5 characters (Kaggle's rule)")
    if slugify(title) != job.slug:
        raise BadInput(f"{meta_path}: the title {title!r} does not slugify to the id's slug {job.slug!r} "
                       "(Kaggle would answer later calls with 403); make them agree")
    code = Path(folder) / str(metadata.get("code_file") or "")
    if not metadata.get("code_file") or not code.is_file():
        raise BadInput(f"{meta_path}: code_file {metadata.get('code_file')!r} is not a file in {folder}")
    text = code.read_text(encoding="utf-8")
    kind = metadata.get("kernel_type", "notebook" if code.suffix == ".ipynb" else "script")
    if kind == "notebook":
        try:
            nb = json.loads(text)
        except ValueError as exc:
            raise BadInput(f"{code} is not a notebook ({exc})") from None
        for cell in nb.get("cells", []):
            if cell.get("cell_type") == "code":
                cell["outputs"] = []
            if isinstance(cell.get("source"), list):
                cell["source"] = "".join(cell["source"])
        text = json.dumps(nb)
    metadata = dict(metadata, id=job.kernel, title=title, kernel_type=kind,
                    language=metadata.get("language", "python"))
    return metadata, text
