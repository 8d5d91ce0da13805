"""``kagg endpoints list|show|rm`` and ``kagg providers``: what the registry and this installation hold."""

from __future__ import annotations

import click

from kagg.cli.common import registry_of


@click.group()
def endpoints() -> None:
    """List, show and forget recorded endpoints."""


@endpoints.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.pass_context
def endpoints_list(ctx: click.Context, as_json: bool) -> None:
    """List the endpoints in the registry."""
    from kagg.output import print_json, table, warn
    from kagg.providers import endpoint_health

    registry = registry_of(ctx)
    items = registry.all()
    for key, problem in registry.problems().items():
        warn(f"{problem}; `kagg endpoints rm {key}` removes it")
    health = {name: endpoint_health(e, registry.state_dir) for name, e in items.items()}
    if as_json:
        print_json([{**e.to_dict(), "health": health[name]} for name, e in items.items()])
        return
    if not items:
        click.echo(f"No endpoints in {registry_of(ctx).path}. Deploy one: kagg deploy NOTEBOOK")
        return
    table(["NAME", "PROVIDER", "STATUS", "HEALTH", "URL", "AUTH", "REGION", "UPDATED"],
          [[e.name, e.provider, e.status, health[name] or "-", e.url or "-", e.auth, e.region or "-", e.updated_at]
           for name, e in items.items()])
    pending = [e.name for e in items.values() if e.pending]
    if pending:
        warn(f"{', '.join(pending)}: pending (a deploy was interrupted); `kagg deploy` again finishes it, "
             "`kagg delete NAME` removes what it made")


@endpoints.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.pass_context
def endpoints_show(ctx: click.Context, name: str, as_json: bool) -> None:
    """Show everything recorded about NAME."""
    from kagg.output import print_json

    endpoint = registry_of(ctx).get(name)
    if as_json:
        print_json(endpoint.to_dict())
        return
    for key, value in endpoint.to_dict().items():
        if isinstance(value, dict):
            click.echo(f"{key}:" + ("" if value else " -"))
            for k, v in value.items():
                click.echo(f"  {k}: {_shown(v)}")
        else:
            click.echo(f"{key}: {_shown(value)}")


def _shown(value: object) -> str:
    """A recorded value for people: ``-`` for none (never ``None``)."""
    return "-" if value is None or value == "" else str(value)


@endpoints.command("rm")
@click.argument("name")
@click.option("--force", is_flag=True, help="Forget it even if its server is still running (it is left running).")
@click.option("--json", "as_json", is_flag=True, help="Print the removed entry as JSON.")
@click.pass_context
def endpoints_rm(ctx: click.Context, name: str, force: bool, as_json: bool) -> None:
    """Forget NAME without touching its resources (use `kagg delete` to remove them)."""
    from kagg.errors import BadInput, RegistryError
    from kagg.output import print_json, warn

    registry = registry_of(ctx)
    try:
        recorded = registry.get(name)
    except RegistryError:  # an invalid entry: removing it is how it is repaired; nothing to ask
        recorded = None
    running = _running(recorded, registry) if recorded is not None else None
    if running and not force:
        raise BadInput(f"{name} is still running ({_where(running)}); `kagg delete {name}` stops it and forgets it "
                       f"(`kagg endpoints rm {name} --force` forgets it and leaves it running)")
    endpoint = registry.remove(name)
    if as_json:
        print_json(endpoint.to_dict() if endpoint is not None else None)
        return
    click.echo(f"Removed {name} from {registry.path}")
    if endpoint is None:
        warn("it was not a valid entry, so whatever it named was left as it is")
    elif running:
        warn(f"{name} is still running, and kagg no longer knows it: {_where(endpoint)}")
    else:
        warn(f"its {endpoint.provider} resources were left as they are; `kagg delete` removes them")


def _running(endpoint, registry):
    """``endpoint`` if its provider says it is running (providers with ``is_running``), else None."""
    from kagg.errors import KaggError
    from kagg.providers import get_provider

    try:
        provider = get_provider(endpoint.provider, state_dir=registry.state_dir)
    except KaggError:  # a plug-in no longer installed: nothing to ask
        return None
    is_running = getattr(provider, "is_running", None)
    return endpoint if callable(is_running) and is_running(endpoint) else None


def _where(endpoint) -> str:
    """Where a running server is: its pid and port when the entry has them, else its URL."""
    data = endpoint.provider_data or {}
    parts = [f"{key} {data[key]}" for key in ("pid", "port") if data.get(key) is not None]
    return ", ".join(parts) if parts else (endpoint.url or "no URL")


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def providers(as_json: bool) -> None:
    """List the providers known here (built in and installed plug-ins) and whether each can be used."""
    from kagg.output import print_json, table
    from kagg.providers import statuses

    found = statuses()
    if as_json:
        print_json(found)
        return
    table(["PROVIDER", "STATUS"],
          [[s["name"], "available" if s["available"] else f"unavailable: {s['install']}"] for s in found])
