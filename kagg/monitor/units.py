"""Parse the quantities users type on the command line: durations, rates, latencies.

One place for these so that ``--duration 2m``, ``--since 24h``, ``--rate 300/m`` and
``--alert 'p95>300ms'`` all read numbers the same way, and all fail the same way
(:class:`~kagg.errors.BadInput`, exit 2, one line). Other commands read their durations
(``--timeout``) with :func:`parse_duration` too, so this module imports nothing but ``re``
and :mod:`kagg.errors` (and ``kagg.monitor`` loads its heavy parts only on first use).
"""

from __future__ import annotations

import re

from kagg.errors import BadInput

_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(us|µs|ms|s|m|h|d)?\s*$", re.IGNORECASE)
_SECONDS = {"us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_RATE = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(?:/\s*(s|sec|m|min|h))?\s*$", re.IGNORECASE)
_PER = {"s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}
_UNIT_NAMES = {"us": "microseconds", "µs": "microseconds", "ms": "milliseconds", "s": "seconds",
               "m": "minutes", "h": "hours", "d": "days"}


def duration_forms(default_unit: str = "s") -> str:
    """What :func:`parse_duration` accepts, in words: the one text for help and errors alike."""
    return (f"a number with a unit (us, ms, s, m, h or d; a bare number is "
            f"{_UNIT_NAMES[default_unit.lower()]})")


def parse_duration(text: str, what: str = "duration", default_unit: str = "s") -> float:
    """``10`` (in ``default_unit``), ``10s``, ``1.5s``, ``250ms``, ``2m``, ``1h``, ``7d`` -> seconds.

    :class:`BadInput` naming ``what`` (an option such as ``--timeout``) for anything else,
    or for zero and below.
    """
    match = _DURATION.match(str(text))
    if not match:
        raise BadInput(f"invalid {what} {text!r}: use {duration_forms(default_unit)}, "
                       "such as 250ms, 10s, 2m, 1h or 7d")
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
