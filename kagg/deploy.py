"""Deploy and delete: the one code path behind ``kagg deploy``, ``kagg delete`` and ``kagg batch``.

Everything that can be refused is checked before anything is built or
changed: the registry parses, the provider and its options are valid, the
notebook loads, holds no credentials, converts, and its name is free.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Literal, Optional

from kagg.errors import BadInput, OperationFailed
from kagg.model import ConvertedFunction, DeployOptions, Endpoint, Plan
from kagg.providers import get_provider
from kagg.providers.base import Provider
from kagg.registry import Registry
from kagg.urls import is_url

Status = Literal["deployed", "updated", "skipped", "planned"]
Progress = Callable[[str], None]


@dataclass
class Prepared:
    """A deploy that passed every check and is ready to build."""

    provider: Provider
    function: ConvertedFunction
    name: str
    current: Optional[Endpoint]
    options: DeployOptions
    #: ``/jobs`` (docs/jobs.md): {"enabled": bool, "username": Kaggle user or None}; empty without train cells
    jobs: dict = field(default_factory=dict)


@dataclass
class DeployResult:
    """What a deploy did; ``endpoint`` is None only for a dry run."""

    status: Status
    name: str
    provider: str
    plan: Plan
    function: ConvertedFunction
    endpoint: Optional[Endpoint] = None
    notes: list[str] = field(default_factory=list)
    jobs: dict = field(default_factory=dict)  # as Prepared.jobs


def _quiet(_: str) -> None:
    return None


def convert_checked(source: str, entry: Optional[str] = None, name: Optional[str] = None,
                    allow_secrets: bool = False, include: Optional[list[str]] = None,
                    exclude: Optional[list[str]] = None,
                    max_data_size: Optional[int] = None) -> ConvertedFunction:
    """Load and convert a notebook behind the secrets gate (the notebook, then every file from
    the user's side that will be packaged: the modules beside it, requirements.txt, data files),
    before anything is built: what every deploy and ``kagg serve`` start from.

    ``include``, ``exclude`` and ``max_data_size`` settle the data files packaged from the
    notebook's folder (:func:`kagg.notebook.datafiles.package_data`: ``--include``, ``--exclude``,
    ``--max-data-size``)."""
    from kagg.notebook.convert import convert
    from kagg.notebook.datafiles import package_data
    from kagg.notebook.secrets import check_notebook, check_packaged
    from kagg.notebook.loading import load_notebook

    loaded = load_notebook(source)
    if not allow_secrets:
        check_notebook(loaded.nb, loaded.source)
    function = convert(loaded, entry=entry, name=name)
    package_data(function, loaded.folder, include or (), exclude or (), max_data_size)
    if not allow_secrets:
        check_packaged(function, loaded.folder, loaded.source)
    return function


def prepare(source: str, provider_name: str = "local", options: Optional[DeployOptions] = None,
            registry: Optional[Registry] = None) -> Prepared:
    """Run every check of a deploy without building or changing anything."""
    options = options or DeployOptions()
    registry = registry or Registry()
    registry.check()
    if not options.dry_run:
        registry.check_writable()
    provider = get_provider(provider_name, state_dir=registry.state_dir)
    provider.validate_options(options)
    function = convert_checked(source, options.entry, options.name, options.allow_secrets, options.include,
                               options.exclude, options.max_data_size)
    name = options.name or function.name
    provider.validate_name(name)
    current = registry.find(name)
    if current is not None and current.provider != provider.name:
        raise BadInput(f"the name {name!r} is already used by a {current.provider} endpoint; "
                       f"choose another with --name or run `kagg delete {name}` first")
    if current is not None and options.name is None and _other_source(current, function):
        raise BadInput(f"the name {name!r} (made from {function.source.path}) is already used by the endpoint "
                       f"deployed from {current.source.get('path')}; give this one its own name with --name, "
                       f"or pass --name {name} to replace that endpoint")
    provider.validate_target(name, current, options)
    function.name = name
    options, jobs = _attach_jobs(function, source, options, provider)
    provider.check_function(function, options)
    return Prepared(provider, function, name, current, options, jobs)


def _attach_jobs(function: ConvertedFunction, source: str, options: DeployOptions,
                 provider: Provider) -> tuple[DeployOptions, dict]:
    """A notebook with train cells gets ``/jobs`` (the kernel template in its artifact) and the
    deployer's Kaggle credentials as secret env entries (kagg.jobs_secrets); others are unchanged."""
    if not function.train_source:
        return options, {}
    import importlib.util

    from kagg.jobs_secrets import deployer_secrets, with_secrets
    from kagg.jobs_template import attach_jobs
    from kagg.model import Note

    if provider.name == "local" and not options.venv and importlib.util.find_spec("kagglesdk") is None:
        function.notes.append(Note("POST /jobs is off: this environment lacks kagglesdk, which a local endpoint "
                                   "needs for it; pip install 'kagg[kaggle]' (or deploy with --venv), then "
                                   "deploy again"))
        return options, {"enabled": False}

    setup = attach_jobs(function, source, options.public, options.public_jobs)
    if not setup.enabled:
        return options, {"enabled": False}
    if options.dry_run:
        return options, {"enabled": True, "username": None}
    secrets = deployer_secrets()
    if secrets.problem:
        function.notes.append(Note(f"/jobs will answer 503 until the function has Kaggle credentials: "
                                   f"{secrets.problem}; then deploy again"))
    return with_secrets(options, secrets), {"enabled": True, "username": secrets.username}


def _other_source(current: Endpoint, function: ConvertedFunction) -> bool:
    """True when ``current`` was deployed from another notebook than ``function``'s: two notebooks
    whose derived names collide (``日本.ipynb`` and ``中国.ipynb`` both give ``notebook``)."""
    old, new = current.source.get("path"), function.source.path
    if not isinstance(old, str) or not old or old == new:
        return False
    if is_url(old) or is_url(new):
        return True
    old_path, new_path = Path(old), Path(new)
    if old_path.name != new_path.name:
        return True
    # the same file name from another folder, or the same file given another way (./nb, ../x/nb)
    return old_path.exists() and old_path.resolve() != new_path.resolve()


def deploy(source: str, provider_name: str = "local", options: Optional[DeployOptions] = None,
           registry: Optional[Registry] = None, progress: Progress = _quiet) -> DeployResult:
    """Convert, build, plan and apply one notebook, then record the endpoint."""
    registry = registry or Registry()
    prepared = prepare(source, provider_name, options, registry)
    return deploy_prepared(prepared, registry, progress)


def deploy_prepared(prepared: Prepared, registry: Registry, progress: Progress = _quiet,
                    before_apply: Callable[[], None] = lambda: None) -> DeployResult:
    """The building and changing half of :func:`deploy`, for callers that already ran :func:`prepare`.

    Plan, apply and the registry write happen under the name's lock, against the entry as it is
    then (another kagg may have changed it since :func:`prepare`). The entry is written
    ``pending`` before the first mutating call and completed after the last, so a run killed at
    any moment leaves nothing the registry cannot name (docs/architecture.md, "Registry").
    ``before_apply`` runs between the two: a batch waits there for a free slot, so building and
    planning overlap other items' deploys; if it raises (Ctrl-C), the entry is put back as it was.
    """
    provider, function = prepared.provider, prepared.function
    provider.progress = progress
    notes = [str(n) for n in function.notes]
    progress(f"building {prepared.name} for {provider.name}")
    registry.ensure_state_dir()
    artifact = provider.build(function, prepared.options)
    with registry.name_lock(prepared.name):
        current = _current_under_lock(prepared, registry)
        options = replace(prepared.options, owner=(current.owner if current is not None and current.owner
                                                    else prepared.options.owner or uuid.uuid4().hex))
        progress(f"planning {prepared.name} ({artifact.sha256[:12]}, {artifact.size} bytes)")
        plan = provider.plan(artifact, current, options)
        result = DeployResult("planned", prepared.name, provider.name, plan, function, notes=notes,
                              jobs=prepared.jobs)
        if current is not None and current.pending:
            plan.unchanged = False  # an interrupted deploy: finish it
        if options.dry_run:
            return result
        if plan.unchanged and not options.force:
            result.status = "skipped"
            result.endpoint = current
            return result
        progress(f"deploying {prepared.name} to {provider.name}")
        registry.put(_pending_entry(provider, plan, current, options.owner))
        try:
            before_apply()
        except BaseException:  # nothing was called: the entry goes back to what it was
            _put_back(registry, prepared.name, current)
            raise
        try:
            endpoint = provider.apply(plan)
        except OperationFailed as exc:
            _record_failure(registry, prepared.name, current, exc)
            raise
        endpoint.status = "ready"
        endpoint.owner = options.owner
        registry.put(endpoint)
    result.endpoint = endpoint
    result.status = "updated" if current is not None and not current.pending else "deployed"
    return result


def _current_under_lock(prepared: Prepared, registry: Registry) -> Optional[Endpoint]:
    """The entry of the name as it is now that the lock is held."""
    current = registry.find(prepared.name)
    if current is not None and current.provider != prepared.provider.name:
        raise BadInput(f"the name {prepared.name!r} is now used by a {current.provider} endpoint "
                       f"(another kagg deployed it meanwhile); choose another with --name")
    return current


def _pending_entry(provider: Provider, plan: Plan, current: Optional[Endpoint], owner: Optional[str]) -> Endpoint:
    """The entry written before apply: the previous entry's data (what may still run) plus what
    the provider says ``apply`` may create, so `kagg delete` can find both."""
    source = plan.artifact.function.source
    base = current.to_dict() if current is not None else {}
    base.update(name=plan.name, provider=provider.name, status="pending", owner=owner,
                source={"path": source.path, "sha256": source.sha256},
                region=plan.data.get("region") or (current.region if current else None),
                provider_data={**(current.provider_data if current else {}), **provider.pending_data(plan)})
    base.setdefault("url", "")
    return Endpoint.from_dict(base)


def _record_failure(registry: Registry, name: str, current: Optional[Endpoint], exc: OperationFailed) -> None:
    """After a failed apply, record what the provider says is there now (see DeployFailed)."""
    if exc.endpoint is not None:
        registry.put(exc.endpoint)
    elif exc.nothing_left:
        _put_back(registry, name, current)


def _put_back(registry: Registry, name: str, current: Optional[Endpoint]) -> None:
    """Nothing was created: the entry becomes what it was before the pending one (or goes)."""
    if current is None:
        registry.discard(name)
    else:
        registry.put(current)


def delete(name: str, registry: Optional[Registry] = None,
           options: Optional[DeployOptions] = None) -> list[str]:
    """Remove an endpoint's resources, then its registry entry (a pending one too). Returns warnings."""
    registry = registry or Registry()
    registry.get(name)  # a missing or invalid entry is bad input before any lock or folder is made
    registry.check_writable()
    with registry.name_lock(name):
        endpoint = registry.get(name)
        provider = get_provider(endpoint.provider, state_dir=registry.state_dir)
        warnings = provider.delete(endpoint, options or DeployOptions())
        registry.remove(name)
    return warnings
