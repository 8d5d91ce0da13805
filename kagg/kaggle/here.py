"""``kagg run NB`` without ``--kaggle``: the same kernel, run on this machine under a temporary
``/kaggle``-like root, so a user checks it before spending GPU time. ``--resume-from`` here
takes the folder of an earlier run (what ``-o DIR`` of a local or a Kaggle run holds)."""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import Optional

from kagg.errors import BadInput
from kagg.kaggle.jobs import fresh_slug, slugify
from kagg.kaggle.outputs import Fetched
from kagg.kaggle.run import RunEvents, RunRequest, RunSummary, judge, kernel_request, write_kernel


def run_here(req: RunRequest, events: Optional[RunEvents] = None) -> RunSummary:
    from dataclasses import replace

    from kagg.kaggle.kernel import build_kernel
    from kagg.kaggle.local_run import run_locally
    from kagg.kaggle.manifest import markers_in

    ev = events or RunEvents()
    started = time.monotonic()
    slug = fresh_slug(Path(req.notebook).stem)
    sources: dict[str, Path] = {}
    resume = None
    if req.resume_from:
        folder = Path(req.resume_from).expanduser()
        if not folder.is_dir():
            raise BadInput(f"--resume-from {req.resume_from}: without --kaggle it takes the folder of an earlier "
                           "run (its -o DIR, holding checkpoints/); give a folder, or add --kaggle for a JOB")
        source = slugify(folder.resolve().name) or "previous-run"
        sources[source] = folder.resolve()
        resume = f"local/{source}"
    bundle = build_kernel(req.notebook, kernel_request(replace(req, resume_from=resume), "local", slug))
    ev.step("check", f"{req.notebook}: notebook, secrets, parameters")
    out_dir = write_kernel(bundle, req, slug, slug, ev)
    root = Path(tempfile.mkdtemp(prefix="kagg-kernel-"))
    try:
        ev.step("run", f"locally under {root}")
        local = run_locally(bundle, root, sources=sources or None, on_line=ev.line,
                            timeout_s=float(req.timeout_s) if req.timeout_s else None)
        working = root / "working"
        if working.is_dir():
            shutil.copytree(working, out_dir, dirs_exist_ok=True, symlinks=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    lines = local.log.splitlines()
    log_path = out_dir / f"{slug}.log"
    log_path.write_text(local.log, encoding="utf-8")
    start, end = markers_in(local.log)
    fetched = Fetched(result=local.result, end_marker=end, start_marker=start, log_lines=lines, log_path=log_path)
    files = sorted(p for p in out_dir.rglob("*") if p.is_file() and "kernel" not in p.relative_to(out_dir).parts[:1])
    fetched.files = [{"name": str(p.relative_to(out_dir)), "path": str(p), "size": p.stat().st_size}
                     for p in files]
    status = "COMPLETE" if local.returncode == 0 else "ERROR"
    summary = RunSummary(job=None, status=status, ok=True, where="local", out_dir=str(out_dir), files=fetched.files)
    judge(summary, status, "" if local.returncode == 0 else f"exit code {local.returncode}", fetched,
          req.resume_from)
    for note in summary.notes:
        ev.note(note)
    summary.duration_s = round(time.monotonic() - started, 1)
    ev.step("summary", summary.status)
    return summary
