"""The kernel's result manifest (``kagg-result.json``) and its log markers, read on kagg's side.

The kernel writes them (:mod:`kagg.kaggle.kernel_runtime.kagg_kernel`, whose constants these
are); the client reads them after a run: a kernel that Kaggle reports COMPLETE but whose log
lacks the end marker did not finish its cells, and is a failure.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Union

from kagg.errors import OperationFailed
from kagg.kaggle.kernel_runtime.kagg_kernel import (CHECKPOINT_META, END_MARKER, FAILED_MARKER, RESULT_FILE,
                                                    START_MARKER)

__all__ = ["RESULT_FILE", "CHECKPOINT_META", "START_MARKER", "END_MARKER", "FAILED_MARKER", "OutputFile",
           "KernelResult", "read_result", "markers_in"]

STATUSES = ("running", "complete", "error")


@dataclass
class OutputFile:
    """One file under ``working/outputs``; ``name`` is relative to ``working`` (``outputs/model.pkl``)."""

    name: str
    size: int
    sha256: str


@dataclass
class KernelResult:
    """What the kernel reported about its own run.

    ``status``: ``complete``, ``error`` (a cell raised: ``error`` names it) or ``running`` (the kernel
    was killed before it could finish: a timeout, a crash of the Python process).
    ``checkpoint``: ``{"decision": "used"|"ignored"|"none"|"forced", "source": JOB or None,
    "reason": why (or None), "saved": checkpoint files the run left}``.
    """

    status: str
    parameters: dict
    code_hash: str
    outputs: list[OutputFile]
    timings: dict
    checkpoint: dict
    error: Optional[dict] = None
    job: Optional[str] = None
    injected: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "complete"

    def error_line(self) -> Optional[str]:
        """``cell 4: ValueError: bad shape`` for a failed run, else None."""
        if not self.error:
            return None
        return f"{self.error.get('cell', 'a cell')}: {self.error.get('type', 'Error')}: {self.error.get('message', '')}"


def read_result(data: Union[bytes, str, Path]) -> KernelResult:
    """Parse a manifest from its bytes, its JSON text, or the path of the file."""
    shown = RESULT_FILE
    if isinstance(data, Path):
        shown = str(data)
        try:
            data = data.read_bytes()
        except OSError as exc:
            raise OperationFailed(f"cannot read {shown}: {exc.strerror or exc}; the kernel wrote no manifest") from None
    try:
        raw: Any = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise OperationFailed(f"{shown} is not JSON; the kernel's output is damaged (download it again)") from None
    if not isinstance(raw, dict) or raw.get("status") not in STATUSES:
        raise OperationFailed(f"{shown} is not a kagg result manifest (no valid `status`)")
    outputs = []
    for item in raw.get("outputs") or []:
        if isinstance(item, dict) and isinstance(item.get("name"), str):
            outputs.append(OutputFile(name=item["name"], size=int(item.get("size") or 0),
                                      sha256=str(item.get("sha256") or "")))
    checkpoint = raw.get("checkpoint") if isinstance(raw.get("checkpoint"), dict) else {}
    checkpoint.setdefault("decision", "none")
    return KernelResult(status=raw["status"], parameters=_dict(raw.get("parameters")),
                        code_hash=str(raw.get("code_hash") or ""), outputs=outputs,
                        timings=_dict(raw.get("timings")), checkpoint=checkpoint,
                        error=raw.get("error") if isinstance(raw.get("error"), dict) else None,
                        job=raw.get("job") if isinstance(raw.get("job"), str) else None,
                        injected=_dict(raw.get("injected")))


def markers_in(log_text: str) -> tuple[bool, bool]:
    """(start seen, end seen) in a kernel's log; the end marker is only printed when every cell ran."""
    text = log_text or ""
    return START_MARKER in text, END_MARKER in text


def _dict(value: Any) -> dict:
    return dict(value) if isinstance(value, dict) else {}
