"""``kagg invoke``: call an endpoint (by name or URL) and print its answer."""

from __future__ import annotations

from typing import Optional

import click

from kagg.cli.common import parse_seconds, registry_of
from kagg.errors import BadInput

#: methods whose request carries no body (the endpoint reads their query string)
NO_BODY = ("GET", "HEAD")


def check_request(has_body: bool, query: tuple[str, ...], method: Optional[str]) -> None:
    """Refuse a request that would silently lose part of what was asked: an endpoint reads the
    JSON body of a POST and the query string of a GET, never both."""
    verb = method.upper() if method else None
    if has_body and query:
        raise BadInput("give the parameters as a JSON body or with -q, not both: a POST reads only its body "
                       "and a GET only its query (put every value in the JSON, or every value in -q)")
    if has_body and verb in NO_BODY:
        raise BadInput(f"-X {verb} sends no body, so the payload would be dropped; leave out -X to POST it, "
                       "or give the values with -q")
    if query and verb is not None and verb not in NO_BODY:
        raise BadInput(f"-q values go in the query string, which a {verb} request does not read; "
                       f"leave out -X {method} to send a GET, or give the values as a JSON payload")


@click.command()
@click.argument("target", metavar="NAME|URL")
@click.argument("payload", required=False)
@click.option("--data", "-d", "data", metavar="JSON|@FILE", help="JSON body, or @file.json.")
@click.option("--query", "-q", multiple=True, metavar="K=V", help="Query-string parameter (GET; repeatable).")
@click.option("--path", default="/", show_default=True, help="Path to call (e.g. /health, /schema).")
@click.option("--method", "-X", help="HTTP method (default: POST with a body, else GET).")
@click.option("--timeout", "timeout_text", default="60s", show_default=True, metavar="DURATION",
              help="How long the whole call may take: 60, 60s, 2m.")
@click.option("--include", "-i", is_flag=True, help="Print the status and headers too.")
@click.option("--output", "-o", "output", metavar="FILE",
              help="Write the answer's body to FILE (any size, streamed) instead of printing it.")
@click.option("--max-size", "max_size_text", default="64MiB", show_default=True, metavar="SIZE",
              help="Refuse a larger answer unless -o is given: 500k, 64M, 1G.")
@click.pass_context
def invoke(ctx: click.Context, target: str, payload: Optional[str], data: Optional[str], query: tuple[str, ...],
           path: str, method: Optional[str], timeout_text: str, include: bool, output: Optional[str],
           max_size_text: str) -> None:
    """Call the endpoint NAME (or a URL) and print its JSON answer."""
    from kagg.invoke import call, format_size, load_payload, parse_query, parse_size
    from kagg.output import print_json

    if payload is not None and data is not None:
        raise BadInput("give the payload either as an argument or with -d, not both")
    check_request(payload is not None or data is not None, query, method)
    timeout = parse_seconds(timeout_text, "--timeout")
    max_size = parse_size(max_size_text, "--max-size")
    body = load_payload(payload, data)
    result = call(target, registry_of(ctx), payload=body, query=parse_query(query), method=method, path=path,
                  timeout=timeout, raise_for_status=False, max_size=max_size, output=output)
    if include:
        click.echo(f"HTTP {result.status}", err=True)
        for key, value in result.shown_headers():
            click.echo(f"{key}: {value}", err=True)
    if not result.ok:
        from kagg.errors import OperationFailed

        raise OperationFailed(f"{result.url} answered {result.status}: {result.error_message()}")
    if result.saved_to is not None:
        exact = f" ({result.size} bytes)" if result.size >= 1024 else ""
        click.echo(f"wrote {format_size(result.size)}{exact} to {result.saved_to}", err=True)
    elif result.data is not None or result.body.strip() == b"null":
        print_json(result.data)
    else:
        click.echo(result.body)  # bytes as they came (not decoded: a large answer stays one copy)
