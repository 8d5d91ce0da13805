"""The ``kagg`` command: parse arguments, call the library, print. Nothing else lives here.

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
from typing import Any, Optional

import click

from kagg import __version__
from kagg.errors import BadInput, KaggError

PROVIDER_FLAGS = ("local", "aws", "gcp", "azure")
_debug = {"on": os.environ.get("KAGG_DEBUG") == "1"}


def _registry(ctx: click.Context):
    return ctx.find_root().obj["registry"]


def _parse_env(pairs: tuple[str, ...]) -> dict[str, str]:
    env = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise BadInput(f"--env {pair!r} is not of the form KEY=VALUE")
        env[key] = value
    return env


def _provider_name(provider: Optional[str], flags: dict[str, bool]) -> str:
    chosen = [name for name in PROVIDER_FLAGS if flags.get(name)]
    if provider:
        chosen.append(provider)
    if len(set(chosen)) > 1:
        raise BadInput(f"choose one provider, not {' and '.join(sorted(set(chosen)))}")
    return chosen[0] if chosen else "local"


def provider_options(func):
    """``--provider NAME`` and its shorthands ``--local --aws --gcp --azure``."""
    for name in reversed(PROVIDER_FLAGS):
        # --gcp/--azure stay accepted (a provider package may register them) but are not advertised
        func = click.option(f"--{name}", f"flag_{name}", is_flag=True, help=f"Shorthand for --provider {name}.",
                            hidden=name in ("gcp", "azure"))(func)
    return click.option("--provider", "-p", metavar="NAME", help="Provider to use (default: local).")(func)


def _flags(kwargs: dict[str, Any]) -> dict[str, bool]:
    return {name: kwargs.pop(f"flag_{name}") for name in PROVIDER_FLAGS}


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


# -- deploy / delete -------------------------------------------------------------------------
@cli.command()
@click.argument("notebook")
@click.option("--name", "-n", help="Endpoint name (default: from the notebook's file name).")
@click.option("--entry", metavar="NAME", help="Handler function name (default: handler).")
@provider_options
@click.option("--port", type=int, help="local: port on 127.0.0.1 (default: keep the old one, else a free one).")
@click.option("--region", help="Cloud region (default: the SDK's configured region).")
@click.option("--memory", type=int, help="Memory in MB.")
@click.option("--timeout", type=int, help="Function timeout in seconds.")
@click.option("--env", "env_pairs", multiple=True, metavar="K=V", help="Environment variable (repeatable).")
@click.option("--role", metavar="ARN", help="aws: execution role (default: one kagg creates once).")
@click.option("--public", is_flag=True, help="Make the URL callable without credentials.")
@click.option("--runtime", help="aws: python3.12 or python3.13.")
@click.option("--arch", help="aws: x86_64 or arm64.")
@click.option("--bucket", help="aws: S3 bucket for artifacts over 50 MB.")
@click.option("--force", is_flag=True, help="Redeploy even if the artifact is unchanged.")
@click.option("--dry-run", is_flag=True, help="Print the plan; change nothing.")
@click.option("--allow-secrets", is_flag=True, help="Deploy even if credentials are found in the notebook.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_context
def deploy(ctx: click.Context, notebook: str, env_pairs: tuple[str, ...], as_json: bool, provider: Optional[str],
           **kwargs: Any) -> None:
    """Deploy NOTEBOOK (a path or URL) and record the endpoint."""
    from kagg.deploy import deploy as do_deploy
    from kagg.model import DeployOptions
    from kagg.output import print_json, progress, warn

    name = _provider_name(provider, _flags(kwargs))
    options = DeployOptions(env=_parse_env(env_pairs), **kwargs)
    with progress() as say:
        result = do_deploy(notebook, name, options, _registry(ctx), progress=say)
    for note in result.notes:
        warn(note)
    if as_json:
        print_json({"status": result.status, "name": result.name, "provider": result.provider,
                    "plan": result.plan.describe(),
                    "endpoint": result.endpoint.to_dict() if result.endpoint else None})
        return
    if result.status == "planned":
        click.echo(f"Plan for {result.name} on {result.provider} (dry run, nothing changed):")
        for step in result.plan.steps:
            click.echo(f"  {'' if step.mutating else '(read) '}{step}")
        if result.plan.unchanged:
            click.echo("  the deployed artifact is already this one: a deploy would skip it (--force redeploys)")
        return
    ep = result.endpoint
    assert ep is not None
    if result.status == "skipped":
        click.echo(f"{result.name}: unchanged, skipped ({ep.url}); use --force to redeploy")
        return
    click.echo(f"{'Updated' if result.status == 'updated' else 'Deployed'} {ep.name} ({ep.provider}) -> {ep.url}")
    if ep.auth == "none" and ep.provider != "local":
        click.echo("  the URL is public: anyone who knows it can call it")
    click.echo(f"  try: kagg invoke {ep.name}")


@cli.command()
@click.argument("name")
@click.option("--purge-role", is_flag=True, help="aws: also delete the execution role kagg created.")
@click.pass_context
def delete(ctx: click.Context, name: str, purge_role: bool) -> None:
    """Delete the endpoint NAME: its resources, then its registry entry."""
    from kagg.deploy import delete as do_delete
    from kagg.model import DeployOptions
    from kagg.output import warn

    for message in do_delete(name, _registry(ctx), DeployOptions(extra={"purge_role": purge_role})):
        warn(message)
    click.echo(f"Deleted {name}")


@cli.command()
@click.argument("name")
@click.option("--follow", "-f", is_flag=True, help="Keep printing new lines.")
@click.pass_context
def logs(ctx: click.Context, name: str, follow: bool) -> None:
    """Show the log of the endpoint NAME."""
    from kagg.providers import get_provider

    registry = _registry(ctx)
    endpoint = registry.get(name)
    provider = get_provider(endpoint.provider, state_dir=registry.state_dir)
    try:
        for line in provider.logs(endpoint, follow=follow):
            click.echo(line, nl=False)
    except KeyboardInterrupt:
        pass


@cli.command()
@click.argument("notebook")
@click.option("--port", type=int, help="Port on 127.0.0.1 (default: a free one).")
@click.option("--entry", metavar="NAME", help="Handler function name (default: handler).")
@click.option("--allow-secrets", is_flag=True, help="Serve even if credentials are found.")
def serve(notebook: str, port: Optional[int], entry: Optional[str], allow_secrets: bool) -> None:
    """Serve NOTEBOOK in the foreground, reloading when the file changes."""
    from kagg.serve import serve as do_serve

    try:
        do_serve(notebook, port=port, entry=entry, allow_secrets=allow_secrets, say=click.echo)
    except KeyboardInterrupt:
        click.echo("Stopped.")


# -- convert / preprocess ----------------------------------------------------------------------
@cli.command()
@click.argument("notebook")
@click.option("--output", "-o", "out_dir", type=click.Path(file_okay=False), help="Write the unzipped artifact here.")
@click.option("--entry", metavar="NAME", help="Handler function name (default: handler).")
@click.option("--name", "-n", help="Function name (default: from the file name).")
@provider_options
@click.option("--json", "as_json", is_flag=True, help="Print what conversion decided as JSON.")
def convert(notebook: str, out_dir: Optional[str], entry: Optional[str], name: Optional[str],
            provider: Optional[str], as_json: bool, **kwargs: Any) -> None:
    """Convert NOTEBOOK into a function; with -o, write the files that would be deployed."""
    from kagg.convert import convert_source
    from kagg.output import print_json, warn
    from kagg.packaging.builder import write_tree
    from kagg.providers import provider_class

    provider_cls = provider_class(_provider_name(provider, _flags(kwargs)))
    function = convert_source(notebook, entry=entry, name=name)
    files: list[str] = []
    if out_dir:
        from pathlib import Path

        files = write_tree(function, provider_cls.shims, Path(out_dir))
    summary = function.summary()
    if out_dir:
        summary["output"] = {"dir": out_dir, "files": files}
    if as_json:
        print_json(summary)
        return
    for note in function.notes:
        warn(str(note))
    click.echo(f"{function.name}: {function.mode} mode" + (f", entry {function.entry}" if function.entry else ""))
    for p in function.parameters:
        default = "required" if p.required else f"default {p.default!r}"
        click.echo(f"  {p.name}: {p.type} ({default})" + (f" - {p.help}" if p.help else ""))
    click.echo(f"  requirements ({function.requirements_origin}): {', '.join(function.requirements) or 'none'}")
    if out_dir:
        click.echo(f"Wrote {len(files)} files to {out_dir}")


@cli.command()
@click.argument("notebook")
@click.option("--output", "-o", "out", type=click.Path(dir_okay=False), help="Cleaned notebook (default: stdout).")
@click.option("--strip-outputs", is_flag=True, help="Remove outputs and execution counts.")
@click.option("--clean-metadata", is_flag=True, help="Keep only kernel, language and tag metadata.")
@click.option("--scan-secrets", is_flag=True, help="Report hard-coded credentials; alone, exit 1 if any.")
@click.option("--json", "as_json", is_flag=True, help="Print secret findings as JSON.")
def preprocess(notebook: str, out: Optional[str], strip_outputs: bool, clean_metadata: bool, scan_secrets: bool,
               as_json: bool) -> None:
    """Write a cleaned copy of NOTEBOOK; or scan it for credentials."""
    from kagg.output import print_json
    from kagg.preprocess import preprocess as do_preprocess, write_notebook
    from kagg.secrets import scan_notebook
    from kagg.sources import load_notebook

    loaded = load_notebook(notebook)
    findings = scan_notebook(loaded.nb) if scan_secrets else []
    for finding in findings:
        if not as_json:  # with --json the findings are the JSON below, alone on stdout
            click.echo(f"{loaded.source}: {finding}", err=bool(out or strip_outputs or clean_metadata))
    scan_only = scan_secrets and not (out or strip_outputs or clean_metadata)
    if as_json and scan_secrets:
        print_json([{**vars(f)} for f in findings])
    if scan_only:
        if findings:
            raise SystemExit(1)
        if not as_json:
            click.echo(f"{loaded.source}: no credentials found")
        return
    cleaned = do_preprocess(loaded, strip_outputs=strip_outputs, clean_metadata=clean_metadata)
    write_notebook(cleaned, out or "-")
    if out:
        click.echo(f"Wrote {out}", err=True)


# -- invoke ------------------------------------------------------------------------------------
@cli.command()
@click.argument("target", metavar="NAME|URL")
@click.argument("payload", required=False)
@click.option("--data", "-d", "data", metavar="JSON|@FILE", help="JSON body, or @file.json.")
@click.option("--query", "-q", multiple=True, metavar="K=V", help="Query-string parameter (GET; repeatable).")
@click.option("--path", default="/", show_default=True, help="Path to call (e.g. /health, /schema).")
@click.option("--method", "-X", help="HTTP method (default: POST with a body, else GET).")
@click.option("--timeout", type=float, default=60.0, show_default=True, help="Seconds to wait.")
@click.option("--include", "-i", is_flag=True, help="Print the status and headers too.")
@click.pass_context
def invoke(ctx: click.Context, target: str, payload: Optional[str], data: Optional[str], query: tuple[str, ...],
           path: str, method: Optional[str], timeout: float, include: bool) -> None:
    """Call the endpoint NAME (or a URL) and print its JSON answer."""
    from kagg.invoke import call, load_payload, parse_query
    from kagg.output import print_json

    if payload is not None and data is not None:
        raise BadInput("give the payload either as an argument or with -d, not both")
    body = load_payload(payload, data)
    result = call(target, _registry(ctx), payload=body, query=parse_query(query), method=method, path=path,
                  timeout=timeout, raise_for_status=False)
    if include:
        click.echo(f"HTTP {result.status}", err=True)
        for key, value in sorted(result.headers.items()):
            click.echo(f"{key}: {value}", err=True)
    if not result.ok:
        from kagg.errors import OperationFailed

        raise OperationFailed(f"{result.url} answered {result.status}: {result.error_message()}")
    if result.data is not None or result.body.strip() == b"null":
        print_json(result.data)
    else:
        click.echo(result.body.decode("utf-8", "replace"))


# -- endpoints -----------------------------------------------------------------------------------
@cli.group()
def endpoints() -> None:
    """List, show and forget recorded endpoints."""


@endpoints.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.pass_context
def endpoints_list(ctx: click.Context, as_json: bool) -> None:
    """List the endpoints in the registry."""
    from kagg.output import print_json, table

    items = _registry(ctx).all()
    if as_json:
        print_json([e.to_dict() for e in items.values()])
        return
    if not items:
        click.echo(f"No endpoints in {_registry(ctx).path}. Deploy one: kagg deploy NOTEBOOK")
        return
    table(["name", "provider", "url", "auth", "region", "updated"],
          [[e.name, e.provider, e.url, e.auth, e.region or "", e.updated_at] for e in items.values()])


@endpoints.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.pass_context
def endpoints_show(ctx: click.Context, name: str, as_json: bool) -> None:
    """Show everything recorded about NAME."""
    from kagg.output import print_json

    endpoint = _registry(ctx).get(name)
    if as_json:
        print_json(endpoint.to_dict())
        return
    for key, value in endpoint.to_dict().items():
        if isinstance(value, dict):
            click.echo(f"{key}:")
            for k, v in value.items():
                click.echo(f"  {k}: {v}")
        else:
            click.echo(f"{key}: {value}")


@endpoints.command("rm")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print the removed entry as JSON.")
@click.pass_context
def endpoints_rm(ctx: click.Context, name: str, as_json: bool) -> None:
    """Forget NAME without touching its resources (use `kagg delete` to remove them)."""
    from kagg.output import print_json, warn

    endpoint = _registry(ctx).remove(name)
    if as_json:
        print_json(endpoint.to_dict())
        return
    click.echo(f"Removed {name} from {_registry(ctx).path}")
    warn(f"its {endpoint.provider} resources were left as they are; `kagg delete` removes them")


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def providers(as_json: bool) -> None:
    """List the providers that can be used here (built in and installed plug-ins)."""
    from kagg.output import print_json
    from kagg.providers import available

    names = available()
    if as_json:
        print_json(names)
    else:
        click.echo("\n".join(names))


def _add_optional_commands() -> None:
    """Commands that live in their own modules (batch, monitor)."""
    for module, attr in (("kagg.cli_batch", "batch"), ("kagg.cli_monitor", "monitor")):
        try:
            mod = __import__(module, fromlist=[attr])
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
            continue
        cli.add_command(getattr(mod, attr))


_add_optional_commands()


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
