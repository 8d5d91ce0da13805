"""``kagg monitor``: latency, errors and cold starts of deployed endpoints, measured honestly.

Modules, in the order data flows: :mod:`.target` (what to send), :mod:`.schedule` (when),
:mod:`.probe` (send and time), :mod:`.stats` (HDR histograms), :mod:`.alerts`,
:mod:`.history` (SQLite), :mod:`.report` (live view, table, CSV) and :mod:`.plot`.
"""

from kagg.monitor.runner import MonitorOptions, RunResult, resolve_targets, run, run_async
from kagg.monitor.target import Target

__all__ = ["MonitorOptions", "RunResult", "Target", "resolve_targets", "run", "run_async"]
