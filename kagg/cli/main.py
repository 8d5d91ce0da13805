"""The ``kagg`` command group and its entry point: global options, one-line errors, exit codes.

Errors from the library are :class:`kagg.errors.KaggError`; :func:`main`
prints them as one line ``Error: ...`` and exits with their code (2 bad input,
1 failed operation). Tracebacks only with ``--debug`` or ``KAGG_DEBUG=1``.
With ``--json`` the error is also printed on stdout as ``{"error": {"type", "message"}}``
(unless the command already printed its JSON there), for every command that has ``--json``.
The global options ``--registry`` and ``--debug`` are accepted before or after the
subcommand (docs/architecture.md, "Exit codes"; ../shared/ARCHITECTURE.md §8).
Heavy modules (rich, cloud SDKs, nbformat) are imported inside commands so
``kagg --help`` starts fast.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from typing import Any, Optional

import click

from kagg import __version__
from kagg.errors import BadInput, KaggError

_debug = {"on": os.environ.get("KAGG_DEBUG") == "1"}

REGISTRY_HELP = "Registry file (default ./endpoints.json, or $KAGG_REGISTRY)."
DEBUG_HELP = "Show tracebacks."


def _absolute(path: str):
    """The registry path as the user meant it, made absolute (symlinks are kept: the registry
    resolves them itself), so every message names the file without doubt."""
    from pathlib import Path

    return Path(path).expanduser().absolute()


def _use_registry(ctx: click.Context, path: str, given: bool) -> None:
    """Make ``path`` the registry of this run; ``given``: it came from a ``--registry`` option."""
    from kagg.registry import Registry

    root = ctx.find_root()
    if not isinstance(root.obj, dict):
        root.obj = {}
    chosen = _absolute(path)
    before = root.obj.get("registry_option")
    if given and before is not None and before != chosen:
        raise BadInput(f"--registry given twice, as {before} and as {chosen}; give it once")
    root.obj["registry"] = Registry(chosen)
    if given:
        root.obj["registry_option"] = chosen


def _registry_after_command(ctx: click.Context, param: click.Parameter, value: Optional[str]) -> None:
    """``--registry`` given after a subcommand: the same as before it."""
    if value is not None and not ctx.resilient_parsing:
        _use_registry(ctx, value, given=True)


def _debug_after_command(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        _debug["on"] = True


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
             epilog="Global options (--registry, --debug) go before or after the command.")
@click.version_option(__version__, "--version", "-V", prog_name="kagg")
@click.option("--registry", type=click.Path(dir_okay=False), envvar="KAGG_REGISTRY", help=REGISTRY_HELP)
@click.option("--debug", is_flag=True, help=DEBUG_HELP)
@click.pass_context
def cli(ctx: click.Context, registry: Optional[str], debug: bool) -> None:
    """Turn Jupyter notebooks into HTTP functions and deploy them.

    \b
      kagg deploy model.ipynb            serve it locally (no cloud account needed)
      kagg invoke model '{"x": 1}'       call it
      kagg deploy model.ipynb --aws      AWS Lambda + function URL (also --gcp, --azure)
      kagg batch list.csv --parallel     many deploys at once
      kagg monitor model                 latency percentiles, errors, cold starts
      kagg run train.ipynb --kaggle      train on a Kaggle GPU, download the outputs
      kagg jobs start model              the same from a deployed endpoint (POST /jobs)
    """
    from kagg.registry import default_path

    if debug:
        _debug["on"] = True
    given = registry is not None and ctx.get_parameter_source("registry") == click.core.ParameterSource.COMMANDLINE
    _use_registry(ctx, registry if registry is not None else str(default_path()), given)


def _subcommands(command: click.Command) -> list[click.Command]:
    """A command's own subcommands: a group's, and those of a command that dispatches its first
    word itself (``monitor history``)."""
    found = list(command.commands.values()) if isinstance(command, click.Group) else []
    extra = getattr(command, "subcommands", None)
    if isinstance(extra, dict):
        found += [c for c in extra.values() if isinstance(c, click.Command)]
    return found


def _add_global_options(command: click.Command) -> None:
    """``--registry`` and ``--debug`` on ``command`` and every command below it."""
    taken = {opt for param in command.params for opt in getattr(param, "opts", ())}
    if "--registry" not in taken:
        command.params.append(click.Option(["--registry"], type=click.Path(dir_okay=False), expose_value=False,
                                           callback=_registry_after_command, help=REGISTRY_HELP))
    if "--debug" not in taken:
        command.params.append(click.Option(["--debug"], is_flag=True, expose_value=False,
                                           callback=_debug_after_command, help=DEBUG_HELP))
    for sub in _subcommands(command):
        _add_global_options(sub)


def _add_commands() -> None:
    """One module per command group; each defines its commands, this group gathers them."""
    from kagg.cli import batch, deploy, endpoints, invoke, monitor, notebook
    from kagg.cli import kaggle as kaggle_commands, run as run_command
    from kagg.cli import jobs as jobs_commands

    for command in (deploy.deploy, deploy.delete, deploy.logs, deploy.serve, notebook.convert,
                    notebook.preprocess, invoke.invoke, endpoints.endpoints, endpoints.providers,
                    batch.batch, monitor.monitor, run_command.run, kaggle_commands.kaggle,
                    jobs_commands.jobs):
        _add_global_options(command)
        cli.add_command(command)


_add_commands()


# -- errors as JSON for --json ---------------------------------------------------------------------
class _WatchedStdout:
    """sys.stdout, noting whether anything was written: a command that printed its JSON and then
    failed (a batch item, a monitor alert) must not get a second JSON document after it."""

    def __init__(self, stream: Any):
        self._stream = stream
        self.written = False

    def write(self, text: Any) -> Any:
        if text:
            self.written = True
        return self._stream.write(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _protected(ctx: click.Context) -> list[str]:
    """A group context's subcommand words (click 8.2+ keeps them in ``_protected_args``)."""
    held = ctx.__dict__.get("_protected_args", ctx.__dict__.get("protected_args"))
    return list(held or [])


def _wants_json(args: list[str]) -> bool:
    """Whether the command that ``args`` name was given its own ``--json`` option: the words are
    parsed as click parses them, down to the (sub)command they name."""
    def before_separator(words: list[str]) -> list[str]:
        return words[:words.index("--")] if "--" in words else words

    if "--json" not in before_separator(args):
        return False
    try:
        ctx = cli.make_context("kagg", list(args), resilient_parsing=True)
        words = list(args)
        while isinstance(ctx.command, click.Group):
            rest = _protected(ctx) + list(ctx.args)
            if not rest:
                break
            name, command, words = ctx.command.resolve_command(ctx, rest)
            if command is None:
                break
            ctx = command.make_context(name or "", list(words), parent=ctx, resilient_parsing=True)
    except Exception:  # the words do not even parse: judge by the words
        return True
    if ctx.params.get("as_json"):
        return True
    # a usage error stops click's parsing early: then the command's own words decide
    has_option = any("--json" in getattr(p, "opts", ()) for p in ctx.command.params)
    return has_option and "--json" in before_separator(list(words))


def _json_error(args: list[str], watched: Optional[_WatchedStdout], kind: str, message: str) -> None:
    """``{"error": {"type", "message"}}`` on stdout when the command was given ``--json`` and
    printed nothing there yet."""
    if watched is None or watched.written or not _wants_json(args):
        return
    try:
        sys.stdout.write(json.dumps({"error": {"type": kind, "message": message}}) + "\n")
        sys.stdout.flush()
    except (OSError, ValueError):
        pass


def main(argv: Optional[list[str]] = None) -> None:
    """Entry point of the ``kagg`` console script: one-line errors, exit codes 0/1/2."""
    args = list(sys.argv[1:] if argv is None else argv)
    watched = None
    real_stdout = sys.stdout
    if "--json" in args and real_stdout is not None:
        watched = _WatchedStdout(real_stdout)
        sys.stdout = watched  # type: ignore[assignment]
    try:
        rv = cli.main(args=args, prog_name="kagg", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        _restore(real_stdout, watched)
        _json_error(args, watched, "BadInput" if exc.exit_code == 2 else "OperationFailed", exc.format_message())
        sys.exit(exc.exit_code)
    except (KeyboardInterrupt, click.exceptions.Abort):
        sys.stderr.write("Interrupted.\n")
        _restore(real_stdout, watched)
        _json_error(args, watched, "Interrupted", "interrupted")
        sys.exit(130)
    except KaggError as exc:
        if _debug["on"]:
            traceback.print_exc()
        sys.stderr.write(f"Error: {exc.message}\n")
        _restore(real_stdout, watched)
        _json_error(args, watched, type(exc).__name__, exc.message)
        sys.exit(exc.exit_code)
    except BrokenPipeError:
        sys.exit(1)
    except Exception as exc:  # a bug: say so in one line unless debugging
        if _debug["on"]:
            raise
        message = f"unexpected {type(exc).__name__}: {exc} (run with --debug for the traceback)"
        sys.stderr.write(f"Error: {message}\n")
        _restore(real_stdout, watched)
        _json_error(args, watched, "InternalError", message)
        sys.exit(1)
    finally:
        _restore(real_stdout, watched)
    sys.exit(rv if isinstance(rv, int) else 0)


def _restore(real_stdout: Any, watched: Optional[_WatchedStdout]) -> None:
    if watched is not None and sys.stdout is watched:
        sys.stdout = real_stdout
