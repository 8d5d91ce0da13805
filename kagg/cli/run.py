"""``kagg run NB [--kaggle]``: parse, call :mod:`kagg.kaggle.run` (or the local run), print."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Optional

import click

from kagg.cli.common import parse_seconds, registry_of
from kagg.errors import BadInput


def parse_parameters(pairs: tuple[str, ...]) -> dict[str, str]:
    """``-p name=value`` (repeatable) as raw strings; the kernel builder types them."""
    params: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise BadInput(f"-p {pair!r} is not of the form name=value")
        params[name.strip()] = value
    return params


@click.command("run")
@click.argument("notebook", type=click.Path(dir_okay=False))
@click.option("--kaggle", "on_kaggle", is_flag=True, help="Run on Kaggle (without it: run here, the same kernel).")
@click.option("--device", type=click.Choice(["gpu", "cpu"]), default="gpu", show_default=True,
              help="Kaggle session type.")
@click.option("--accelerator", metavar="NAME", help="Kaggle accelerator, e.g. NvidiaTeslaT4 (T4 x2), NvidiaL4.")
@click.option("-p", "--param", "params", multiple=True, metavar="NAME=VALUE", help="Notebook parameter (repeatable).")
@click.option("--dataset", "datasets", multiple=True, metavar="OWNER/SLUG", help="Attach a Kaggle dataset (repeatable).")
@click.option("--competition", metavar="SLUG", help="Attach a competition's data.")
@click.option("--model", "models", multiple=True, metavar="OWNER/MODEL/FRAMEWORK/VARIATION[/VERSION]",
              help="Attach a Kaggle model (repeatable).")
@click.option("--internet/--no-internet", default=False, show_default=True, help="Internet inside the kernel.")
@click.option("--timeout", "timeout_text", metavar="DURATION", help="Session timeout: 30m, 9h (whole seconds).")
@click.option("--resume-from", metavar="JOB|DIR",
              help="Resume from this job's checkpoints (locally: an earlier run's folder).")
@click.option("--force-resume", is_flag=True, help="Use the checkpoints even if they do not match.")
@click.option("--allow-secrets", is_flag=True, help="Build the kernel even if credentials are found in the notebook.")
@click.option("--wait/--no-wait", default=True, help="Follow the run to its end (--no-wait: push and return).")
@click.option("--gpu-wait", "gpu_wait_text", metavar="DURATION",
              help="Longest wait in kagg's queue while the GPU session cap is reached (default: no limit).")
@click.option("-o", "--output", "out_dir", type=click.Path(file_okay=False),
              help="Folder for the outputs (default ./kagg-runs/<job slug>).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_context
def run(ctx: click.Context, notebook: str, on_kaggle: bool, params: tuple[str, ...], timeout_text: Optional[str],
        gpu_wait_text: Optional[str], out_dir: Optional[str], as_json: bool, **kwargs: Any) -> None:
    """Run NOTEBOOK's training as a Kaggle kernel (--kaggle), or here under the same layout.

    \b
      kagg run train.ipynb                     check it here first (no GPU time spent)
      kagg run train.ipynb --kaggle            on a Kaggle GPU; follow it; download outputs
      kagg run train.ipynb --kaggle -p lr=0.01 --resume-from me/kagg-train-...-abc123/v1
    """
    from kagg.cli.run_display import RunDisplay, print_summary
    from kagg.kaggle.run import FollowInterrupted, RunRequest, exit_code
    from kagg.output import print_json

    timeout = int(parse_seconds(timeout_text, "--timeout", whole=True)) if timeout_text else None
    gpu_wait = parse_seconds(gpu_wait_text, "--gpu-wait") if gpu_wait_text else None
    if not on_kaggle:
        used = [flag for flag, given in (("--accelerator", kwargs["accelerator"]), ("--dataset", kwargs["datasets"]),
                                         ("--competition", kwargs["competition"]), ("--model", kwargs["models"]),
                                         ("--no-wait", not kwargs["wait"])) if given]
        if used:
            raise BadInput(f"{', '.join(used)} only apply with --kaggle")
    registry = registry_of(ctx)
    req = RunRequest(notebook=Path(notebook), parameters=parse_parameters(params), timeout_s=timeout,
                     out_dir=Path(out_dir) if out_dir else None, state_dir=registry.state_dir,
                     most_gpu_wait_s=gpu_wait, **kwargs)
    try:
        with RunDisplay() as display:
            if on_kaggle:
                from kagg.kaggle.run import run_on_kaggle

                summary = run_on_kaggle(req, display.events())
            else:
                from kagg.kaggle.here import run_here

                summary = run_here(req, display.events())
    except FollowInterrupted as stop:
        sys.stderr.write(f"{stop.message}\n")
        if as_json:
            print_json({"job": str(stop.job) if stop.job else None, "status": "INTERRUPTED", "ok": False,
                        "message": stop.message})
        sys.stdout.flush()
        raise SystemExit(130)
    if as_json:
        print_json(summary.to_dict())
    else:
        print_summary(summary)
    if exit_code(summary):
        sys.stderr.write(f"Error: {summary.failure or 'the run failed'}\n")
        raise SystemExit(exit_code(summary))
