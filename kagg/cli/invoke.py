"""``kagg invoke``: call an endpoint (by name or URL) and print its answer."""

from __future__ import annotations

from typing import Optional

import click

from kagg.cli.common import registry_of

from kagg.errors import BadInput


@click.command()
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
    result = call(target, registry_of(ctx), payload=body, query=parse_query(query), method=method, path=path,
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


