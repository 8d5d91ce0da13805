"""Parse the quantities users type on the command line: durations, rates, latencies.

One place for these so that ``--duration 2m``, ``--since 24h``, ``--rate 300/m`` and
``--alert 'p95>300ms'`` all read numbers the same way, and all fail the same way
(:class:`~kagg.errors.BadInput`, exit 2, one line).
"""

from __future__ import annotations

import re

from kagg.errors import BadInput

_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(us|µs|ms|s|m|h|d)?\s*$", re.IGNORECASE)
_SECONDS = {"us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_RATE = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(?:/\s*(s|sec|m|min|h))?\s*$", re.IGNORECASE)
_PER = {"s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}


def parse_duration(text: str, what: str = "duration", default_unit: str = "s") -> float:
    """``60s``, ``2m``, ``1h``, ``500ms``, ``1.5`` (in ``default_unit``) -> seconds."""
    match = _DURATION.match(str(text))
    if not match:
        raise BadInput(f"invalid {what} {text!r}: use a number with a unit, such as 30s, 2m, 1h or 500ms")
    value = float(match.group(1)) * _SECONDS[(match.group(2) or default_unit).lower()]
    if value <= 0:
        raise BadInput(f"invalid {what} {text!r}: it must be greater than zero")
    return value


def parse_rate(text: str) -> float:
    """``5/s``, ``300/m``, ``10`` (per second) -> requests per second."""
    match = _RATE.match(str(text))
    if not match:
        raise BadInput(f"invalid rate {text!r}: use requests per time, such as 5/s or 300/m")
    value = float(match.group(1)) / _PER[(match.group(2) or "s").lower()]
    if value <= 0:
        raise BadInput(f"invalid rate {text!r}: it must be greater than zero")
    return value


def format_ms(ms: float | None) -> str:
    """A latency for people: ``812µs``, ``20.3ms``, ``1.52s``; ``-`` when unknown."""
    if ms is None:
        return "-"
    if ms < 1:
        return f"{ms * 1000:.0f}µs"
    if ms < 100:
        return f"{ms:.1f}ms"
    if ms < 1000:
        return f"{ms:.0f}ms"
    return f"{ms / 1000:.2f}s"


def format_rate(per_second: float) -> str:
    """A rate for people, in /s, or /m when below one per second."""
    if per_second >= 1 or per_second == 0:
        return f"{per_second:.1f}/s"
    return f"{per_second * 60:.1f}/m"
