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

    items = registry_of(ctx).all()
    if as_json:
        print_json([e.to_dict() for e in items.values()])
        return
    if not items:
        click.echo(f"No endpoints in {registry_of(ctx).path}. Deploy one: kagg deploy NOTEBOOK")
        return
    table(["name", "provider", "status", "url", "auth", "region", "updated"],
          [[e.name, e.provider, e.status, e.url or "-", e.auth, e.region or "", e.updated_at]
           for e in items.values()])
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

    endpoint = registry_of(ctx).remove(name)
    if as_json:
        print_json(endpoint.to_dict())
        return
    click.echo(f"Removed {name} from {registry_of(ctx).path}")
    warn(f"its {endpoint.provider} resources were left as they are; `kagg delete` removes them")


@click.command()
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


