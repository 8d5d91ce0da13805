"""Show the figures: a live view, the final side-by-side table, plain lines, CSV rows.

The live view and the plain progress lines read the same :class:`Stats` the probes fill,
so what a user watches and what ends up in ``--json`` are the same numbers.
"""

from __future__ import annotations

import csv
import datetime as _dt
from pathlib import Path
from typing import Iterable, Optional

from rich import box
from rich.console import Group
from rich.table import Table
from rich.text import Text

from kagg.errors import BadInput
from kagg.monitor.probe import error_label
from kagg.monitor.stats import Stats
from kagg.monitor.units import format_ms, format_rate

BARS = "▁▂▃▄▅▆▇█"


def sparkline(values: list[float], width: int = 30) -> str:
    """A one-line chart of the last ``width`` values (latency per second)."""
    values = values[-width:]
    if not values:
        return ""
    low, high = min(values), max(values)
    if high - low < 1e-9:
        return BARS[0] * len(values)
    return "".join(BARS[min(7, int((v - low) / (high - low) * 8))] for v in values)


def _errors_cell(report: dict) -> str:
    errors = report["errors"]
    if not errors["total"]:
        return "0"
    kinds = ", ".join(f"{error_label(k)} {v}" for k, v in errors["by_kind"].items())
    return f"{errors['total']} ({errors['pct']:.2f}%): {kinds}"


def live_view(stats: list[Stats], elapsed: float, span: float) -> Group:
    """What the terminal shows each second while the run goes on."""
    table = Table(box=box.SIMPLE_HEAD, title=f"kagg monitor  {elapsed:5.1f}s / {span:.0f}s",
                  title_justify="left")
    for col in ("endpoint", "sent", "rate", "p50", "p90", "p99", "p99.9", "max", "errors", "avail",
                "cold", "inst"):
        table.add_column(col, justify="left" if col == "endpoint" else "right")
    table.add_column("p99 per second (last 30 s)")
    for s in stats:
        lat = s.latency.summary()
        series = s.series(last=31)[:-1]  # the current second is still filling
        table.add_row(
            s.name, f"{s.completed}/{s.planned}", format_rate(s.achieved_rate),
            format_ms(lat["p50"]), format_ms(lat["p90"]), format_ms(lat["p99"]),
            format_ms(lat["p99.9"]), format_ms(lat["max"]),
            f"{sum(s.errors.values())}", f"{100 * s.availability:.2f}%" if s.completed else "-",
            str(s.cold + s.preflight_cold), str(len(s.instances)),
            Text(sparkline([p["p99"] for p in series]), style="cyan"))
    return Group(table)


def progress_line(s: Stats, elapsed: float) -> str:
    """The plain-text progress line printed when not on a terminal."""
    lat = s.latency.summary()
    return (f"[{elapsed:6.1f}s] {s.name}: {s.completed}/{s.planned} sent {format_rate(s.achieved_rate)} "
            f"p50 {format_ms(lat['p50'])} p99 {format_ms(lat['p99'])} max {format_ms(lat['max'])} "
            f"errors {sum(s.errors.values())} cold {s.cold + s.preflight_cold}")


def _lat_row(table: Table, label: str, reports: list[dict], key: str, stat: str,
             nested: Optional[str] = None) -> None:
    cells = []
    for r in reports:
        summary = r[nested][key] if nested else r[key]
        cells.append(format_ms(summary[stat]))
    if any(c != "-" for c in cells):
        table.add_row(label, *cells)


REDIRECTS = {False: "counted as errors", True: "followed"}


def final_table(reports: list[dict], follow_redirects: bool = False) -> Table:
    """The end-of-run report: one column per endpoint, so several compare side by side."""
    table = Table(box=box.SIMPLE_HEAD, title="kagg monitor report", title_justify="left")
    table.add_column("")
    for r in reports:
        table.add_column(r["target"], justify="right", overflow="fold")
    table.add_row("requests", *[f"{r['requests']}/{r['planned']}" for r in reports])
    table.add_row("rate (achieved / requested)",
                  *[f"{format_rate(r['achieved_rate'])} / {format_rate(r['requested_rate'])}" for r in reports])
    for stat in ("p50", "p90", "p95", "p99", "p99.9", "max"):
        _lat_row(table, f"latency {stat}", reports, "latency_ms", stat)
    for label, key in (("service", "service_ms"), ("handler", "handler_ms"), ("network+platform", "network_ms")):
        for stat in ("p50", "p99"):
            _lat_row(table, f"{label} {stat}", reports, key, stat)
    _lat_row(table, "send lag p99", reports, "schedule_lag_ms", "p99")
    table.add_row("errors", *[_errors_cell(r) for r in reports])
    table.add_row("redirects", *[REDIRECTS[follow_redirects] for _ in reports])
    table.add_row("availability", *[f"{r['availability_pct']:.3f}%" for r in reports])
    table.add_row("cold starts", *[str(r["cold"]["count"]) for r in reports])
    _lat_row(table, "cold service p50", reports, "service_ms", "p50", nested="cold")
    _lat_row(table, "cold init p50", reports, "init_ms", "p50", nested="cold")
    if any(r["warm"]["count"] for r in reports):
        table.add_row("warm calls", *[str(r["warm"]["count"]) for r in reports])
        _lat_row(table, "warm service p50", reports, "service_ms", "p50", nested="warm")
        _lat_row(table, "warm service p99", reports, "service_ms", "p99", nested="warm")
    table.add_row("instances", *[str(r["instances"]) for r in reports])
    return table


CSV_FIELDS = ("target", "seq", "due_unix", "sent_unix", "done_unix", "latency_ms", "service_ms",
              "status", "error", "handler_ms", "network_ms", "init_ms", "cold", "instance", "bytes")


def write_csv(path: Path | str, stats: Iterable[Stats], wall_offset: float) -> int:
    """One row per request, every endpoint in one file; returns the number of rows."""
    rows = 0
    try:
        with open(path, "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(CSV_FIELDS)
            for s in stats:
                for r in sorted(s.results or [], key=lambda r: r.seq):
                    writer.writerow([
                        s.name, r.seq, f"{r.due + wall_offset:.6f}", f"{r.sent + wall_offset:.6f}",
                        f"{r.done + wall_offset:.6f}", f"{r.latency_ms:.3f}", f"{r.service_ms:.3f}",
                        "" if r.status is None else r.status, r.error or "",
                        "" if r.handler_ms is None else f"{r.handler_ms:.3f}",
                        "" if r.network_ms is None else f"{r.network_ms:.3f}",
                        "" if r.init_ms is None else f"{r.init_ms:.3f}",
                        "" if r.cold is None else int(r.cold), r.instance or "", r.size])
                    rows += 1
    except OSError as exc:
        raise BadInput(f"cannot write --csv {path}: {exc.strerror}")
    return rows


def _when(ts: float) -> str:
    return _dt.datetime.fromtimestamp(ts, _dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")


def history_table(target: str, runs: list[dict]) -> Table:
    """Runs over time; a changed artifact sha256 is marked, so a redeploy's effect stands out."""
    table = Table(box=box.SIMPLE_HEAD, title=f"monitor history: {target}", title_justify="left")
    for col in ("started (UTC)", "secs", "requests", "rate", "p50", "p95", "p99", "max", "errors",
                "avail", "cold", "cold p50", "inst", "artifact"):
        table.add_column(col, justify="left" if col in ("started (UTC)", "artifact") else "right")
    previous = None
    for run in runs:
        sha = (run["artifact_sha256"] or "")[:12]
        changed = previous is not None and sha != previous
        previous = sha
        table.add_row(
            _when(run["started_at"]), f"{run['duration_s']:.0f}", str(run["requests"]),
            format_rate(run["achieved_rate"] or 0.0), format_ms(run["p50"]), format_ms(run["p95"]),
            format_ms(run["p99"]), format_ms(run["max"]), f"{run['errors']} ({run['error_pct']:.2f}%)",
            f"{run['availability_pct']:.2f}%", str(run["cold"]), format_ms(run["cold_p50"]),
            str(run["instances"]), (sha or "-") + (" (redeployed)" if changed else ""))
    return table


def history_json(target: str, runs: list[dict]) -> dict:
    return {"target": target, "runs": [{**{k: v for k, v in r.items() if k != "report"},
                                        "started_at_iso": _when(r["started_at"]),
                                        "errors_by_kind": (r.get("report") or {}).get("errors", {}).get("by_kind", {})}
                                       for r in runs]}
