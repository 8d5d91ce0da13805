"""Deploy and delete: the one code path behind ``kagg deploy``, ``kagg delete`` and ``kagg batch``.

Everything that can be refused is checked before anything is built or
changed: the registry parses, the provider and its options are valid, the
notebook loads, holds no credentials, converts, and its name is free.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Literal, Optional

from kagg.errors import BadInput
from kagg.model import ConvertedFunction, DeployOptions, Endpoint, Plan
from kagg.providers import get_provider
from kagg.providers.base import Provider
from kagg.registry import Registry

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


def _quiet(_: str) -> None:
    return None


def convert_checked(source: str, entry: Optional[str] = None, name: Optional[str] = None,
                    allow_secrets: bool = False) -> ConvertedFunction:
    """Load and convert a notebook behind the secrets gate (the notebook, then the modules
    beside it that will be packaged): what every deploy and ``kagg serve`` start from."""
    from kagg.notebook.convert import convert
    from kagg.notebook.secrets import check_files, check_notebook
    from kagg.notebook.loading import load_notebook

    loaded = load_notebook(source)
    if not allow_secrets:
        check_notebook(loaded.nb, loaded.source)
    function = convert(loaded, entry=entry, name=name)
    if not allow_secrets:
        check_files(function.local_files, loaded.source)
    return function


def prepare(source: str, provider_name: str = "local", options: Optional[DeployOptions] = None,
            registry: Optional[Registry] = None) -> Prepared:
    """Run every check of a deploy without building or changing anything."""
    options = options or DeployOptions()
    registry = registry or Registry()
    registry.check()
    provider = get_provider(provider_name, state_dir=registry.state_dir)
    provider.validate_options(options)
    function = convert_checked(source, options.entry, options.name, options.allow_secrets)
    name = options.name or function.name
    provider.validate_name(name)
    current = registry.find(name)
    if current is not None and current.provider != provider.name:
        raise BadInput(f"the name {name!r} is already used by a {current.provider} endpoint; "
                       f"choose another with --name or run `kagg delete {name}` first")
    provider.validate_target(name, current, options)
    function.name = name
    return Prepared(provider, function, name, current, options)


def deploy(source: str, provider_name: str = "local", options: Optional[DeployOptions] = None,
           registry: Optional[Registry] = None, progress: Progress = _quiet) -> DeployResult:
    """Convert, build, plan and apply one notebook, then record the endpoint."""
    registry = registry or Registry()
    prepared = prepare(source, provider_name, options, registry)
    return deploy_prepared(prepared, registry, progress)


def deploy_prepared(prepared: Prepared, registry: Registry, progress: Progress = _quiet) -> DeployResult:
    """The building and changing half of :func:`deploy`, for callers that already ran :func:`prepare`."""
    provider, function, options = prepared.provider, prepared.function, prepared.options
    notes = [str(n) for n in function.notes]
    progress(f"building {prepared.name} for {provider.name}")
    artifact = provider.build(function, options)
    progress(f"planning {prepared.name} ({artifact.sha256[:12]}, {artifact.size} bytes)")
    plan = provider.plan(artifact, prepared.current, options)
    result = DeployResult("planned", prepared.name, provider.name, plan, function, notes=notes)
    if options.dry_run:
        return result
    if plan.unchanged and not options.force:
        result.status = "skipped"
        result.endpoint = prepared.current
        return result
    progress(f"deploying {prepared.name} to {provider.name}")
    endpoint = provider.apply(plan)
    registry.put(endpoint)
    result.endpoint = endpoint
    result.status = "updated" if prepared.current is not None else "deployed"
    return result


def delete(name: str, registry: Optional[Registry] = None,
           options: Optional[DeployOptions] = None) -> list[str]:
    """Remove an endpoint's resources, then its registry entry. Returns warnings."""
    registry = registry or Registry()
    endpoint = registry.get(name)
    provider = get_provider(endpoint.provider, state_dir=registry.state_dir)
    warnings = provider.delete(endpoint, options or DeployOptions())
    registry.remove(name)
    return warnings
