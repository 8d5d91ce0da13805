"""What one batch item does, for each ``--operation``: the same calls as the single commands.

Each operation has two halves. ``check`` is read-only and runs for every item
before any work starts, so that a bad list changes nothing; ``run`` does the
work and may be retried. Deploy is exactly ``kagg.deploy.prepare`` then
``kagg.deploy.deploy_prepared``, delete is ``kagg.deploy.delete``, invoke is
``kagg.invoke.call`` — no second implementation.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Optional

from kagg.atomic import component_problem, inside, write_bytes_atomic
from kagg.batch.spec import BatchItem
from kagg.errors import BadInput, NotFound, OperationFailed, TransientError
from kagg.model import DeployOptions
from kagg.registry import Registry

Step = Callable[[str], None]
#: HTTP statuses worth asking again (busy, throttled, gateway trouble); others are permanent
TRANSIENT_HTTP = (429, 502, 503, 504)


@dataclass
class Context:
    """What every item of one batch shares."""

    registry: Registry
    out_dir: Optional[Path] = None
    force: bool = False
    allow_secrets: bool = False
    #: per worker thread: what :meth:`wait_for_slot` calls (set by the runner around each job)
    _slot: threading.local = field(default_factory=threading.local, repr=False, compare=False)

    def wait_for_slot(self) -> None:
        """Block until this thread's job may make its first mutating call (one of ``--parallel``
        slots, and one of its provider's). The runner decides; outside a runner it returns at once."""
        wait = getattr(self._slot, "wait", None)
        if wait is not None:
            wait()

    def slot_waiter(self, wait: Optional[Callable[[], None]]) -> None:
        """What :meth:`wait_for_slot` calls in this thread (None: nothing)."""
        self._slot.wait = wait


@dataclass
class Job:
    """An item that passed its checks, with the name it will have and what ``check`` found."""

    item: BatchItem
    name: str
    checked: Any = None  # reused by the first attempt, so the notebook is not loaded twice
    skip: Optional[str] = None  # a reason to skip without running (e.g. nothing to delete)


@dataclass
class Outcome:
    """What a successful ``run`` did."""

    status: str  # "ok" or "skipped"
    detail: str  # deployed, updated, unchanged, deleted, written to DIR, HTTP 200, ...
    url: Optional[str] = None
    output: Any = None
    notes: list[str] = field(default_factory=list)


def _derived_name(item: BatchItem) -> str:
    """The endpoint name a deploy of this item gives (explicit, else from the notebook)."""
    if item.name:
        return item.name
    from kagg.notebook.convert import convert
    from kagg.notebook.loading import load_notebook

    return convert(load_notebook(item.notebook), entry=item.entry, name=None).name


def _file_name(name: str, what: str) -> str:
    """``name`` if it can be a file or folder name under ``-o DIR``; else BadInput (the row is named
    by the caller: a check's BadInput becomes a problem at the item's line)."""
    problem = component_problem(name)
    if problem:
        raise BadInput(f"the name {name!r} cannot be used for the {what} under -o DIR: {problem}; "
                       "give the item a plain name (letters, digits, '-', '_', '.')")
    return name


class Operation(ABC):
    """What ``--operation NAME`` does to one item."""

    name = ""
    needs_out_dir = False
    #: ``check`` is CPU work (loading, scanning, converting notebooks): a long list is checked in
    #: worker processes (kagg.batch.session), so the job must survive pickling (see ``portable``)
    heavy_check = False
    #: ``run`` calls ``ctx.wait_for_slot()`` itself, just before its first mutating call, so that its
    #: local work and read-only calls overlap the slots' cloud work; otherwise a job waits for its
    #: slot before ``run`` starts
    waits_for_slot = False

    @abstractmethod
    def check(self, item: BatchItem, ctx: Context) -> Job:
        """Read-only: raise BadInput if the item cannot be done; runs for every item before any work."""

    def portable(self, job: Job) -> Job:
        """``job`` as a check worker process sends it back (it is pickled); undone by ``restore``."""
        return job

    def restore(self, job: Job, ctx: Context) -> Job:
        """``job`` from a check worker, made whole again in the process that runs it."""
        return job

    @abstractmethod
    def run(self, job: Job, ctx: Context, attempt: int, step: Step) -> Outcome:
        """Do the work (``attempt`` counts from 1); ``step`` reports what is happening now."""


class Deploy(Operation):
    name = "deploy"
    heavy_check = True
    waits_for_slot = True  # building and planning need no slot: only the provider's apply does

    def _prepare(self, item: BatchItem, ctx: Context):
        from kagg.deploy import prepare

        return prepare(item.notebook, item.provider, item.deploy_options(ctx.force, ctx.allow_secrets),
                       ctx.registry)

    def check(self, item: BatchItem, ctx: Context) -> Job:
        prepared = self._prepare(item, ctx)
        return Job(item, prepared.name, checked=prepared)

    def portable(self, job: Job) -> Job:
        # a provider instance may hold what does not pickle (a cloud SDK session): the runner's
        # process makes its own, as prepare does, from the item's provider name
        if job.checked is None:
            return job
        return replace(job, checked=replace(job.checked, provider=None))

    def restore(self, job: Job, ctx: Context) -> Job:
        if job.checked is None or job.checked.provider is not None:
            return job
        from kagg.providers import get_provider

        provider = get_provider(job.item.provider, state_dir=ctx.registry.state_dir)
        return replace(job, checked=replace(job.checked, provider=provider))

    def run(self, job: Job, ctx: Context, attempt: int, step: Step) -> Outcome:
        from kagg.deploy import deploy_prepared

        # a retry re-checks: a failed attempt may have changed what is deployed
        prepared = job.checked if attempt == 1 and job.checked is not None else self._prepare(job.item, ctx)
        result = deploy_prepared(prepared, ctx.registry, step, before_apply=ctx.wait_for_slot)
        url = result.endpoint.url if result.endpoint else None
        if result.status == "skipped":
            return Outcome("skipped", "unchanged", url, notes=result.notes)
        return Outcome("ok", result.status, url, notes=result.notes)


class Delete(Operation):
    name = "delete"

    def check(self, item: BatchItem, ctx: Context) -> Job:
        name = _derived_name(item)
        if ctx.registry.find(name) is None:
            return Job(item, name, skip=f"no endpoint named {name!r} in the registry")
        return Job(item, name)

    def run(self, job: Job, ctx: Context, attempt: int, step: Step) -> Outcome:
        from kagg.deploy import delete

        step(f"deleting {job.name}")
        try:
            warnings = delete(job.name, ctx.registry, DeployOptions(name=job.name))
        except NotFound:
            return Outcome("skipped", "already gone")
        return Outcome("ok", "deleted", notes=list(warnings))


class Convert(Operation):
    name = "convert"
    needs_out_dir = True

    def _convert(self, item: BatchItem):
        from kagg.notebook.convert import convert
        from kagg.notebook.loading import load_notebook

        return convert(load_notebook(item.notebook), entry=item.entry, name=item.name)

    def check(self, item: BatchItem, ctx: Context) -> Job:
        from kagg.providers import get_provider

        function = self._convert(item)
        _file_name(function.name, "folder it is converted into")
        provider = get_provider(item.provider, state_dir=ctx.registry.state_dir)
        return Job(item, function.name, checked=(function, provider))

    def run(self, job: Job, ctx: Context, attempt: int, step: Step) -> Outcome:
        from kagg.packaging.builder import write_tree
        from kagg.providers import get_provider

        if attempt == 1 and job.checked is not None:
            function, provider = job.checked
        else:
            function = self._convert(job.item)
            provider = get_provider(job.item.provider, state_dir=ctx.registry.state_dir)
        dest = ctx.out_dir / _file_name(job.name, "folder it is converted into")
        inside(ctx.out_dir, dest)  # a symlink out of -o DIR is refused too
        step(f"writing {dest}")
        write_tree(function, provider.shims, dest)
        return Outcome("ok", f"written to {dest}", notes=[str(n) for n in function.notes])


class Download(Operation):
    name = "download"
    needs_out_dir = True

    def check(self, item: BatchItem, ctx: Context) -> Job:
        if not item.is_url:
            return Job(item, item.label, skip="a local file; nothing to download")
        return Job(item, _file_name(item.label, "downloaded notebook"))

    def run(self, job: Job, ctx: Context, attempt: int, step: Step) -> Outcome:
        from kagg.notebook.loading import load_notebook

        step(f"fetching {job.item.notebook}")
        loaded = load_notebook(job.item.notebook)
        dest = ctx.out_dir / f"{_file_name(job.name, 'downloaded notebook')}.ipynb"
        write_bytes_atomic(dest, loaded.raw if isinstance(loaded.raw, bytes) else str(loaded.raw).encode("utf-8"),
                           within=ctx.out_dir)
        return Outcome("ok", f"saved to {dest}", url=job.item.notebook)


class Invoke(Operation):
    name = "invoke"

    def check(self, item: BatchItem, ctx: Context) -> Job:
        # an endpoint missing from the registry fails its own item when it runs (the others still
        # run), as `--operation delete` skips one: the list itself is fine
        return Job(item, _derived_name(item))

    def run(self, job: Job, ctx: Context, attempt: int, step: Step) -> Outcome:
        from kagg.invoke import call

        item = job.item
        ctx.registry.get(job.name)  # NotFound: this item fails, not retried
        step(f"calling {job.name}")
        result = call(job.name, ctx.registry, payload=item.payload if item.has_payload else None,
                      raise_for_status=False)
        if not result.ok:
            error = TransientError if result.status in TRANSIENT_HTTP else OperationFailed
            raise error(f"{result.url} answered {result.status}: {result.error_message()}")
        return Outcome("ok", f"HTTP {result.status}", result.url, output=result.data)


@lru_cache(maxsize=1)
def _kaggle_user() -> str:
    """The Kaggle user, checked once per batch (an access token is checked over the network)."""
    from kagg.kaggle.credentials import load_credentials

    return load_credentials().username


class RunOnKaggle(Operation):
    """``--operation run``: each notebook as a Kaggle kernel (kagg.kaggle.run, as ``kagg run
    --kaggle``). At most 2 at once unless ``--max-per-provider kaggle=N``; a push Kaggle refuses
    for the GPU session cap waits in kagg's queue. A failed run is not retried (a retry would
    be a second job, spending quota again)."""

    name = "run"

    def check(self, item: BatchItem, ctx: Context) -> Job:
        from kagg.kaggle.kernel import KernelRequest, build_kernel

        if item.provider != "kaggle":
            raise BadInput(f"--operation run runs notebooks on Kaggle, not {item.provider}: leave the provider "
                           "column empty (or kaggle)")
        _kaggle_user()  # no credentials: every item says so before anything is pushed
        build_kernel(item.notebook, KernelRequest(owner="kagg", slug="kagg-check", title="kagg-check",
                                                  timeout_s=item.timeout, allow_secrets=ctx.allow_secrets))
        return Job(item, _file_name(item.name or item.label, "run's output folder"))

    def run(self, job: Job, ctx: Context, attempt: int, step: Step) -> Outcome:
        from kagg.kaggle.run import RunEvents, RunRequest, run_on_kaggle

        out_dir = ctx.out_dir / job.name if ctx.out_dir else None
        req = RunRequest(notebook=Path(job.item.notebook), timeout_s=job.item.timeout, out_dir=out_dir,
                         state_dir=ctx.registry.state_dir, allow_secrets=ctx.allow_secrets)
        notes: list[str] = []
        events = RunEvents(step=lambda name, detail: step(f"{name} {detail}".strip()),
                           status=lambda status: step(f"kernel {status}"), note=notes.append)
        summary = run_on_kaggle(req, events)
        if not summary.ok:
            raise OperationFailed(f"{summary.job}: {summary.failure}")
        return Outcome("ok", f"{summary.job} {summary.status}, {len(summary.files)} files in {summary.out_dir}",
                       summary.url, output=summary.to_dict(), notes=notes)


OPERATIONS: dict[str, type[Operation]] = {op.name: op for op in (Deploy, Delete, Convert, Download, Invoke,
                                                                 RunOnKaggle)}


def get_operation(name: str) -> Operation:
    try:
        return OPERATIONS[name]()
    except KeyError:
        raise BadInput(f"unknown operation {name!r}; one of {', '.join(OPERATIONS)}")


