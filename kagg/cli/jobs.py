"""``kagg jobs ...``: the Kaggle training jobs of a deployed endpoint (its ``/jobs``), signed like
``kagg invoke``. Parse, call :mod:`kagg.jobs_client`, print; docs/jobs.md."""

from __future__ import annotations

from typing import Any, Optional

import click

from kagg.cli.common import parse_seconds, registry_of


def _client(ctx: click.Context, target: str, timeout_text: str = "60s", retry_s: float = 120.0) -> Any:
    from kagg.jobs_client import JobsClient

    return JobsClient(target, registry_of(ctx), timeout=parse_seconds(timeout_text, "--timeout"), retry_s=retry_s)


def _print_status(state: Any, as_json: bool) -> None:
    from dataclasses import asdict

    from kagg.output import print_json

    if as_json:
        print_json(asdict(state))
        return
    click.echo(f"{state.id}: {state.status}" + (f" ({state.failure})" if state.failure else ""))
    if state.started_at or state.finished_at:
        click.echo(f"  started {state.started_at or '-'}, finished {state.finished_at or '-'}")
    for item in state.outputs:
        size = item.get("size")
        click.echo(f"  {item.get('name')}" + (f"  {size} bytes" if size is not None else ""))


@click.group("jobs")
def jobs() -> None:
    """Kaggle training jobs of a deployed endpoint (a notebook with `train` cells).

    \b
      kagg jobs start NAME -p lr=0.01 --wait   push a training run, wait for it
      kagg jobs status NAME ID                 where it is; its outputs once done
      kagg jobs logs NAME ID -f                its log, as it grows
      kagg jobs output NAME ID -o DIR          download its outputs
      kagg jobs list NAME                      this endpoint's recent jobs
      kagg jobs stop NAME ID                   stop it (deletes the kernel)
    """


@jobs.command("start")
@click.argument("target", metavar="NAME|URL")
@click.option("--param", "-p", "params", multiple=True, metavar="NAME=VALUE",
              help="A train parameter (repeatable); JSON values are typed (-p epochs=3).")
@click.option("--key", metavar="KEY", help="Idempotency-Key: the same key never starts a second job.")
@click.option("--wait", "wait", is_flag=True, help="Poll until the job ends; exit 1 unless it completes.")
@click.option("--timeout", "timeout_text", default="60s", show_default=True, metavar="DURATION",
              help="How long each call to the endpoint may take.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_context
def start(ctx: click.Context, target: str, params: tuple[str, ...], key: Optional[str], wait: bool,
          timeout_text: str, as_json: bool) -> None:
    """Start a training job on the endpoint NAME; prints its id."""
    from kagg.errors import OperationFailed
    from kagg.jobs_client import parse_params
    from kagg.output import print_json

    client = _client(ctx, target, timeout_text)
    started = client.start(parse_params(params), key=key)
    job_id = started["id"]
    if not wait:
        if as_json:
            print_json(started)
        else:
            click.echo(job_id)
            click.echo(f"  follow: kagg jobs status {target} {job_id}", err=True)
        return
    click.echo(f"started {job_id}", err=True)
    state = client.wait(job_id, on_status=lambda s: click.echo(f"  {s.status}", err=True))
    _print_status(state, as_json)
    if state.status != "complete":
        raise OperationFailed(f"job {job_id} ended {state.status}: {state.failure or 'see kagg jobs logs'}")


@jobs.command("status")
@click.argument("target", metavar="NAME|URL")
@click.argument("job_id", metavar="ID")
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
@click.pass_context
def status(ctx: click.Context, target: str, job_id: str, as_json: bool) -> None:
    """The status of job ID (and its outputs once it has ended)."""
    _print_status(_client(ctx, target).status(job_id), as_json)


@jobs.command("logs")
@click.argument("target", metavar="NAME|URL")
@click.argument("job_id", metavar="ID")
@click.option("--follow", "-f", is_flag=True, help="Keep printing the log until the job ends.")
@click.pass_context
def logs(ctx: click.Context, target: str, job_id: str, follow: bool) -> None:
    """The log of job ID so far."""
    client = _client(ctx, target)
    if follow:
        client.follow_logs(job_id, lambda text: click.echo(text, nl=False))
        return
    click.echo(client.logs(job_id).get("log") or "", nl=False)


@jobs.command("list")
@click.argument("target", metavar="NAME|URL")
@click.option("--limit", type=int, default=20, show_default=True, help="How many (1-100).")
@click.option("--json", "as_json", is_flag=True, help="Print the list as JSON.")
@click.pass_context
def list_jobs(ctx: click.Context, target: str, limit: int, as_json: bool) -> None:
    """This endpoint's recent jobs, newest first."""
    from kagg.output import print_json

    rows = _client(ctx, target).list(limit)
    if as_json:
        print_json(rows)
        return
    for row in rows:
        click.echo(f"{row.get('id')}  {row.get('last_run') or ''}".rstrip())
    if not rows:
        click.echo("no jobs yet: kagg jobs start NAME", err=True)


@jobs.command("output")
@click.argument("target", metavar="NAME|URL")
@click.argument("job_id", metavar="ID")
@click.option("--output", "-o", "out_dir", default=".", show_default=True, metavar="DIR",
              help="Where to write the files.")
@click.pass_context
def output(ctx: click.Context, target: str, job_id: str, out_dir: str) -> None:
    """Download the outputs of job ID (from the links Kaggle gives)."""
    files = _client(ctx, target).download(job_id, out_dir)
    for item in files:
        click.echo(f"{item.path}  {item.size} bytes")
    click.echo(f"{len(files)} file(s) in {out_dir}", err=True)


@jobs.command("stop")
@click.argument("target", metavar="NAME|URL")
@click.argument("job_id", metavar="ID")
@click.pass_context
def stop(ctx: click.Context, target: str, job_id: str) -> None:
    """Stop job ID: Kaggle has no cancel call, so its kernel is deleted (with its outputs)."""
    _client(ctx, target).stop(job_id)
    click.echo(f"stopped {job_id} (its Kaggle kernel was deleted)")
