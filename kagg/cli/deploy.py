"""``kagg deploy``, ``delete``, ``logs`` and ``serve``: parse, call :mod:`kagg.deploy` / :mod:`kagg.serve`, print."""

from __future__ import annotations

from typing import Any, Optional

import click

from kagg.cli.common import chosen_provider, parse_env, parse_seconds, provider_options, registry_args, registry_of
from kagg.cli.notebook import data_file_options, data_file_values
from kagg.errors import BadInput


#: DeployOptions fields that settle what is packaged from the notebook's folder: every provider's
#: artifact carries those files, so no provider refuses them
PACKAGING_OPTIONS = frozenset({"include", "exclude", "max_data_size"})

#: an example value of each parameter type, for the ``try: kagg invoke ...`` line
EXAMPLE_VALUES: dict[str, Any] = {"int": 1, "float": 1.0, "str": "text", "bool": True, "list": [], "dict": {}}


def invoke_hint(name: str, parameters: list, registry: list[str]) -> str:
    """A ``kagg invoke`` command line that works: the required parameters with example values."""
    import json
    import shlex

    payload = {p.name: EXAMPLE_VALUES.get(p.type, "text") for p in parameters if p.required}
    words = ["kagg", "invoke", name, *registry]
    if payload:
        words.append(json.dumps(payload))
    return " ".join(shlex.quote(w) for w in words)


def _check_options_apply(provider: str, options: Any) -> None:
    """Options the chosen provider does not read are refused, naming them and the provider."""
    from kagg.providers import COMMON_OPTIONS, provider_class, unused_options

    cls = provider_class(provider)
    unused = [f for f in unused_options(cls, options) if f not in PACKAGING_OPTIONS]
    if not unused:
        return
    flags = ", ".join(f"--{f.replace('_', '-')}" for f in unused)
    used = sorted(getattr(cls, "options_used", ()) or ())
    its = ", ".join(f"--{f.replace('_', '-')}" for f in used if f not in COMMON_OPTIONS and f != "owner")
    verb = "does" if len(unused) == 1 else "do"
    raise BadInput(f"{flags} {verb} not apply to the {provider} provider"
                   + (f" (its options: {its})" if its else " (it takes no provider options)"))


@click.command()
@click.argument("notebook")
@click.option("--name", "-n", help="Endpoint name (default: from the notebook's file name).")
@click.option("--entry", metavar="NAME", help="Handler function name (default: handler).")
@provider_options()
@click.option("--port", type=int, help="local: port on 127.0.0.1 (default: keep the old one, else a free one).")
@click.option("--region", help="Cloud region (default: the SDK's configured region).")
@click.option("--memory", type=int, help="Memory in MB.")
@click.option("--timeout", "timeout_text", metavar="DURATION",
              help="Function timeout: 30, 30s, 2m (whole seconds).")
@click.option("--env", "env_pairs", multiple=True, metavar="K=V", help="Environment variable (repeatable).")
@click.option("--role", metavar="ARN", help="aws: execution role (default: one kagg creates once).")
@click.option("--public", is_flag=True, help="Make the URL callable without credentials.")
@click.option("--public-jobs", is_flag=True,
              help="With --public: leave /jobs open too (anyone with the URL may start Kaggle GPU jobs).")
@click.option("--runtime", help="aws: python3.12 or python3.13.")
@click.option("--arch", help="aws: x86_64 or arm64.")
@click.option("--bucket", help="aws: S3 bucket for artifacts over 50 MB.")
@click.option("--project", help="gcp: Google Cloud project (default: the credentials' project).")
@click.option("--service-account", metavar="EMAIL", help="gcp: service account the function runs as.")
@click.option("--impersonate", metavar="EMAIL",
              help="gcp: impersonate this service account for the deploy's calls and for signing invokes.")
@click.option("--min-instances", type=int, help="gcp: instances kept warm (default 0).")
@click.option("--max-instances", type=int, help="gcp, azure: the most instances at once.")
@click.option("--subscription", metavar="ID", help="azure: subscription (default: the credential's only one).")
@click.option("--resource-group", metavar="NAME", help="azure: resource group (default: derived from the name).")
@click.option("--location", "location", metavar="NAME", help="azure: Azure location (the same as --region).")
@click.option("--startup-timeout", "startup_text", metavar="DURATION",
              help="local: how long to wait for the notebook's cold start: 120, 120s, 5m (default 2m).")
@click.option("--venv", is_flag=True, help="local: serve from a virtual environment made from the requirements.")
@data_file_options()
@click.option("--force", is_flag=True, help="Redeploy even if the artifact is unchanged.")
@click.option("--adopt", is_flag=True,
              help="Take over a cloud function of that name that this registry's entry did not make.")
@click.option("--dry-run", is_flag=True, help="Print the plan; change nothing.")
@click.option("--allow-secrets", is_flag=True, help="Deploy even if credentials are found in the notebook.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_context
def deploy(ctx: click.Context, notebook: str, env_pairs: tuple[str, ...], timeout_text: Optional[str],
           startup_text: Optional[str], as_json: bool, **kwargs: Any) -> None:
    """Deploy NOTEBOOK (a path or URL) and record the endpoint."""
    from kagg.deploy import deploy as do_deploy
    from kagg.model import DeployOptions
    from kagg.output import print_json, progress, warn

    name = chosen_provider(kwargs)
    location = kwargs.pop("location", None)
    if location and kwargs.get("region") and location != kwargs["region"]:
        raise BadInput(f"--location {location} and --region {kwargs['region']} disagree; give one of them")
    kwargs["region"] = kwargs.get("region") or location
    timeout = int(parse_seconds(timeout_text, "--timeout", whole=True)) if timeout_text is not None else None
    startup = parse_seconds(startup_text, "--startup-timeout") if startup_text is not None else None
    include, exclude, max_data_size = data_file_values(kwargs)
    options = DeployOptions(env=parse_env(env_pairs), timeout=timeout, startup_timeout=startup, include=include,
                            exclude=exclude, max_data_size=max_data_size, **kwargs)
    _check_options_apply(name, options)
    with progress() as say:
        result = do_deploy(notebook, name, options, registry_of(ctx), progress=say)
    for note in result.notes:
        warn(note)
    skipped = result.status == "skipped"
    if as_json:
        print_json({"status": result.status, "name": result.name, "provider": result.provider,
                    "skipped": skipped, "unchanged": result.plan.unchanged,
                    "plan": [] if skipped else result.plan.describe(),
                    "endpoint": result.endpoint.to_dict() if result.endpoint else None})
        return
    if result.status == "planned":
        click.echo(f"Plan for {result.name} on {result.provider} (dry run, nothing changed):")
        for step in result.plan.steps:
            click.echo(f"  {'' if step.mutating else '(read) '}{step}")
        if result.plan.unchanged and options.force:
            click.echo("  the deployed artifact is already this one; with --force the deploy would run "
                       "these steps anyway")
        elif result.plan.unchanged:
            click.echo("  the deployed artifact is already this one: a deploy would skip it (--force redeploys)")
        return
    ep = result.endpoint
    assert ep is not None
    if skipped:
        click.echo(f"{result.name}: unchanged, skipped ({ep.url}); use --force to redeploy")
        return
    click.echo(f"{'Updated' if result.status == 'updated' else 'Deployed'} {ep.name} ({ep.provider}) -> {ep.url}")
    if ep.auth == "none" and ep.provider != "local":
        click.echo("  the URL is public: anyone who knows it can call it")
    if result.jobs.get("enabled"):
        from kagg.jobs_secrets import exposure_lines

        for line in exposure_lines(ep.auth == "none" and ep.provider != "local", options.public_jobs,
                                   result.jobs.get("username")):
            click.echo(line)
        click.echo(f"  training on Kaggle: kagg jobs start {ep.name} (POST /jobs; docs/jobs.md)")
    click.echo(f"  try: {invoke_hint(ep.name, result.function.parameters, registry_args(ctx))}")


@click.command()
@click.argument("names", nargs=-1, metavar="NAME...")
@click.option("--all", "all_", is_flag=True, help="Delete every endpoint in the registry (asks first).")
@click.option("--yes", "-y", is_flag=True, help="With --all: do not ask.")
@click.option("--purge-role", is_flag=True, help="aws: also delete the execution role kagg created.")
@click.option("--purge", is_flag=True,
              help="azure: also delete the plan, storage account and resource group kagg created (if unused).")
@click.pass_context
def delete(ctx: click.Context, names: tuple[str, ...], all_: bool, yes: bool, purge_role: bool,
           purge: bool) -> None:
    """Delete the endpoints NAME...: their resources, then their registry entries."""
    import sys

    from kagg.deploy import delete as do_delete
    from kagg.errors import KaggError, NotFound, OperationFailed
    from kagg.model import DeployOptions
    from kagg.output import warn

    registry = registry_of(ctx)
    if all_ and names:
        raise BadInput("give endpoint names or --all, not both")
    if not all_ and not names:
        raise BadInput("give the names of the endpoints to delete (or --all)")
    if yes and not all_:
        raise BadInput("--yes only confirms --all; naming the endpoints is confirmation enough")
    if all_:
        names = tuple(registry.all())
        if not names:
            click.echo(f"No endpoints in {registry.path}; nothing to delete")
            return
        listing = ", ".join(names)
        if not yes:
            if not (sys.stdin is not None and sys.stdin.isatty() and sys.stderr.isatty()):
                raise BadInput(f"--all would delete {len(names)} endpoint(s) ({listing}); "
                               "pass --yes to confirm (there is no terminal to ask on)")
            if not click.confirm(f"Delete {len(names)} endpoint(s) of {registry.path}: {listing}?",
                                 default=False, err=True):
                raise OperationFailed("not confirmed; nothing was deleted")
    names = tuple(dict.fromkeys(names))
    options = DeployOptions(extra={"purge_role": purge_role, "purge": purge})
    if len(names) == 1:  # one name: its own error, as it is
        for message in do_delete(names[0], registry, options):
            warn(message)
        click.echo(f"Deleted {names[0]}")
        return
    missing, failed = [], []
    for name in names:
        try:
            warnings = do_delete(name, registry, options)
        except NotFound as exc:
            missing.append(name)
            click.echo(f"{name}: {exc.message}", err=True)
            continue
        except KaggError as exc:
            failed.append(name)
            click.echo(f"{name}: {exc.message}", err=True)
            continue
        for message in warnings:
            warn(message)
        click.echo(f"Deleted {name}")
    if not missing and not failed:
        return
    done = len(names) - len(missing) - len(failed)
    parts = ([f"failed: {', '.join(failed)}"] if failed else []) + \
            ([f"not in {registry.path}: {', '.join(missing)}"] if missing else [])
    message = f"deleted {done} of {len(names)}; " + "; ".join(parts) + " (see above)"
    raise (OperationFailed if failed else BadInput)(message)


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


