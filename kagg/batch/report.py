"""What a batch shows and leaves behind: live progress, the summary table, ``--json``, ``--report``.

On a terminal the progress is a rich live view of the items in flight; off a
terminal (CI logs, pipes) it is one plain line per finished item, which greps
and diffs well. Progress goes to stderr so that stdout carries only the
summary or the JSON.
"""

from __future__ import annotations

import csv
import io
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Optional

from kagg.batch.runner import Event, ItemResult
from kagg.atomic import write_bytes_atomic
from kagg.batch.state import write_json_atomic

STATUSES = ("ok", "skipped", "failed", "not run")
COLUMNS = ("name", "provider", "status", "detail", "url", "attempts", "seconds", "error")
_STYLE = {"ok": "green", "skipped": "cyan", "failed": "bold red", "not run": "yellow", "running": "blue",
          "retrying": "magenta", "waiting": "dim"}


@dataclass
class BatchReport:
    """The outcome of a whole batch, as printed, written with ``--report`` and shown by ``--json``."""

    list: str
    operation: str
    started_at: str
    finished_at: str
    seconds: float
    parallel: int
    items: list[ItemResult]
    interrupted: bool = False
    aborted: bool = False
    state_file: Optional[str] = None
    counts: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.counts = {s: sum(1 for r in self.items if r.status == s) for s in STATUSES}

    @property
    def exit_code(self) -> int:
        """130 after Ctrl-C, 1 if any item failed or did not run, else 0 (docs/architecture.md, "Exit codes")."""
        if self.interrupted:
            return 130
        return 1 if self.counts["failed"] or self.counts["not run"] else 0

    def to_dict(self) -> dict[str, Any]:
        return {"list": self.list, "operation": self.operation, "started_at": self.started_at,
                "finished_at": self.finished_at, "seconds": self.seconds, "parallel": self.parallel,
                "interrupted": self.interrupted, "aborted": self.aborted, "exit_code": self.exit_code,
                "counts": self.counts, "state_file": self.state_file,
                "items": [r.to_dict() for r in self.items]}

    def headline(self) -> str:
        parts = [f"{self.counts[s]} {s}" for s in STATUSES if self.counts[s]]
        n = len(self.items)
        return f"{self.operation}: {n} item{'s' if n != 1 else ''} in {self.seconds:.1f} s: " + ", ".join(parts)


def _cells(r: ItemResult) -> list[str]:
    return [r.name, r.provider, r.status, r.detail, r.url or "", str(r.attempts), f"{r.seconds:.2f}", r.error or ""]


def plain_table(report: BatchReport) -> str:
    """The summary as aligned text; the error column is last and never cut."""
    rows = [[c.upper() for c in COLUMNS]] + [_cells(r) for r in report.items]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS) - 1)]
    lines = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:-1])) + "  " + row[-1]
             for row in rows]
    return "\n".join(line.rstrip() for line in lines) + "\n" + report.headline() + "\n"


def print_summary(report: BatchReport, stream: IO[str], tty: bool) -> None:
    """The summary table: rich with colours on a terminal, plain text otherwise."""
    if not tty:
        stream.write(plain_table(report))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=report.headline(), title_justify="left", expand=False)
    for col in COLUMNS:
        table.add_column(col, justify="right" if col in ("attempts", "seconds") else "left",
                         overflow="fold", no_wrap=col not in ("url", "error"))
    for r in report.items:
        cells = _cells(r)
        cells[2] = f"[{_STYLE.get(r.status, '')}]{r.status}[/]"
        table.add_row(*cells)
    Console(file=stream).print(table)


def write_report(report: BatchReport, path: Path) -> None:
    """``--report FILE``: CSV for ``.csv``, the text table for ``.txt``/``.md``, JSON otherwise."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(("line",) + COLUMNS + ("notebook",))
        for r in report.items:
            writer.writerow([r.line] + _cells(r) + [r.notebook or ""])
        write_bytes_atomic(path, buf.getvalue().encode("utf-8"))
    elif suffix in (".txt", ".md", ".text"):
        write_bytes_atomic(path, plain_table(report).encode("utf-8"))
    else:
        write_json_atomic(path, report.to_dict())


# -- progress ------------------------------------------------------------------------------------
class Display:
    """Receives the runner's events; the base class shows nothing (library use, ``--quiet``)."""

    def start(self, total: int, what: str) -> None: ...
    def event(self, event: Event) -> None: ...
    def notice(self, message: str) -> None: ...
    def close(self) -> None: ...


class PlainDisplay(Display):
    """One line per finished item (and per notice) on ``stream``: for logs and pipes."""

    def __init__(self, stream: IO[str] = sys.stderr):
        self.stream = stream
        self.total = 0
        self.finished = 0

    def start(self, total: int, what: str) -> None:
        self.total = total
        self._write(f"{what}: {total} items")

    def event(self, event: Event) -> None:
        if event.kind != "done" or event.result is None:
            return
        self.finished += 1
        r = event.result
        width = len(str(self.total))
        tail = r.url or r.detail or ""
        if r.status == "failed":
            tail = r.error or r.detail
        attempts = f"{r.attempts} attempt{'s' if r.attempts != 1 else ''}"
        self._write(f"[{self.finished:>{width}}/{self.total}] {r.status:<7} {r.name} ({r.provider}) "
                    f"{attempts}, {r.seconds:.2f} s: {tail}".rstrip(": "))

    def notice(self, message: str) -> None:
        self._write(message)

    def _write(self, line: str) -> None:
        self.stream.write(line + "\n")
        self.stream.flush()


@dataclass
class _Row:
    name: str
    provider: str
    state: str = "waiting"
    attempt: int = 0
    message: str = ""
    since: float = field(default_factory=time.monotonic)


class LiveDisplay(Display):
    """A rich live view: an overall bar, then each item in flight with what it is doing."""

    RECENT = 5

    def __init__(self, names: dict[int, tuple[str, str]], stream: IO[str] = sys.stderr):
        from rich.console import Console

        self.console = Console(file=stream)
        self.rows = {i: _Row(n, p) for i, (n, p) in names.items()}
        self.recent: list[int] = []
        self.counts = {s: 0 for s in STATUSES}
        self.total = len(names)
        self.started = time.monotonic()
        self.what = ""
        self.live = None

    def start(self, total: int, what: str) -> None:
        from rich.live import Live

        self.total, self.what = total, what
        self.live = Live(get_renderable=self._render, console=self.console, refresh_per_second=8,
                         transient=True)
        self.live.start()

    def event(self, event: Event) -> None:
        row = self.rows.get(event.index)
        if row is None:
            if event.result is None:
                return
            row = self.rows[event.index] = _Row(event.result.name, event.result.provider)
        if event.kind == "start":
            row.state, row.attempt, row.since = "running", event.attempt, time.monotonic()
            row.message = "starting" if event.attempt == 1 else f"attempt {event.attempt}"
        elif event.kind == "step":
            row.message = event.message
        elif event.kind == "retry":
            row.state, row.message = "retrying", event.message
        elif event.kind == "done" and event.result is not None:
            r = event.result
            row.name, row.state, row.attempt = r.name, r.status, r.attempts
            row.message = r.error or r.url or r.detail
            self.counts[r.status] = self.counts.get(r.status, 0) + 1
            self.recent = (self.recent + [event.index])[-self.RECENT:]

    def notice(self, message: str) -> None:
        self.console.print(f"[yellow]{message}[/]")

    def close(self) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None

    def _render(self):
        from rich.console import Group
        from rich.progress_bar import ProgressBar
        from rich.table import Table
        from rich.text import Text

        done = sum(self.counts.values())
        active = [i for i, r in self.rows.items() if r.state in ("running", "retrying")]
        elapsed = time.monotonic() - self.started
        head = Text.assemble(
            (f"{self.what} ", "bold"), f"{done}/{self.total} done  ",
            *[(f"{self.counts[s]} {s}  ", _STYLE[s]) for s in STATUSES if self.counts[s]],
            (f"{len(active)} running  ", "blue"), f"{elapsed:5.1f} s")
        table = Table.grid(padding=(0, 2))
        for _ in range(4):
            table.add_column(no_wrap=True, overflow="ellipsis")
        height = max(3, self.console.size.height - self.RECENT - 4)
        for i in active[:height]:
            r = self.rows[i]
            table.add_row(Text(r.state, _STYLE[r.state]), r.name, r.provider,
                          f"{time.monotonic() - r.since:4.1f} s  {r.message}")
        if len(active) > height:
            table.add_row("", f"... {len(active) - height} more", "", "")
        for i in self.recent:
            r = self.rows[i]
            if r.state in STATUSES:
                table.add_row(Text(r.state, _STYLE[r.state]), r.name, r.provider, r.message or "")
        return Group(head, ProgressBar(total=max(self.total, 1), completed=done, width=60), table)


def make_display(names: dict[int, tuple[str, str]], tty: bool, quiet: bool = False) -> Display:
    if quiet:
        return Display()
    return LiveDisplay(names) if tty else PlainDisplay()


def dump_json(report: BatchReport, stream: IO[str]) -> None:
    stream.write(json.dumps(report.to_dict(), indent=2, default=str) + "\n")
