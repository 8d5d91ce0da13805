"""URLs as kagg's users give them: one test for "is this a URL", shared by every command."""

from __future__ import annotations


def is_url(text: str) -> bool:
    """True for an ``http://`` or ``https://`` URL (any case); False for a path, a name or a slug."""
    return isinstance(text, str) and text[:8].lower().startswith(("http://", "https://"))
