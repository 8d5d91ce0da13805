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
    """An aligned table on stdout, drawn by rich as ``kagg batch`` and ``kagg monitor`` draw theirs:
    colours and the terminal's width on a terminal; plain aligned text, never cut, when piped."""
    from rich import box
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    tty = is_tty()
    t = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, header_style="bold" if tty else "",
              show_edge=False, pad_edge=False)
    for col in columns:
        t.add_column(col, overflow="fold", no_wrap=not tty)
    for row in rows:
        t.add_row(*[Text("" if v is None else str(v)) for v in row])  # values are text, never markup
    if tty:
        Console().print(t)
        return
    from rich.cells import cell_len

    widths = [max([cell_len(col)] + [cell_len("" if r[i] is None else str(r[i])) for r in rows])
              for i, col in enumerate(columns)]
    width = max(sum(widths) + 3 * len(columns) + 4, cell_len(title or ""))
    console = Console(file=sys.stdout, width=width, soft_wrap=False,
                      color_system=None, highlight=False)
    with console.capture() as captured:
        console.print(t)
    lines = [line.rstrip() for line in captured.get().splitlines()]
    sys.stdout.write("\n".join(line for line in lines if line) + "\n")
