"""A Kaggle job's identity: ``owner/slug/vN``, and the fresh slug every run gets.

Pushing to an existing slug starts a second session while the first keeps running, so every
run gets a slug of its own (``kagg-<notebook>-<time>-<random>``) and the slug *is* the job:
after an unclear push, kagg looks the slug up instead of pushing again. The version is kept
so status, logs and output always ask for the pushed one (``versionLabel: vN``).
"""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass
from typing import Optional

from kagg.errors import BadInput

PREFIX = "kagg-"
_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,99}$")
_OWNER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
#: Kaggle's titles must be at least 5 characters and its slugs at most 50
MAX_SLUG = 50


@dataclass(frozen=True)
class JobId:
    owner: str
    slug: str
    version: Optional[int] = None

    @property
    def kernel(self) -> str:
        """``owner/slug``: the kernel (every version)."""
        return f"{self.owner}/{self.slug}"

    @property
    def version_label(self) -> Optional[str]:
        """What Kaggle's API wants for a version: ``vN`` (a bare ``N`` is a 404)."""
        return f"v{self.version}" if self.version is not None else None

    def with_version(self, version: Optional[int]) -> "JobId":
        return JobId(self.owner, self.slug, version)

    def __str__(self) -> str:
        return f"{self.kernel}/v{self.version}" if self.version is not None else self.kernel


def parse_job(text: str, what: str = "JOB") -> JobId:
    """``owner/slug``, ``owner/slug/vN`` or ``owner/slug/N`` (a kernel URL works too)."""
    raw = (text or "").strip()
    for prefix in ("https://www.kaggle.com/code/", "https://kaggle.com/code/", "www.kaggle.com/code/"):
        if raw.startswith(prefix):
            raw = raw[len(prefix):]
    parts = [p for p in raw.strip("/").split("/")]
    version: Optional[int] = None
    if len(parts) == 3:
        label = parts[2][1:] if parts[2][:1] in ("v", "V") else parts[2]
        if not label.isdigit() or int(label) < 1:
            raise BadInput(f"{what} {text!r}: the version must be vN (e.g. {parts[0]}/{parts[1]}/v1)")
        version = int(label)
        parts = parts[:2]
    if len(parts) != 2 or not _OWNER.match(parts[0]) or not _SLUG.match(parts[1]):
        raise BadInput(f"{what} {text!r} is not a Kaggle kernel: give OWNER/SLUG or OWNER/SLUG/vN, "
                       "as `kagg kaggle jobs` lists them")
    return JobId(parts[0], parts[1], version)


def looks_like_kernel_ref(text: str) -> bool:
    """Whether ``text`` has the shape of ``owner/slug[/vN]`` (used before it is taken as one)."""
    try:
        parse_job(text)
    except BadInput:
        return False
    return True


def slugify(text: str) -> str:
    """Kaggle's slug rule (lower case, runs of other characters become one dash)."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def fresh_slug(notebook_name: str, now: Optional[float] = None) -> str:
    """``kagg-<notebook>-<UTC time>-<random>``: new for every run, ≤ 50 characters, equal to the
    slugified title (Kaggle's rule; a mismatch gives 403s later)."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(time.time() if now is None else now))
    tail = f"-{stamp}-{secrets.token_hex(3)}"
    stem = slugify(notebook_name) or "notebook"
    room = MAX_SLUG - len(PREFIX) - len(tail)
    stem = stem[:room].strip("-") or "nb"
    return f"{PREFIX}{stem}{tail}"


def title_for(slug: str) -> str:
    """A title whose slugified form is ``slug`` (so Kaggle keeps the slug we chose)."""
    return slug
