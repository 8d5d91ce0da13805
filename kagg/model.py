"""The data that flows between kagg's parts.

A notebook becomes a :class:`ConvertedFunction` (conversion), that becomes an
:class:`Artifact` (a provider's ``build``), that becomes a :class:`Plan`
(``plan``), that becomes an :class:`Endpoint` (``apply``) recorded in the
registry. Each step only needs the object of the step before it.
"""

from __future__ import annotations

import copy
import datetime as _dt
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, Optional

Mode = Literal["handler", "script"]

#: JSON Schema type names used for parameters ("any" means unconstrained).
PARAM_TYPES = ("int", "float", "str", "bool", "list", "dict", "any")


_last_now: tuple[int, str] = (-1, "")


def utc_now() -> str:
    """An ISO-8601 UTC timestamp with second precision, as stored in the registry.

    Made once per second (a batch asks for six per deployed item, several µs each to format)."""
    global _last_now
    second = int(time.time())
    last = _last_now
    if last[0] == second:
        return last[1]
    text = _dt.datetime.fromtimestamp(second, _dt.timezone.utc).isoformat().replace("+00:00", "Z")
    _last_now = (second, text)
    return text


def json_copy(value: Any) -> Any:
    """A deep copy of JSON-like data (dicts, lists, scalars), as ``dataclasses.asdict`` makes one,
    in a sixth of its time; anything else is copied with ``copy.deepcopy``."""
    kind = type(value)
    if kind is str or kind is int or kind is float or kind is bool or value is None:
        return value
    if kind is dict:
        return {k: json_copy(v) for k, v in value.items()}
    if kind is list:
        return [json_copy(v) for v in value]
    return copy.deepcopy(value)


@dataclass
class Parameter:
    """One request parameter: from a handler's signature or a ``parameters`` cell."""

    name: str
    type: str = "any"  # one of PARAM_TYPES
    default: Any = None
    required: bool = False
    help: Optional[str] = None
    #: a handler default that is not a JSON literal, as written (``DEFAULT_N``, ``len(x)``): then
    #: ``default`` is unused, /schema shows no default and a request without the parameter gets the
    #: function's own default
    default_expr: Optional[str] = None

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Parameter":
        return cls(**data)


@dataclass
class Note:
    """Something conversion did that the user should know (a dropped magic, an unresolved import)."""

    message: str
    cell: Optional[int] = None  # 1-based index among all cells of the notebook
    line: Optional[int] = None  # 1-based line within the cell

    def __str__(self) -> str:
        where = ""
        if self.cell is not None:
            where = f"cell {self.cell}"
            if self.line is not None:
                where += f", line {self.line}"
            where += ": "
        return where + self.message


@dataclass
class SourceInfo:
    """Where a notebook came from and the sha256 of its bytes."""

    path: str  # a path as the user gave it, or a URL
    sha256: str


@dataclass
class ConvertedFunction:
    """A notebook turned into code that can serve requests.

    ``module_source`` runs once per instance (cold start). In script mode,
    ``request_source`` runs per request in a copy of the module's namespace
    with the request's parameters laid over the defaults; the response is the
    variable ``result``.
    """

    name: str
    mode: Mode
    entry: Optional[str]
    module_source: str
    request_source: Optional[str]
    parameters: list[Parameter]
    accepts_kwargs: bool
    requirements: list[str]
    requirements_origin: Literal["file", "inferred"]
    source: SourceInfo
    notes: list[Note] = field(default_factory=list)
    train_source: Optional[str] = None  # code of the cells tagged ``train``
    local_files: dict[str, bytes] = field(default_factory=dict)  # modules beside the notebook it imports, data files
    #: which of ``local_files`` are data files (not imported modules), by relative path
    data_files: list[str] = field(default_factory=list)
    #: the paths beside the notebook its kept cells name (files, folders, globs), packaged or not
    data_refs: list[str] = field(default_factory=list)
    #: kagg's own files added for a feature (``/jobs``: kagg_jobs.py, its Kaggle client and the
    #: kernel template, kagg.jobs_template), at the artifact's root beside the runtime
    runtime_files: dict[str, bytes] = field(default_factory=dict)

    def schema(self) -> dict:
        """The parameters as a JSON Schema object (served at ``GET /schema``)."""
        json_types = {"int": "integer", "float": "number", "str": "string", "bool": "boolean",
                      "list": "array", "dict": "object"}
        props: dict[str, dict] = {}
        required = []
        for p in self.parameters:
            prop: dict[str, Any] = {}
            if p.type in json_types:
                prop["type"] = json_types[p.type]
            if not p.required and p.default_expr is None:
                prop["default"] = p.default
            if p.help:
                prop["description"] = p.help
            props[p.name] = prop
            if p.required:
                required.append(p.name)
        schema: dict[str, Any] = {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": self.name,
            "type": "object",
            "properties": props,
            "additionalProperties": self.accepts_kwargs,
        }
        if required:
            schema["required"] = required
        return schema

    def summary(self) -> dict:
        """What conversion decided, for ``kagg convert`` and ``--json``."""
        return {
            "name": self.name,
            "mode": self.mode,
            "entry": self.entry,
            "source": {"path": self.source.path, "sha256": self.source.sha256},
            "parameters": [p.to_dict() for p in self.parameters],
            "accepts_kwargs": self.accepts_kwargs,
            "requirements": list(self.requirements),
            "requirements_origin": self.requirements_origin,
            "notes": [str(n) for n in self.notes],
            "has_train_cells": bool(self.train_source),
            "local_files": sorted(self.local_files),
        }

    def manifest(self, kagg_version: str) -> dict:
        """The content of ``kagg.json`` inside the artifact; read by the runtime."""
        return {
            "name": self.name,
            "mode": self.mode,
            "entry": self.entry,
            "source_sha256": self.source.sha256,
            "kagg_version": kagg_version,
            "accepts_kwargs": self.accepts_kwargs,
            "parameters": [p.to_dict() for p in self.parameters],
            "schema": self.schema(),
        }


@dataclass
class Artifact:
    """A built, deterministic zip: identical inputs give identical bytes and sha256."""

    provider: str
    path: Path
    sha256: str
    size: int  # bytes, zipped
    unzipped_size: int
    function: ConvertedFunction
    files: list[str] = field(default_factory=list)


@dataclass
class DeployOptions:
    """Everything a user can ask of one deploy. Providers read the fields they know."""

    name: Optional[str] = None
    entry: Optional[str] = None
    port: Optional[int] = None
    region: Optional[str] = None
    memory: Optional[int] = None
    timeout: Optional[int] = None
    env: dict[str, str] = field(default_factory=dict)
    role: Optional[str] = None
    public: bool = False
    force: bool = False
    dry_run: bool = False
    allow_secrets: bool = False
    runtime: Optional[str] = None
    arch: Optional[str] = None
    bucket: Optional[str] = None
    startup_timeout: Optional[float] = None  # local: seconds to wait for a cold start (default 120)
    project: Optional[str] = None  # gcp: the Google Cloud project (default: the credentials' project)
    service_account: Optional[str] = None  # gcp: the service account the function runs as
    impersonate: Optional[str] = None  # gcp: service account to impersonate for calls and ID tokens
    min_instances: Optional[int] = None  # gcp: instances kept warm
    max_instances: Optional[int] = None  # gcp, azure: the most instances at once
    subscription: Optional[str] = None  # azure: subscription id (default: the credential's only one)
    resource_group: Optional[str] = None  # azure: resource group (default: derived from the name)
    #: globs (relative to the notebook's folder) of more files to package, and of files to leave out
    include: list[str] = field(default_factory=list)
    exclude: list[str] = field(default_factory=list)
    max_data_size: Optional[int] = None  # bytes of data files allowed (default: 50 MB, 20 MB one file)
    #: with ``public``: leave ``/jobs`` open too (anyone with the URL may start Kaggle GPU jobs)
    public_jobs: bool = False
    venv: bool = False  # local: serve from a virtual environment made from the requirements
    adopt: bool = False  # take over a cloud resource that this registry's entry did not make
    #: the identity of the registry entry this deploy writes (set by kagg.deploy, not by users);
    #: providers keep it on the resources they make and check it before changing one
    owner: Optional[str] = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class PlanStep:
    """One call a provider would make; ``mutating`` ones are skipped by ``--dry-run``."""

    action: str
    description: str
    mutating: bool = True

    def __str__(self) -> str:
        return f"{self.action}: {self.description}"


@dataclass
class Endpoint:
    """A deployed function as recorded in ``endpoints.json`` (docs/architecture.md, "Registry")."""

    name: str
    provider: str
    url: str
    auth: str = "none"
    region: Optional[str] = None
    source: dict[str, Any] = field(default_factory=dict)  # {"path": ..., "sha256": ...}
    artifact_sha256: Optional[str] = None
    created_at: str = field(default_factory=utc_now)
    updated_at: str = field(default_factory=utc_now)
    provider_data: dict[str, Any] = field(default_factory=dict)
    #: "pending" from just before the first mutating call of a deploy until it completes
    status: str = "ready"
    #: identity kept on the cloud resources this entry made (see Provider.check_owner)
    owner: Optional[str] = None

    @property
    def pending(self) -> bool:
        return self.status == "pending"

    def to_dict(self) -> dict:
        """The registry's form, in field order (what ``asdict`` gives, without its recursion into
        every value: a batch makes two of these per item, on its critical path)."""
        return {f.name: json_copy(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: dict) -> "Endpoint":
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        return cls(**known)


@dataclass
class Plan:
    """What ``apply`` would do. ``unchanged`` means the deployed code already matches."""

    provider: str
    name: str
    artifact: Artifact
    current: Optional[Endpoint]
    options: DeployOptions
    steps: list[PlanStep] = field(default_factory=list)
    unchanged: bool = False
    data: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> list[str]:
        return [str(s) for s in self.steps]
