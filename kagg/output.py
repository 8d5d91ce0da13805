"""Printing helpers shared by the commands: JSON, progress, notes.

rich is imported only when something is printed to a terminal, so the
common paths stay fast to start.
"""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from typing import Any, Callable, Iterator


def is_tty(stream=None) -> bool:
    stream = stream or sys.stdout
    return hasattr(stream, "isatty") and stream.isatty()


def print_json(data: Any, pretty: bool | None = None) -> None:
    """JSON on stdout: indented on a terminal (or when asked), compact otherwise."""
    pretty = is_tty() if pretty is None else pretty
    sys.stdout.write(json.dumps(data, indent=2 if pretty else None, default=str) + "\n")


def warn(message: str) -> None:
    sys.stderr.write(f"Warning: {message}\n")


@contextmanager
def progress() -> Iterator[Callable[[str], None]]:
    """A callback for progress messages: a spinner on a terminal, plain lines on stderr otherwise."""
    if is_tty(sys.stderr):
        from rich.console import Console

        console = Console(stderr=True)
        with console.status("working...") as status:
            yield lambda message: status.update(message)
    else:
        yield lambda message: sys.stderr.write(message + "\n")


def table(columns: list[str], rows: list[list[Any]], title: str | None = None) -> None:
    """A table on stdout: rich on a terminal, tab-separated plain text otherwise."""
    if is_tty():
        from rich.console import Console
        from rich.table import Table

        t = Table(title=title)
        for col in columns:
            t.add_column(col)
        for row in rows:
            t.add_row(*["" if v is None else str(v) for v in row])
        Console().print(t)
    else:
        sys.stdout.write("\t".join(columns) + "\n")
        for row in rows:
            sys.stdout.write("\t".join("" if v is None else str(v) for v in row) + "\n")
