"""``kagg deploy``, ``delete``, ``logs`` and ``serve``: parse, call :mod:`kagg.deploy` / :mod:`kagg.serve`, print."""

from __future__ import annotations

from typing import Any, Optional

import click

from kagg.cli.common import chosen_provider, parse_env, provider_options, registry_of


@click.command()
@click.argument("notebook")
@click.option("--name", "-n", help="Endpoint name (default: from the notebook's file name).")
@click.option("--entry", metavar="NAME", help="Handler function name (default: handler).")
@provider_options()
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
def deploy(ctx: click.Context, notebook: str, env_pairs: tuple[str, ...], as_json: bool, **kwargs: Any) -> None:
    """Deploy NOTEBOOK (a path or URL) and record the endpoint."""
    from kagg.deploy import deploy as do_deploy
    from kagg.model import DeployOptions
    from kagg.output import print_json, progress, warn

    name = chosen_provider(kwargs)
    options = DeployOptions(env=parse_env(env_pairs), **kwargs)
    with progress() as say:
        result = do_deploy(notebook, name, options, registry_of(ctx), progress=say)
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


@click.command()
@click.argument("name")
@click.option("--purge-role", is_flag=True, help="aws: also delete the execution role kagg created.")
@click.pass_context
def delete(ctx: click.Context, name: str, purge_role: bool) -> None:
    """Delete the endpoint NAME: its resources, then its registry entry."""
    from kagg.deploy import delete as do_delete
    from kagg.model import DeployOptions
    from kagg.output import warn

    for message in do_delete(name, registry_of(ctx), DeployOptions(extra={"purge_role": purge_role})):
        warn(message)
    click.echo(f"Deleted {name}")


@click.command()
@click.argument("name")
@click.option("--follow", "-f", is_flag=True, help="Keep printing new lines.")
@click.pass_context
def logs(ctx: click.Context, name: str, follow: bool) -> None:
    """Show the log of the endpoint NAME."""
    from kagg.providers import get_provider

    registry = registry_of(ctx)
    endpoint = registry.get(name)
    provider = get_provider(endpoint.provider, state_dir=registry.state_dir)
    try:
        for line in provider.logs(endpoint, follow=follow):
            click.echo(line, nl=False)
    except KeyboardInterrupt:
        pass


@click.command()
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


