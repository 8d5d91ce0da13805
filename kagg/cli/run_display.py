"""How ``kagg run`` and ``kagg kaggle logs -f`` show a run: rich on a terminal (a spinner with
the step and the kernel's status, log lines above it), plain lines on stderr otherwise."""

from __future__ import annotations

import sys
import time
from typing import Any, Optional

from kagg.output import is_tty


class RunDisplay:
    """Events of a run, drawn. Use as a context manager; ``events()`` gives the callbacks."""

    def __init__(self, quiet: bool = False):
        self.quiet = quiet
        self.tty = is_tty(sys.stderr) and not quiet
        self._console: Any = None
        self._status: Any = None
        self._step = ""
        self._kernel_status = ""
        self._started = time.monotonic()

    def __enter__(self) -> "RunDisplay":
        if self.tty:
            from rich.console import Console

            self._console = Console(stderr=True, highlight=False)
            self._status = self._console.status("starting")
            self._status.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._status is not None:
            self._status.__exit__(*exc)
            self._status = None

    def _plain(self, text: str) -> None:
        if not self.quiet:
            sys.stderr.write(text + "\n")
            sys.stderr.flush()

    def _refresh(self) -> None:
        if self._status is not None:
            took = time.monotonic() - self._started
            state = f" · {self._kernel_status}" if self._kernel_status else ""
            self._status.update(f"{self._step}{state} · {took:.0f} s")

    def step(self, name: str, detail: str) -> None:
        self._step = f"{name} {detail}".strip()
        if self.tty:
            from rich.text import Text

            self._console.print(Text(f"› {name:<8} {detail}", style="bold"))
            self._refresh()
        else:
            self._plain(f"[{name}] {detail}")

    def status(self, status: str) -> None:
        self._kernel_status = status
        if self.tty:
            from rich.text import Text

            self._console.print(Text(f"  status {status}", style="cyan"))
            self._refresh()
        else:
            self._plain(f"[status] {status}")

    def line(self, text: str) -> None:
        if self.tty:
            from rich.text import Text

            self._console.print(Text(f"  │ {text}", style="dim"))
            self._refresh()
        else:
            self._plain(f"  | {text}")

    def note(self, text: str) -> None:
        if self.tty:
            from rich.text import Text

            self._console.print(Text(f"  ! {text}", style="yellow"))
        else:
            self._plain(f"Note: {text}")

    def events(self):
        from kagg.kaggle.run import RunEvents

        return RunEvents(step=self.step, status=self.status, line=self.line, note=self.note)


def duration(seconds: Optional[float]) -> str:
    if seconds is None:
        return "-"
    seconds = float(seconds)
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.2f} h"


def size(n: Optional[int]) -> str:
    if n is None:
        return "-"
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def print_summary(summary: Any) -> None:
    """The run's summary on stdout, for a person."""
    import click

    what = summary.job or "local run"
    click.echo(f"{what}: {summary.status}" + ("" if summary.ok else " (failed)"))
    if summary.failure:
        click.echo(f"  failure: {summary.failure}")
    for line in summary.error_lines:
        click.echo(f"  | {line}")
    click.echo(f"  duration: {duration(summary.duration_s)}")
    if summary.where == "kaggle" and (summary.gpu_time_used_s is not None or summary.quota_left_s is not None):
        click.echo(f"  GPU time used: {duration(summary.gpu_time_used_s)}   GPU quota left: "
                   f"{duration(summary.quota_left_s)}")
    for note in summary.notes:
        click.echo(f"  note: {note}")
    if summary.files:
        click.echo(f"  files ({len(summary.files)}) in {summary.out_dir}:")
        shown = summary.files[:20]
        for f in shown:
            click.echo(f"    {f['name']}  {size(f.get('size'))}" + ("  sha256 ok" if f.get("verified") else ""))
        if len(summary.files) > len(shown):
            click.echo(f"    ... and {len(summary.files) - len(shown)} more")
    elif summary.out_dir:
        click.echo(f"  folder: {summary.out_dir}")
    if summary.url:
        click.echo(f"  on Kaggle: {summary.url}")
