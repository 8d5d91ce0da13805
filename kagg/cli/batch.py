"""``kagg batch LIST``: parse the options, call :func:`kagg.batch.run_batch`, print. Nothing else."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Optional

import click

from kagg.batch import FORMATS, OPERATIONS
from kagg.cli.common import chosen_provider, provider_options, registry_of
from kagg.errors import BadInput, KaggError, OperationFailed

#: ``--parallel`` without a number
DEFAULT_PARALLEL = 8
_AUTO = "auto"


class _Word(str):
    """A word that click gave to ``--parallel`` but that is not a number: the LIST argument."""


class _ParallelType(click.ParamType):
    """``--parallel`` takes an optional N; ``--parallel list.csv`` must still mean the list."""

    name = "N"

    def convert(self, value, param, ctx):
        if isinstance(value, int):
            return value
        text = str(value).strip()
        if text == _AUTO:
            return _AUTO
        if text.lstrip("-").isdigit():
            if int(text) < 1:
                self.fail(f"{text} is not 1 or more", param, ctx)
            return int(text)
        return _Word(text)


def _provider(kwargs: dict) -> Optional[str]:
    """The default provider for rows without one; None when no option chose one."""
    chosen = chosen_provider(kwargs, default=None)
    if chosen is None:
        return None
    from kagg.providers import available

    if chosen not in available():
        raise BadInput(f"unknown provider {chosen!r}; available: {', '.join(available())}")
    return chosen


def _caps(values: tuple[str, ...]) -> dict[str, int]:
    """``--max-per-provider N`` (every provider) or ``NAME=N`` (one), repeatable."""
    caps: dict[str, int] = {}
    for value in values:
        name, sep, number = value.rpartition("=")
        if not number.isdigit() or int(number) < 1 or (sep and not name):
            raise BadInput(f"--max-per-provider {value!r}: give N or PROVIDER=N with N of 1 or more")
        caps[name if sep else "*"] = int(number)
    return caps


def _payload(text: Optional[str]) -> tuple[object, bool]:
    if text is None:
        return None, False
    from kagg.invoke import load_payload

    return load_payload(None, text), True


@click.command("batch")
@click.argument("list_file", metavar="LIST", required=False)
@click.option("--format", "fmt", type=click.Choice(FORMATS), help="Format of LIST (default: from its extension).")
@click.option("--operation", type=click.Choice(OPERATIONS), default="deploy", show_default=True,
              help="What to do with each item.")
@provider_options(help="Default provider for items without a provider column.")
@click.option("--region", help="Default region.")
@click.option("--memory", type=click.IntRange(min=1), help="Default memory in MB.")
@click.option("--timeout", type=click.IntRange(min=1), help="Default timeout in seconds.")
@click.option("--entry", help="Default handler function name.")
@click.option("--public/--private", default=None, help="Default access of the endpoints.")
@click.option("--env", "env_pairs", multiple=True, metavar="K=V", help="Default environment variable (repeatable).")
@click.option("--payload", help="Default JSON payload for --operation invoke (or @file.json).")
@click.option("--force", is_flag=True, help="Redeploy unchanged artifacts too.")
@click.option("--allow-secrets", is_flag=True, help="Deploy notebooks even if credentials are found in them.")
@click.option("--parallel", type=_ParallelType(), is_flag=False, flag_value=_AUTO, default=None,
              help=f"Run up to N items at once (N defaults to {DEFAULT_PARALLEL}; without the option: one at a time).")
@click.option("--max-per-provider", "caps", multiple=True, metavar="N|PROVIDER=N",
              help="At most N items at once per provider (repeatable, e.g. aws=2; kaggle is 2 unless set).")
@click.option("--retries", type=click.IntRange(0, 20), default=2, show_default=True,
              help="Extra attempts for an item that fails with a transient error.")
@click.option("--backoff", type=click.FloatRange(0, 300), default=1.0, show_default=True,
              help="Seconds before the first retry; doubles each retry, with jitter.")
@click.option("--fail-fast", is_flag=True, help="Start no new item after the first failure.")
@click.option("--resume", is_flag=True, help="Run only the items not done by the last run of this list.")
@click.option("-o", "--output", "out_dir", type=click.Path(file_okay=False), help="Folder for convert/download.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--report", "report_path", type=click.Path(dir_okay=False), help="Write the report (.json, .csv or .txt).")
@click.pass_context
def batch(ctx: click.Context, list_file, fmt, operation, region,
          memory, timeout, entry, public, env_pairs, payload, force, allow_secrets, parallel, caps, retries,
          backoff, fail_fast, resume, out_dir, as_json, report_path, **provider_flags):
    """Deploy (or delete, convert, download, invoke, run on Kaggle) every notebook listed in LIST.

    LIST is a CSV file with a header (notebook, name, provider, region, memory,
    timeout, entry, public, env, payload), a JSON list of such objects (or
    {"defaults": {...}, "items": [...]}), or a text file with one notebook per
    line. Options give defaults that a row overrides. The whole list is checked
    before anything is done.
    """
    from kagg.batch.report import dump_json, make_display, print_summary, write_report
    from kagg.batch.runner import RunOptions
    from kagg.batch.session import BatchRequest, run_batch
    from kagg.batch.spec import BatchInputError, Overrides
    from kagg.batch.values import parse_env

    if isinstance(parallel, _Word):
        if list_file is not None:
            raise click.BadParameter(f"{parallel!r} is not a number", param_hint="--parallel")
        list_file, parallel = str(parallel), _AUTO
    if list_file is None:
        raise click.UsageError("Missing argument 'LIST'.")
    env: dict[str, str] = {}
    for pair in env_pairs:  # one K=V each: a value may hold ';'
        key, sep, value = pair.partition("=")
        if not sep:
            raise BadInput(f"--env {pair!r} is not of the form K=V")
        try:
            parse_env({key: value}, "--env")
        except ValueError as exc:
            raise BadInput(str(exc))
        env[key] = value
    payload_value, has_payload = _payload(payload)
    if report_path and Path(report_path).is_dir():
        raise BadInput(f"--report {report_path} is a directory; give a file name")
    overrides = Overrides(
        provider=_provider(provider_flags),
        region=region, memory=memory, timeout=timeout, entry=entry, public=public, env=env,
        payload=payload_value, has_payload=has_payload)
    run = RunOptions(parallel=DEFAULT_PARALLEL if parallel == _AUTO else (parallel or 1),
                     max_per_provider=_caps(caps), retries=retries, backoff=backoff, fail_fast=fail_fast)
    request = BatchRequest(list_file, fmt, operation, overrides, Path(out_dir) if out_dir else None,
                           force, allow_secrets, resume, run)

    tty = sys.stderr.isatty()

    def display_for(jobs):
        return make_display({j.item.index: (j.name, j.item.provider) for j in jobs}, tty)

    def notice(message: str) -> None:
        click.echo(message, err=True)

    try:
        report = run_batch(request, registry_of(ctx), display_for, notice)
    except BatchInputError as exc:
        for problem in exc.problems:
            click.echo(str(problem), err=True)
        raise BadInput(exc.summary(" (listed above)"))
    except KeyboardInterrupt:
        click.echo("interrupted while checking the list; nothing was done", err=True)
        ctx.exit(130)

    if as_json:
        dump_json(report, sys.stdout)
    else:
        print_summary(report, sys.stdout, sys.stdout.isatty())
    sys.stdout.flush()
    report_error: Optional[str] = None
    if report_path:
        try:
            write_report(report, Path(report_path))
        except OSError as exc:
            report_error = f"cannot write the report {report_path}: {exc.strerror}"
    _finish(ctx, report, report_error)


def _finish(ctx: click.Context, report, report_error: Optional[str]) -> None:
    """Exit as docs/architecture.md, "Exit codes" says: 130 after Ctrl-C, 1 if an item failed, else 0."""
    if report.interrupted:
        click.echo(f"interrupted: the state is in {report.state_file}; "
                   "run the same command with --resume to do the rest", err=True)
        if report_error:
            click.echo(f"Error: {report_error}", err=True)
        if report.aborted:  # in-flight items were abandoned: do not wait for their threads
            abandoned = sum(1 for r in report.items if r.detail == "aborted")
            click.echo(f"warning: {abandoned} item(s) were abandoned part-way; a deploy among them is left "
                       "pending in the registry (`kagg endpoints list`): --resume deploys it again, "
                       "`kagg delete NAME` removes what it made", err=True)
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(130)
        ctx.exit(130)
    if report_error:
        raise KaggError(report_error)
    failed, not_run = report.counts["failed"], report.counts["not run"]
    if failed or not_run:
        what = f"{failed} of {len(report.items)} items failed"
        if not_run:
            what += f", {not_run} not run"
        raise OperationFailed(f"{what}; run the same command with --resume to retry only those")
