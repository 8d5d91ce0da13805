"""kagg's cache folder: what can be made again (dependency builds, lookups, virtual environments)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """``$KAGG_CACHE_DIR``, else ``$XDG_CACHE_HOME/kagg``, else ``~/.cache/kagg``."""
    explicit = os.environ.get("KAGG_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "kagg"
