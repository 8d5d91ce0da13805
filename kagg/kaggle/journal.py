"""kagg's own note of the kernels it pushed, written *before* each push.

Kaggle lists a user's kernels, but a push interrupted between "sent" and "answered" must
still be nameable, so every run appends ``{"job", "state", ...}`` lines to
``<registry state dir>/kaggle-jobs.jsonl`` (one line per step; appends are atomic for lines
this short). No credential is ever written here.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Optional

from kagg.model import utc_now

FILENAME = "kaggle-jobs.jsonl"


def _path(state_dir: Path) -> Path:
    return Path(state_dir) / FILENAME


def record(state_dir: Optional[Path], job: str, state: str, **extra: object) -> None:
    """Append one step of a job (``pushing``, ``pushed``, ``finished``, ``deleted``)."""
    if state_dir is None:
        return
    from kagg.registry import make_private_dir

    make_private_dir(Path(state_dir))  # .kagg/ is readable by this user only
    line = json.dumps({"job": job, "state": state, "at": utc_now(), **extra}, default=str) + "\n"
    fd = os.open(_path(state_dir), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line.encode("utf-8"))
    finally:
        os.close(fd)


def latest(state_dir: Optional[Path]) -> dict[str, dict]:
    """Each kernel's (``owner/slug``) last recorded step, merged with its earlier fields."""
    jobs: dict[str, dict] = {}
    if state_dir is None or not _path(state_dir).is_file():
        return jobs
    for raw in _path(state_dir).read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            entry = json.loads(raw)
        except ValueError:
            continue  # a line cut by a crash: the others still count
        if isinstance(entry, dict) and isinstance(entry.get("job"), str):
            kernel = "/".join(entry["job"].split("/")[:2])
            jobs.setdefault(kernel, {}).update(entry)
    return jobs
