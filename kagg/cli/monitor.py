"""``kagg monitor NAME|URL ...`` and ``kagg monitor history NAME``: parse, call, print.

The measuring lives in :mod:`kagg.monitor`; this module turns options into a
:class:`~kagg.monitor.MonitorOptions`, chooses the output (live view on a terminal, plain
lines otherwise, ``--json``), and maps a fired alert to exit 1.
"""

from __future__ import annotations

import json
import sys
from typing import Optional

import click

from kagg import __version__
from kagg.cli.common import registry_of
from kagg.errors import BadInput, NotFound, OperationFailed
from kagg.monitor.units import duration_forms
from kagg.urls import is_url, redact_url

PROGRESS_EVERY = 5.0  # seconds between plain progress lines when not on a terminal


def _stdout_console():
    """Tables on stdout; when piped, wide enough that columns are not cut to 80 characters."""
    from rich.console import Console

    return Console(soft_wrap=False, width=None if sys.stdout.isatty() else 200)


class _MonitorCommand(click.Command):
    """A command that also has subcommands: ``monitor history NAME`` next to ``monitor NAME``.

    A click group cannot take a variable number of targets before its subcommand, so the
    first word decides: a known subcommand name is dispatched, anything else is a target.
    """

    def __init__(self, *args, subcommands: Optional[dict[str, click.Command]] = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.subcommands = subcommands or {}

    def make_context(self, info_name, args, parent=None, **extra):
        if args and args[0] in self.subcommands:
            sub = self.subcommands[args[0]]
            return sub.make_context(f"{info_name} {args[0]}", list(args[1:]), parent=parent, **extra)
        return super().make_context(info_name, args, parent=parent, **extra)

    def invoke(self, ctx: click.Context):
        if ctx.command is not self:
            return ctx.command.invoke(ctx)
        return super().invoke(ctx)


@click.command("history")
@click.argument("name")
@click.option("--since", default="24h", show_default=True,
              help=f"How far back: {duration_forms()}, such as 30m, 24h or 7d.")
@click.option("--json", "as_json", is_flag=True, help="Print the runs as JSON.")
@click.pass_context
def history(ctx: click.Context, name: str, since: str, as_json: bool) -> None:
    """Show past monitor runs of NAME (or URL): percentiles, errors, cold starts, redeploys.

    A NAME that is neither in the registry nor in the history is an error (exit 2).
    """
    from kagg.monitor.history import History
    from kagg.monitor.report import history_json, history_table
    from kagg.monitor.units import parse_duration

    window = parse_duration(since, "--since")
    registry = registry_of(ctx)
    store = History(registry.state_dir)
    if is_url(name):
        name = redact_url(name)  # runs of a URL are recorded under its redacted form
    runs = store.runs(name, window)
    if not runs and not store.has_runs(name):
        known = store.targets()
        hint = f"; runs exist for: {', '.join(known)}" if known else ""
        if is_url(name):
            raise NotFound(f"no monitor runs of {name} in {store.path}{hint}")
        if registry.find(name) is None:
            raise NotFound(f"no endpoint named {name!r} in {registry.path} and no monitor runs of it in "
                           f"{store.path}{hint}; see `kagg endpoints list`")
    if as_json:
        click.echo(json.dumps(history_json(name, runs), indent=2))
        return
    if not runs:
        known = store.targets()
        hint = f"; runs exist for: {', '.join(known)}" if known and name not in known else ""
        click.echo(f"no monitor runs of {name} in the last {since} ({store.path}){hint}")
        return
    _stdout_console().print(history_table(name, runs))


@click.command("monitor", cls=_MonitorCommand, subcommands={"history": history},
               epilog="History of past runs: kagg monitor history NAME [--since 24h] [--json]")
@click.argument("targets", nargs=-1, metavar="NAME|URL...")
@click.option("--duration", help="How long to probe: 60s, 2m, 1h.  [default: 60s]")
@click.option("--count", type=click.IntRange(min=1), help="Send exactly N requests per endpoint instead.")
@click.option("--rate", default="5/s", show_default=True, help="Requests per endpoint: 5/s, 300/m.")
@click.option("--concurrency", type=click.IntRange(min=1), default=64, show_default=True,
              help="Most requests in flight per endpoint.")
@click.option("--timeout", default="10s", show_default=True,
              help="Total time each request may take, to the last byte of its answer.")
@click.option("--follow-redirects", is_flag=True,
              help="Follow 3xx answers (by default a redirect counts as an error).")
@click.option("--method", help="HTTP method.  [default: POST, or GET with --health]")
@click.option("--payload", help="JSON object to send (or @file.json).  [default: the /schema defaults]")
@click.option("--health", is_flag=True, help="Probe GET /health instead of the function.")
@click.option("--jobs", is_flag=True,
              help="Probe GET /jobs?limit=1 (train notebooks; each probe asks Kaggle: keep --rate low).")
@click.option("--alert", "alerts", multiple=True, metavar="EXPR",
              help="Exit 1 if crossed: 'p95>300ms', 'errors>1%', 'availability<99.9%'. Repeatable.")
@click.option("--webhook", metavar="URL", help="POST fired alerts to URL as JSON.")
@click.option("--json", "as_json", is_flag=True, help="Print the final report as JSON.")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False), help="Write one row per request.")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False),
              help="Write latency over time and a histogram (PNG; needs kagg[plot]).")
@click.option("--no-history", is_flag=True, help="Do not record this run in the history.")
@click.pass_context
def monitor(ctx: click.Context, targets: tuple[str, ...], duration: Optional[str], count: Optional[int],
            rate: str, concurrency: int, timeout: str, follow_redirects: bool, method: Optional[str],
            payload: Optional[str],
            health: bool, jobs: bool, alerts: tuple[str, ...], webhook: Optional[str], as_json: bool,
            csv_path: Optional[str], plot_path: Optional[str], no_history: bool) -> None:
    """Probe endpoints on an open-loop schedule: latency percentiles, errors, cold starts.

    Latency is counted from each request's due time, so a stall shows in the percentiles
    instead of lowering the request rate. Several endpoints are probed side by side.
    """
    from kagg.monitor import alerts as _alerts
    from kagg.monitor.runner import MonitorOptions, resolve_targets
    from kagg.monitor.target import parse_payload
    from kagg.monitor.units import parse_duration, parse_rate

    if duration is not None and count is not None:
        raise BadInput("give --duration or --count, not both")
    options = MonitorOptions(
        rate=parse_rate(rate), duration=parse_duration(duration or "60s", "--duration"), count=count,
        concurrency=concurrency, timeout=parse_duration(timeout, "--timeout"), method=method,
        payload=parse_payload(payload), health=health, keep_results=bool(csv_path or plot_path),
        follow_redirects=follow_redirects, jobs=jobs)
    if health and payload is not None:
        raise BadInput("--health probes GET /health; it takes no --payload")
    if jobs and (health or payload is not None):
        raise BadInput("--jobs probes GET /jobs?limit=1; it takes neither --health nor --payload")
    parsed_alerts = _alerts.parse_alerts(alerts)
    if webhook and not parsed_alerts:
        raise BadInput("--webhook needs at least one --alert")
    if webhook and not is_url(webhook):
        raise BadInput(f"--webhook {redact_url(webhook)!r} is not an http:// or https:// URL")
    if plot_path:
        from kagg.monitor.plot import require

        require()
    registry = registry_of(ctx)
    resolved = resolve_targets(list(targets), registry)
    run = _run_with_output(resolved, options)
    _finish(run, resolved, options, registry, parsed_alerts, webhook, as_json, csv_path, plot_path,
            no_history)


def _run_with_output(targets, options):
    """Live view on a terminal (stderr, so stdout stays the report), plain lines otherwise."""
    from rich.console import Console
    from rich.live import Live

    from kagg.monitor.report import live_view, progress_line
    from kagg.monitor.runner import run

    err = Console(stderr=True)
    span = options.schedule().span

    def warn(message: str) -> None:
        click.echo(f"warning: {message}", err=True)

    if err.is_terminal:
        with Live(console=err, auto_refresh=False, transient=False) as live:
            def warn_live(message: str) -> None:
                live.console.print(f"warning: {message}", markup=False, highlight=False)

            return run(targets, options, warn=warn_live,
                       on_tick=lambda stats, elapsed: live.update(live_view(stats, elapsed, span), refresh=True))
    last = [0.0]

    def plain(stats, elapsed: float) -> None:
        if elapsed - last[0] >= PROGRESS_EVERY - 1e-3:
            last[0] = elapsed
            for s in stats:
                click.echo(progress_line(s, elapsed), err=True)

    return run(targets, options, on_tick=plain, warn=warn)


def _finish(run, targets, options, registry, parsed_alerts, webhook, as_json, csv_path, plot_path,
            no_history) -> None:
    """Write the outputs and history, then turn fired alerts into exit 1."""
    from kagg.monitor import alerts as _alerts
    from kagg.monitor.history import History
    from kagg.monitor.report import final_table, write_csv

    reports = run.reports()
    checks = _alerts.evaluate(parsed_alerts, reports)
    fired = [c for c in checks if c["fired"]]
    if csv_path:
        rows = write_csv(csv_path, run.stats, run.wall_offset)
        click.echo(f"wrote {rows} request row{'' if rows == 1 else 's'} to {csv_path}", err=True)
    if plot_path:
        from kagg.monitor.plot import write_plot

        write_plot(plot_path, run.stats)
        click.echo(f"wrote the latency plot to {plot_path}", err=True)
    if not no_history:
        store = History(registry.state_dir)
        for target, report in zip(targets, reports):
            endpoint = target.endpoint
            store.record(report, run.started_at, sum(1 for c in fired if c["endpoint"] == report["target"]),
                         endpoint.artifact_sha256 if endpoint else None,
                         endpoint.updated_at if endpoint else None)
    if as_json:
        doc = {"kagg_version": __version__, "started_at": run.started_at, "interrupted": run.interrupted,
               "options": {"rate": options.rate, "duration_s": None if options.count else options.duration,
                           "count": options.count, "concurrency": options.concurrency,
                           "timeout_s": options.timeout, "health": options.health,
                           "follow_redirects": options.follow_redirects},
               "endpoints": reports, "alerts": checks, "alerts_fired": len(fired)}
        click.echo(json.dumps(doc, indent=2))
    else:
        _stdout_console().print(final_table(reports, options.follow_redirects))
    if run.interrupted:
        click.echo("interrupted: the report covers the requests sent so far", err=True)
    if not fired:
        return
    for check in fired:
        click.echo(f"ALERT {_alerts.describe(check)}", err=True)
    if webhook:
        problem = _alerts.post_webhook(webhook, fired, reports)
        if problem:
            click.echo(f"warning: {problem}", err=True)
    raise OperationFailed(f"{len(fired)} alert{'s' if len(fired) > 1 else ''} fired: "
                          + "; ".join(_alerts.describe(c) for c in fired))
