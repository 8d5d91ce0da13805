"""Checkpoints between runs, on kagg's side: which parameters must match, and what the kernel decided.

A run's checkpoints are reused by ``--resume-from JOB`` only when the training code is the same
(the code hash) and so is every *compatibility parameter*. By default that is every parameter of
the notebook's ``parameters`` cell; the cell narrows it with a comment line::

    # kagg: compat lr, batch_size       <- only these must match (epochs may grow between runs)
    # kagg: compat none                 <- no parameter has to match, only the code

The comparison itself runs inside the kernel (:mod:`kagg.kaggle.kernel_runtime.kagg_kernel`),
where the earlier run's output is mounted; its decision comes back in the manifest.
"""

from __future__ import annotations

import re
from typing import Optional

from kagg.errors import BadInput

_COMPAT = re.compile(r"^\s*#\s*kagg\s*:\s*compat\b(?P<names>.*)$", re.IGNORECASE)
_NAME = re.compile(r"^[A-Za-z_]\w*$")

DECISIONS = ("used", "ignored", "none", "forced")


def compat_keys(source: Optional[str], declared: list[str], cell: Optional[int]) -> list[str]:
    """The compatibility parameters named by ``# kagg: compat ...`` lines, else all ``declared``."""
    named: Optional[list[str]] = None
    for number, line in enumerate((source or "").splitlines(), start=1):
        match = _COMPAT.match(line)
        if not match:
            continue
        words = [w for w in re.split(r"[,\s]+", match.group("names").strip()) if w]
        named = named or []
        if [w.lower() for w in words] in (["none"], ["-"]):
            continue
        for word in words:
            if not _NAME.match(word) or word not in declared:
                listed = ", ".join(declared) or "none"
                raise BadInput(f"cell {cell}, line {number}: `# kagg: compat` names {word!r}, which is not a "
                               f"parameter of this cell (it declares: {listed}); fix the name or remove it")
            if word not in named:
                named.append(word)
    return list(declared) if named is None else named


def describe(checkpoint: Optional[dict], job: Optional[str] = None) -> Optional[str]:
    """One line for kagg's summary about the checkpoint decision in a manifest (None: nothing to say).

    ``checkpoint of alice/train-1 ignored: lr 0.01 ≠ 0.001``
    """
    if not checkpoint:
        return None
    decision = checkpoint.get("decision")
    source = checkpoint.get("source") or job or "the earlier job"
    reason = checkpoint.get("reason")
    if decision == "used":
        files = checkpoint.get("files")
        return f"resumed from the checkpoints of {source}" + (f" ({files} files)" if files else "")
    if decision == "forced":
        return f"checkpoint of {source} used because of --force-resume" + (f"; {reason}" if reason else "")
    if decision == "ignored":
        return f"checkpoint of {source} ignored: {reason}; pass --force-resume to use it anyway"
    if decision == "none" and checkpoint.get("source"):
        return f"no checkpoint resumed from {source}" + (f": {reason}" if reason else "")
    return None
