"""``kagg convert`` and ``kagg preprocess``: what kagg makes of a notebook, and cleaned copies of it."""

from __future__ import annotations

from typing import Any, Optional

import click

from kagg.cli.common import chosen_provider, provider_options


@click.command()
@click.argument("notebook")
@click.option("--output", "-o", "out_dir", type=click.Path(file_okay=False), help="Write the unzipped artifact here.")
@click.option("--entry", metavar="NAME", help="Handler function name (default: handler).")
@click.option("--name", "-n", help="Function name (default: from the file name).")
@provider_options()
@click.option("--json", "as_json", is_flag=True, help="Print what conversion decided as JSON.")
def convert(notebook: str, out_dir: Optional[str], entry: Optional[str], name: Optional[str],
            as_json: bool, **kwargs: Any) -> None:
    """Convert NOTEBOOK into a function; with -o, write the files that would be deployed."""
    from kagg.notebook.convert import convert_source
    from kagg.output import print_json, warn
    from kagg.packaging.builder import write_tree
    from kagg.providers import provider_shims

    shims = provider_shims(chosen_provider(kwargs))
    function = convert_source(notebook, entry=entry, name=name)
    files: list[str] = []
    if out_dir:
        from pathlib import Path

        files = write_tree(function, shims, Path(out_dir))
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


@click.command()
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
    from kagg.notebook.preprocess import preprocess as do_preprocess, write_notebook
    from kagg.notebook.secrets import scan_notebook
    from kagg.notebook.loading import load_notebook

    if not (strip_outputs or clean_metadata or scan_secrets):
        from kagg.errors import BadInput

        raise BadInput("say what to do: --strip-outputs (remove outputs and execution counts), --clean-metadata "
                       "(keep only kernel, language and tags), --scan-secrets (report credentials); "
                       "-o OUT writes the result to a file")
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


