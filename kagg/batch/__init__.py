"""Many notebooks at once: ``kagg batch list.csv --parallel`` (issue 4).

``spec`` reads and checks the list (with ``values`` and ``jsonpos``),
``operations`` says what one item does (the same calls as the single
commands), ``checking`` runs every item's read-only check (in worker
processes for a long list), ``runner`` runs items concurrently with retries
and Ctrl-C handling (``slots`` are its ``--parallel`` slots), ``commit``
groups the registry writes of parallel items, ``state`` remembers progress
for ``--resume``, ``report`` shows and writes the outcome, and ``session``
ties one run together. Names are imported on first use so that
``kagg --help``, which imports the batch command, stays fast.
"""

from importlib import import_module

FORMATS = ("csv", "json", "text")
OPERATIONS = ("deploy", "delete", "convert", "download", "invoke", "run")

_EXPORTS = {
    "BatchReport": "report", "write_report": "report",
    "ItemResult": "runner", "RunOptions": "runner", "is_transient": "runner",
    "BatchRequest": "session", "check_all": "checking", "run_batch": "session",
    "BatchInputError": "spec", "BatchItem": "spec", "Overrides": "spec", "Problem": "spec", "load": "spec",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(f"kagg.batch.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'kagg.batch' has no attribute {name!r}")
