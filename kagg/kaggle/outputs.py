"""A finished job's outputs on disk: the listing (every page), the log, the manifest first,
then every other file in parallel, checked against the manifest's sizes and sha256."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

from kagg.errors import KaggError
from kagg.kaggle.client import Kaggle
from kagg.kaggle.download import Expected, download_files
from kagg.kaggle.follow import log_lines as split_log
from kagg.kaggle.jobs import JobId


@dataclass
class Fetched:
    files: list[dict] = field(default_factory=list)
    result: Any = None                 # kagg.kaggle.manifest.KernelResult, when the kernel wrote one
    end_marker: bool = False
    start_marker: bool = False
    log_lines: list[str] = field(default_factory=list)
    log_path: Optional[Path] = None
    problems: list[str] = field(default_factory=list)


def expected_from(result: Any) -> dict[str, Expected]:
    """Manifest outputs by the names the listing may use (``outputs/NAME`` or ``NAME``)."""
    found: dict[str, Expected] = {}
    for out in getattr(result, "outputs", None) or []:
        exp = Expected(size=out.size, sha256=out.sha256)
        name = out.name.lstrip("/")
        found[name] = exp
        if not name.startswith("outputs/"):
            found.setdefault(f"outputs/{name}", exp)
    return found


def fetch_outputs(kaggle: Kaggle, job: JobId, out_dir: Path, log_lines: Optional[list[str]] = None,
                  on_line: Optional[Callable[[str], None]] = None, page_size: int = 100) -> Fetched:
    from kagg.kaggle.manifest import RESULT_FILE, markers_in, read_result

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    listed, log = kaggle.output_files(job, page_size=page_size)
    lines = split_log(log) if log else list(log_lines or [])
    fetched = Fetched(log_lines=lines)
    fetched.log_path = out_dir / f"{job.slug}.log"
    fetched.log_path.write_text("\n".join(lines) + ("\n" if lines else ""), encoding="utf-8")
    fetched.start_marker, fetched.end_marker = markers_in("\n".join(lines))
    manifest = [(n, u) for n, u in listed if n == RESULT_FILE]
    rest = [(n, u) for n, u in listed if n != RESULT_FILE]
    done = download_files(manifest, out_dir) if manifest else []
    expected: dict[str, Expected] = {}
    if done:
        try:
            fetched.result = read_result(done[0].path)
            expected = expected_from(fetched.result)
        except (KaggError, ValueError, KeyError, TypeError) as exc:
            fetched.problems.append(f"{RESULT_FILE} could not be read: {exc}")
    done += download_files(rest, out_dir, expected)
    fetched.files = [{"name": d.name, "path": str(d.path), "size": d.size, "sha256": d.sha256,
                      "verified": d.verified} for d in done]
    if on_line:
        for problem in fetched.problems:
            on_line(problem)
    return fetched
