"""``kagg monitor``: latency, errors and cold starts of deployed endpoints, measured honestly.

Modules, in the order data flows: :mod:`.target` (what to send), :mod:`.schedule` (when),
:mod:`.probe` (send and time), :mod:`.stats` (HDR histograms), :mod:`.alerts`,
:mod:`.history` (SQLite), :mod:`.report` (live view, table, CSV) and :mod:`.plot`.

The names below are loaded on first use, so that ``from kagg.monitor.units import
parse_duration`` (which other commands use for their own ``--timeout``) does not pull in
aiohttp, hdrh and the rest.
"""

from __future__ import annotations

from typing import Any

__all__ = ["MonitorOptions", "RunResult", "Target", "resolve_targets", "run", "run_async"]


def __getattr__(name: str) -> Any:
    if name == "Target":
        from kagg.monitor.target import Target

        return Target
    if name in __all__:
        from kagg.monitor import runner

        return getattr(runner, name)
    raise AttributeError(f"module 'kagg.monitor' has no attribute {name!r}")
