"""The accelerators a Kaggle kernel can ask for (``machine_shape``), checked before anything is pushed.

Kaggle does not publish the list as an API; these are the names its push accepts (kaggle 2.2.5's
help and notes/kaggle-api.md). Retired names are still accepted by Kaggle and silently replaced,
so kagg accepts them too but says what the session really runs on.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Optional

from kagg.errors import BadInput


@dataclass(frozen=True)
class Accelerator:
    name: str  # the machine_shape value sent to Kaggle
    kind: str  # "gpu" | "tpu"
    description: str


#: what a push may name today
KNOWN: dict[str, Accelerator] = {a.name: a for a in (
    Accelerator("NvidiaTeslaT4", "gpu", "two NVIDIA T4 GPUs (T4 x2), 16 GB each"),
    Accelerator("NvidiaL4", "gpu", "NVIDIA L4 GPU, 24 GB"),
    Accelerator("NvidiaH100", "gpu", "NVIDIA H100 GPU, 80 GB"),
    Accelerator("TpuV5E8", "tpu", "TPU v5e-8"),
)}

#: retired name -> (what Kaggle runs instead, or None for a CPU session)
RETIRED: dict[str, Optional[str]] = {
    "NvidiaTeslaP100": "NvidiaTeslaT4",
    "TpuV38": "TpuV5E8",
    "Tpu1VmV38": "TpuV5E8",
    "TpuV232": None,
    "TpuV2256": None,
}

DEFAULT_GPU = "NvidiaTeslaT4"


@dataclass(frozen=True)
class Choice:
    """What a kernel runs on: ``machine_shape`` None means Kaggle's CPU session."""

    machine_shape: Optional[str]
    enable_gpu: bool
    enable_tpu: bool
    notes: tuple[str, ...] = ()


def choose(device: str = "gpu", accelerator: Optional[str] = None) -> Choice:
    """Check ``--device`` / ``--accelerator`` (case does not matter) and say what the session gets."""
    device = (device or "gpu").strip().lower()
    if device not in ("gpu", "cpu", "tpu"):
        raise BadInput(f"unknown device {device!r}; use --device gpu or --device cpu")
    if accelerator is None or not accelerator.strip():
        if device == "cpu":
            return Choice(None, False, False)
        if device == "tpu":
            return Choice("TpuV5E8", False, True)
        return Choice(DEFAULT_GPU, True, False, (f"accelerator {DEFAULT_GPU}: {KNOWN[DEFAULT_GPU].description}",))
    if device == "cpu":
        raise BadInput(f"--device cpu runs without an accelerator, but --accelerator {accelerator} was given; "
                       "drop one of them")
    name = _canonical(accelerator.strip())
    if name in RETIRED:
        instead = RETIRED[name]
        if instead is None:
            return Choice(None, False, False, (f"{name} is retired; Kaggle runs such a kernel on CPU with no "
                                               "accelerator: choose one of " + ", ".join(KNOWN),))
        note = f"{name} is retired; Kaggle silently runs {instead} ({KNOWN[instead].description}) instead"
        return _choice(KNOWN[instead], (note,))
    return _choice(KNOWN[name], ())


def _choice(acc: Accelerator, notes: tuple[str, ...]) -> Choice:
    return Choice(acc.name, acc.kind == "gpu", acc.kind == "tpu", notes)


def _canonical(text: str) -> str:
    by_lower = {n.lower(): n for n in (*KNOWN, *RETIRED)}
    found = by_lower.get(text.lower())
    if found:
        return found
    close = difflib.get_close_matches(text.lower(), list(by_lower), n=1, cutoff=0.6)
    hint = f" (did you mean {by_lower[close[0]]}?)" if close else ""
    raise BadInput(f"unknown accelerator {text!r}{hint}; Kaggle accepts "
                   + ", ".join(f"{a.name} ({a.description})" for a in KNOWN.values()))
