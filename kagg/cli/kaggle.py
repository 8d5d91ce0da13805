"""``kagg kaggle ...``: status, logs, output, stop, jobs, quota, list, pull, push. Parse, call
:mod:`kagg.kaggle`, print; every listing has ``--json``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Optional

import click

from kagg.cli.common import registry_of
from kagg.errors import BadInput


def _kaggle():
    from kagg.kaggle.client import Kaggle
    from kagg.kaggle.credentials import load_credentials

    return Kaggle(load_credentials())


def _job(text: str, kaggle: Any, pin: bool = True):
    """The job named on the command line; without a version, its latest (so later calls pin it)."""
    from kagg.errors import NotFound
    from kagg.kaggle.jobs import parse_job

    job = parse_job(text)
    if job.version is None and pin:
        version = kaggle.current_version(job.owner, job.slug)
        if version is None:
            raise NotFound(f"{job}: Kaggle has no such kernel; check the name with `kagg kaggle jobs`")
        job = job.with_version(version)
    return job


@click.group("kaggle")
def kaggle() -> None:
    """Kaggle jobs that `kagg run --kaggle` started, and plain kernel commands.

    \b
      kagg kaggle jobs                  this account's kagg kernels, newest first
      kagg kaggle logs JOB -f           follow a run's log
      kagg kaggle output JOB -o DIR     download its outputs (parallel, verified)
      kagg kaggle stop JOB              stop it (deletes the kernel: Kaggle has no cancel)
    """


@kaggle.command("status")
@click.argument("job")
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
def status(job: str, as_json: bool) -> None:
    """The status of JOB (OWNER/SLUG[/vN])."""
    from kagg.output import print_json

    k = _kaggle()
    found = _job(job, k)
    state, failure = k.status(found)
    if as_json:
        print_json({"job": str(found), "status": state, "failure": failure or None})
        return
    click.echo(f"{found}: {state}" + (f" ({failure})" if failure else ""))


@kaggle.command("logs")
@click.argument("job")
@click.option("-f", "--follow", "follow_it", is_flag=True, help="Keep following until the run ends.")
@click.option("--json", "as_json", is_flag=True, help="Print the log lines as JSON.")
def logs(job: str, follow_it: bool, as_json: bool) -> None:
    """JOB's log lines (with -f: new ones as they come, until it ends)."""
    from kagg.kaggle.follow import follow, log_lines
    from kagg.output import print_json

    k = _kaggle()
    found = _job(job, k)
    if not follow_it:
        lines = log_lines(k.log(found))
        if not lines:
            state, _ = k.status(found)
            if state in ("QUEUED", "RUNNING"):
                sys.stderr.write(f"{found} is {state}: Kaggle gives its log once it ends; follow it with -f\n")
        if as_json:
            print_json({"job": str(found), "lines": lines})
        else:
            for line in lines:
                click.echo(line)
        return
    from kagg.cli.run_display import RunDisplay

    seen: list[str] = []

    def line(text: str) -> None:
        seen.append(text)
        if not as_json:
            click.echo(text)
            sys.stdout.flush()

    try:
        with RunDisplay() as display:
            result = follow(k, found, on_status=display.status, on_line=line)
    except KeyboardInterrupt:
        sys.stderr.write(f"stopped following {found}; it keeps running on Kaggle "
                         f"(stop it with `kagg kaggle stop {found}`)\n")
        raise SystemExit(130)
    if as_json:
        print_json({"job": str(found), "status": result.status, "stuck": result.stuck, "lines": seen})
    if result.stuck:
        raise SystemExit(_fail(f"{found} is {result.failure}; stop it with `kagg kaggle stop {found}`"))


def _fail(message: str) -> int:
    sys.stderr.write(f"Error: {message}\n")
    return 1


@kaggle.command("output")
@click.argument("job")
@click.option("-o", "--output", "out_dir", type=click.Path(file_okay=False),
              help="Folder for the files (default ./kagg-runs/<slug>).")
@click.option("--json", "as_json", is_flag=True, help="Print the files as JSON.")
def output(job: str, out_dir: Optional[str], as_json: bool) -> None:
    """Download JOB's outputs (in parallel, resuming, checked against its manifest)."""
    from kagg.cli.run_display import size
    from kagg.kaggle.outputs import fetch_outputs
    from kagg.output import print_json, progress

    k = _kaggle()
    found = _job(job, k)
    state, _ = k.status(found)
    if state in ("QUEUED", "RUNNING"):
        raise BadInput(f"{found} is {state}: Kaggle lists its outputs once it ends; follow it with "
                       f"`kagg kaggle logs {found} -f`")
    folder = Path(out_dir) if out_dir else Path("kagg-runs") / found.slug
    with progress() as say:
        say(f"downloading the outputs of {found} to {folder}")
        fetched = fetch_outputs(k, found, folder)
    if as_json:
        print_json({"job": str(found), "out_dir": str(folder), "files": fetched.files,
                    "log": str(fetched.log_path), "end_marker": fetched.end_marker, "problems": fetched.problems})
        return
    click.echo(f"{len(fetched.files)} files of {found} in {folder} (log: {fetched.log_path})")
    for f in fetched.files:
        click.echo(f"  {f['name']}  {size(f['size'])}" + ("  sha256 ok" if f["verified"] else ""))
    for problem in fetched.problems:
        click.echo(f"  note: {problem}")


@kaggle.command("stop")
@click.argument("job")
@click.option("--yes", "-y", is_flag=True, help="Do not ask.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_context
def stop(ctx: click.Context, job: str, yes: bool, as_json: bool) -> None:
    """Stop JOB by deleting its kernel (Kaggle has no working cancel call)."""
    from kagg.kaggle import journal
    from kagg.output import print_json

    k = _kaggle()
    found = _job(job, k, pin=False)
    if k.current_version(found.owner, found.slug) is None:
        from kagg.errors import NotFound

        raise NotFound(f"{found.kernel}: Kaggle has no such kernel; check the name with `kagg kaggle jobs`")
    warning = (f"Kaggle has no working cancel: stopping {found.kernel} deletes the kernel, every version "
               "and its outputs")
    if not yes:
        if not sys.stdin.isatty():
            raise BadInput(f"{warning}; add --yes to confirm")
        if not click.confirm(f"{warning}. Delete it?", default=False, err=True):
            raise BadInput("not stopped (nothing changed)")
    k.delete(found)
    journal.record(registry_of(ctx).state_dir, found.kernel, "deleted")
    if as_json:
        print_json({"job": found.kernel, "deleted": True})
    else:
        click.echo(f"{found.kernel}: deleted (its session stops with it)")


@kaggle.command("jobs")
@click.option("--json", "as_json", is_flag=True, help="Print the jobs as JSON.")
@click.pass_context
def jobs(ctx: click.Context, as_json: bool) -> None:
    """This account's kagg kernels, newest first (and pushes kagg noted but Kaggle does not list)."""
    from kagg.kaggle import journal
    from kagg.kaggle.jobs import PREFIX
    from kagg.output import print_json, table

    k = _kaggle()
    noted = journal.latest(registry_of(ctx).state_dir)
    rows = []
    for meta in k.list_kernels(user=k.user):
        ref = meta.ref or f"{k.user}/{meta.slug}"
        slug = ref.split("/")[-1]
        if not slug.startswith(PREFIX):
            continue
        mine = noted.pop(ref, {})
        version = meta.current_version_number
        rows.append({"job": f"{ref}/v{version}" if version else ref, "title": meta.title,
                     "last_run": _when(meta.last_run_time), "gpu": bool(meta.enable_gpu),
                     "noted": mine.get("state"), "notebook": mine.get("notebook")})
    rows.sort(key=lambda r: r["last_run"] or "", reverse=True)  # newest first, whatever order Kaggle used
    for ref, mine in sorted(noted.items(), key=lambda kv: kv[1].get("at", ""), reverse=True):
        if mine.get("state") in ("deleted", "refused") or not ref.startswith(f"{k.user}/"):
            continue
        rows.append({"job": mine.get("job", ref), "title": None, "last_run": mine.get("at"), "gpu": None,
                     "noted": f"{mine.get('state')} (not listed by Kaggle)", "notebook": mine.get("notebook")})
    if as_json:
        print_json({"jobs": rows})
        return
    if not rows:
        click.echo("no kagg jobs on this account (start one: kagg run NB --kaggle)")
        return
    table(["JOB", "LAST RUN", "GPU", "NOTEBOOK", "KAGG"],
          [[r["job"], r["last_run"], {True: "yes", False: "no"}.get(r["gpu"], ""), r["notebook"], r["noted"]]
           for r in rows])


def _when(value: Any) -> Optional[str]:
    if value is None:
        return None
    return value.strftime("%Y-%m-%d %H:%M") if hasattr(value, "strftime") else str(value)


@kaggle.command("quota")
@click.option("--json", "as_json", is_flag=True, help="Print the quota as JSON.")
def quota(as_json: bool) -> None:
    """GPU and TPU time used and left this week."""
    from kagg.cli.run_display import duration
    from kagg.output import print_json, table

    q = _kaggle().quota()
    if as_json:
        print_json(q)
        return
    rows = [[kind.upper(), duration(q[kind]["time_used"]), duration(q[kind]["total_time_allowed"]),
             duration(q[kind]["time_left"])] for kind in ("gpu", "tpu") if q.get(kind)]
    table(["", "USED", "ALLOWED", "LEFT"], rows, title=f"refreshes {q.get('refresh_time') or '?'}")


@kaggle.command("list")
@click.option("--mine", is_flag=True, help="Only this account's kernels.")
@click.option("--search", "-s", metavar="TEXT", help="Search term.")
@click.option("--user", metavar="NAME", help="Only this user's kernels.")
@click.option("--json", "as_json", is_flag=True, help="Print the kernels as JSON.")
def list_kernels(mine: bool, search: Optional[str], user: Optional[str], as_json: bool) -> None:
    """Kaggle kernels, newest run first."""
    from kagg.output import print_json, table

    k = _kaggle()
    if mine and user and user != k.user:
        raise BadInput(f"--mine and --user {user} disagree; give one of them")
    found = k.list_kernels(user=k.user if mine else user, search=search, most=100)
    rows = [{"ref": m.ref, "title": m.title, "author": m.author, "last_run": _when(m.last_run_time),
             "votes": m.total_votes} for m in found]
    if as_json:
        print_json({"kernels": rows})
        return
    table(["REF", "TITLE", "AUTHOR", "LAST RUN", "VOTES"],
          [[r["ref"], r["title"], r["author"], r["last_run"], r["votes"]] for r in rows])


@kaggle.command("pull")
@click.argument("kernel", metavar="OWNER/SLUG")
@click.option("-o", "--output", "out_dir", type=click.Path(file_okay=False), help="Folder (default ./SLUG).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def pull(kernel: str, out_dir: Optional[str], as_json: bool) -> None:
    """Download a kernel's notebook and its kernel-metadata.json."""
    from kagg.kaggle.pull import pull as do_pull
    from kagg.output import print_json

    notebook = do_pull(kernel, Path(out_dir) if out_dir else None, _kaggle())
    if as_json:
        print_json({"kernel": kernel, "notebook": str(notebook), "metadata": str(notebook.parent / "kernel-metadata.json")})
    else:
        click.echo(f"{kernel} -> {notebook} (and kernel-metadata.json)")


@kaggle.command("push")
@click.argument("folder", type=click.Path(file_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the job as JSON.")
@click.pass_context
def push(ctx: click.Context, folder: str, as_json: bool) -> None:
    """Push an existing kernel folder (kernel-metadata.json + its code file), once."""
    from kagg.kaggle import journal
    from kagg.kaggle.folder import read_folder
    from kagg.kaggle.push import push_once
    from kagg.output import print_json

    metadata, text = read_folder(Path(folder))
    k = _kaggle()
    owner, slug = metadata["id"].split("/", 1)
    before = k.current_version(owner, slug)
    state_dir = registry_of(ctx).state_dir
    journal.record(state_dir, metadata["id"], "pushing", notebook=str(Path(folder) / metadata["code_file"]))
    job = push_once(k, metadata, text, before=before)
    journal.record(state_dir, str(job), "pushed", version=job.version)
    if as_json:
        print_json({"job": str(job), "url": f"https://www.kaggle.com/code/{job.kernel}"})
    else:
        click.echo(f"pushed {job}" + (" (a new version: the earlier session keeps running)" if before else ""))
        click.echo(f"  follow it: kagg kaggle logs {job} -f")
