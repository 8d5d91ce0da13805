"""Reading cells the way Jupyter and papermill store them: source as a string or a list of lines,
tags in ``metadata.tags``. Every part of kagg that looks at a cell goes through these."""

from __future__ import annotations

import re
from typing import Any


def cell_source(cell: Any) -> str:
    """A cell's source as one string, whether stored as a string or a list of lines."""
    src = cell.get("source", "") if isinstance(cell, dict) else ""
    if isinstance(src, list):
        return "".join(str(part) for part in src)
    return src if isinstance(src, str) else ""


def cell_tags(cell: Any) -> set[str]:
    """The cell's tags from ``metadata.tags``, lower-cased.

    A list of strings is the standard form; a single string (an old or
    hand-edited spelling) is split on commas and whitespace.
    """
    meta = cell.get("metadata") if isinstance(cell, dict) else None
    tags = meta.get("tags") if isinstance(meta, dict) else None
    if isinstance(tags, str):
        tags = re.split(r"[,\s]+", tags)
    if not isinstance(tags, (list, tuple)):
        return set()
    return {t.strip().lower() for t in tags if isinstance(t, str) and t.strip()}
