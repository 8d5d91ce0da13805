"""``kagg convert`` and ``kagg preprocess``: what kagg makes of a notebook, and cleaned copies of it."""

from __future__ import annotations

from typing import Any, Callable, Optional

import click

from kagg.cli.common import chosen_provider, provider_options


def data_file_options() -> Callable:
    """Decorator: ``--include GLOB``, ``--exclude GLOB`` (repeatable) and ``--max-data-size SIZE``,
    shared by ``kagg convert`` and ``kagg deploy``; read back with :func:`data_file_values`."""
    def decorate(func: Callable) -> Callable:
        func = click.option("--max-data-size", "max_data_size_text", metavar="SIZE",
                            help="Most data to package: 100MB, 1GB (default 50MB in all, 20MB one file).")(func)
        func = click.option("--exclude", "exclude", multiple=True, metavar="GLOB",
                            help="Leave out data files matching GLOB, relative to the notebook (repeatable).")(func)
        return click.option("--include", "include", multiple=True, metavar="GLOB",
                            help="Also package files or folders matching GLOB, relative to the notebook "
                                 "(repeatable).")(func)
    return decorate


def data_file_values(kwargs: dict[str, Any]) -> tuple[list[str], list[str], Optional[int]]:
    """Pop the options of :func:`data_file_options`: (include, exclude, max_data_size in bytes)."""
    from kagg.notebook.datafiles import parse_size

    text = kwargs.pop("max_data_size_text", None)
    size = parse_size(text, "--max-data-size") if text is not None else None
    return list(kwargs.pop("include", ()) or ()), list(kwargs.pop("exclude", ()) or ()), size


def packaged_summary(function: Any) -> dict[str, Any]:
    """The files packaged from the notebook's folder, for ``--json``: ``data_files`` (path and
    size of each) and ``data_size`` (their total, bytes)."""
    data = [{"path": rel, "size": len(function.local_files[rel])} for rel in function.data_files]
    return {"data_files": data, "data_size": sum(d["size"] for d in data)}


def packaged_lines(function: Any) -> list[str]:
    """The files packaged from the notebook's folder, as ``kagg convert`` shows them (none: no line)."""
    from kagg.notebook.datafiles import format_size

    data = set(function.data_files)
    modules = [rel for rel in function.local_files if rel not in data]
    lines = []
    if modules:
        lines.append(f"  modules beside the notebook: {', '.join(modules)}")
    if data:
        sizes = {rel: len(function.local_files[rel]) for rel in function.data_files}
        listed = ", ".join(f"{rel} ({format_size(size)})" for rel, size in sizes.items())
        lines.append(f"  data files ({len(sizes)}, {format_size(sum(sizes.values()))}): {listed}")
    return lines


@click.command()
@click.argument("notebook")
@click.option("--output", "-o", "out_dir", type=click.Path(file_okay=False), help="Write the unzipped artifact here.")
@click.option("--entry", metavar="NAME", help="Handler function name (default: handler).")
@click.option("--name", "-n", help="Function name (default: from the file name).")
@provider_options()
@data_file_options()
@click.option("--json", "as_json", is_flag=True, help="Print what conversion decided as JSON.")
def convert(notebook: str, out_dir: Optional[str], entry: Optional[str], name: Optional[str],
            as_json: bool, **kwargs: Any) -> None:
    """Convert NOTEBOOK into a function; with -o, write the files that would be deployed."""
    from kagg.notebook.convert import convert as do_convert
    from kagg.notebook.datafiles import package_data
    from kagg.notebook.loading import load_notebook
    from kagg.output import print_json, warn
    from kagg.packaging.builder import write_tree
    from kagg.providers import provider_shims

    shims = provider_shims(chosen_provider(kwargs))
    include, exclude, max_data_size = data_file_values(kwargs)
    loaded = load_notebook(notebook)
    function = do_convert(loaded, entry=entry, name=name)
    package_data(function, loaded.folder, include, exclude, max_data_size)
    jobs = False
    if function.train_source:  # what a deploy ships: /jobs and its kernel template (docs/jobs.md)
        from kagg.jobs_template import attach_jobs

        jobs = attach_jobs(function, notebook).enabled
    files: list[str] = []
    if out_dir:
        from pathlib import Path

        files = write_tree(function, shims, Path(out_dir))
    summary = function.summary()
    summary.update(packaged_summary(function))
    summary["jobs"] = jobs
    if out_dir:
        summary["output"] = {"dir": out_dir, "files": files}
    if as_json:
        print_json(summary)
        return
    for note in function.notes:
        warn(str(note))
    click.echo(f"{function.name}: {function.mode} mode" + (f", entry {function.entry}" if function.entry else ""))
    for p in function.parameters:
        default = ("required" if p.required else f"default {p.default_expr}" if p.default_expr
                   else f"default {p.default!r}")
        click.echo(f"  {p.name}: {p.type} ({default})" + (f" - {p.help}" if p.help else ""))
    click.echo(f"  requirements ({function.requirements_origin}): {', '.join(function.requirements) or 'none'}")
    for line in packaged_lines(function):
        click.echo(line)
    if jobs:
        click.echo("  POST /jobs: Kaggle training runs of the train cells (kernel template kagg_jobs.json; docs/jobs.md)")
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


