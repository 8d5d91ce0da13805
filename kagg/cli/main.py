"""The ``kagg`` command group and its entry point: global options, one-line errors, exit codes.

Errors from the library are :class:`kagg.errors.KaggError`; :func:`main`
prints them as one line ``Error: ...`` and exits with their code (2 bad input,
1 failed operation). Tracebacks only with ``--debug`` or ``KAGG_DEBUG=1``.
Heavy modules (rich, cloud SDKs, nbformat) are imported inside commands so
``kagg --help`` starts fast.
"""

from __future__ import annotations

import os
import sys
import traceback
from typing import Optional

import click

from kagg import __version__
from kagg.errors import KaggError

_debug = {"on": os.environ.get("KAGG_DEBUG") == "1"}


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "--version", "-V", prog_name="kagg")
@click.option("--registry", type=click.Path(dir_okay=False), envvar="KAGG_REGISTRY",
              help="Registry file (default ./endpoints.json, or $KAGG_REGISTRY).")
@click.option("--debug", is_flag=True, help="Show tracebacks.")
@click.pass_context
def cli(ctx: click.Context, registry: Optional[str], debug: bool) -> None:
    """Turn Jupyter notebooks into HTTP functions and deploy them.

    \b
      kagg deploy model.ipynb            serve it locally (no cloud account needed)
      kagg invoke model '{"x": 1}'       call it
      kagg deploy model.ipynb --aws      AWS Lambda + function URL
      kagg batch list.csv --parallel     many deploys at once
      kagg monitor model                 latency percentiles, errors, cold starts
    """
    from kagg.registry import Registry

    if debug:
        _debug["on"] = True
    ctx.obj = {"registry": Registry(registry)}


def _add_commands() -> None:
    """One module per command group; each defines its commands, this group gathers them."""
    from kagg.cli import batch, deploy, endpoints, invoke, monitor, notebook

    for command in (deploy.deploy, deploy.delete, deploy.logs, deploy.serve, notebook.convert,
                    notebook.preprocess, invoke.invoke, endpoints.endpoints, endpoints.providers,
                    batch.batch, monitor.monitor):
        cli.add_command(command)


_add_commands()


def main(argv: Optional[list[str]] = None) -> None:
    """Entry point of the ``kagg`` console script: one-line errors, exit codes 0/1/2."""
    try:
        rv = cli.main(args=argv, prog_name="kagg", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except (KeyboardInterrupt, click.exceptions.Abort):
        sys.stderr.write("Interrupted.\n")
        sys.exit(130)
    except KaggError as exc:
        if _debug["on"]:
            traceback.print_exc()
        sys.stderr.write(f"Error: {exc.message}\n")
        sys.exit(exc.exit_code)
    except BrokenPipeError:
        sys.exit(1)
    except Exception as exc:  # a bug: say so in one line unless debugging
        if _debug["on"]:
            raise
        sys.stderr.write(f"Error: unexpected {type(exc).__name__}: {exc} (run with --debug for the traceback)\n")
        sys.exit(1)
    sys.exit(rv if isinstance(rv, int) else 0)
