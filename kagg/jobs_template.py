"""The artifact's side of ``POST /jobs``: the kernel template, built at deploy time (docs/jobs.md).

kagg's kernel builder (:func:`kagg.kaggle.kernel.build_kernel`) runs here, on the deployer's
machine, with a placeholder slug and no parameters; the kernel it makes is cut into the pieces a
request fills in (the job's name, the injected parameters), and shipped as ``kagg_jobs.json``
beside ``kagg_jobs.py``. So a function never carries the builder or its dependencies: only
kagglesdk, added to its requirements when (and only when) the notebook has ``train`` cells.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from kagg.errors import BadInput
from kagg.model import ConvertedFunction, Note

TEMPLATE_FILE = "kagg_jobs.json"
JOBS_MODULES = ("kagg_jobs.py", "kagg_jobs_kaggle.py")
REQUIREMENT = "kagglesdk"
PLACEHOLDER_OWNER = "kagg-template"
PLACEHOLDER_SLUG = "kagg-job-template"
CONFIG_PREFIX = "_kagg_config = _kagg_json.loads("
#: a train parameter of this name is also attached as the kernel's competition source
COMPETITION_PARAMETER = "competition"
_RUNTIME_DIR = Path(__file__).resolve().parent / "packaging" / "runtime"


@dataclass
class JobsSetup:
    """What attaching jobs to a function decided: the files added, and what to tell the user."""

    enabled: bool
    files: dict[str, bytes] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def slug_prefix(function_name: str) -> str:
    """``kagg-job-<name>-<hash>-``: this function's kernels (distinct from another function whose
    name merely starts the same way), at most 33 characters so a slug stays within Kaggle's 50."""
    stem = re.sub(r"[^a-z0-9]+", "-", function_name.lower()).strip("-")[:16].strip("-") or "fn"
    return f"kagg-job-{stem}-{hashlib.sha256(function_name.encode('utf-8')).hexdigest()[:6]}-"


def build_template(source: str, function_name: str, access: str = "open", device: str = "gpu") -> bytes:
    """``kagg_jobs.json`` for the notebook at ``source``; BadInput when its train cells cannot
    become a kernel (the same one-line reasons as ``kagg run --kaggle``)."""
    from kagg.kaggle.kernel import KernelRequest, build_kernel
    from kagg.kaggle.kernel_cells import select_cells
    from kagg.notebook.loading import load_notebook
    from kagg.notebook.parameters import parameters_cell

    loaded = load_notebook(source)
    bundle = build_kernel(loaded, KernelRequest(owner=PLACEHOLDER_OWNER, slug=PLACEHOLDER_SLUG,
                                                title=PLACEHOLDER_SLUG, device=device))
    selection = select_cells(loaded)
    pcell = selection.parameters_cell
    declared = parameters_cell(pcell.source, pcell.number) if pcell else []
    cells = bundle.notebook["cells"]
    start = next(c for c in cells if c.get("id") == "kagg-start")["source"]
    head, sep, rest = start.partition("\n" + CONFIG_PREFIX)
    if not sep:
        raise RuntimeError("the kernel builder's start cell has no configuration line")
    config_line, newline, tail = rest.partition("\n")
    config = json.loads(_literal(config_line))
    header = next(c for c in cells if c.get("id") == "kagg-header")["source"].split("\n")
    modules = next((line for line in header if line.startswith("Modules shipped")), None)
    template = {
        "format": 1,
        "function": function_name,
        "slug_prefix": slug_prefix(function_name),
        "access": access,
        "notebook": json.dumps(bundle.notebook, sort_keys=True, ensure_ascii=False),
        "metadata": {k: v for k, v in bundle.metadata.items() if k not in ("id", "title", "code_file")},
        "config": {k: v for k, v in config.items() if k not in ("job", "parameters", "injected")},
        "start": [head + "\n", newline + tail],
        "parameters": [p.to_dict() for p in declared],
        "parameters_cell": f"cell-{pcell.number}" if pcell else None,
        "header": {"built": header[2], "modules": modules},
        "competition_parameter": COMPETITION_PARAMETER if any(p.name == COMPETITION_PARAMETER
                                                              for p in declared) else None,
        "notes": list(bundle.notes),
    }
    return (json.dumps(template, sort_keys=True, indent=1, ensure_ascii=False) + "\n").encode("utf-8")


def _literal(config_arg: str) -> str:
    """The JSON text of ``'...')``, what follows ``_kagg_config = _kagg_json.loads(`` on its line."""
    import ast

    return ast.literal_eval(config_arg[:-1])


def attach_jobs(function: ConvertedFunction, source: str, public: bool = False,
                public_jobs: bool = False) -> JobsSetup:
    """Give ``function`` the ``/jobs`` files when its notebook has train cells.

    A notebook whose train cells cannot become a kernel still deploys (its ``/jobs`` answers 404)
    with a note saying why. ``/jobs`` of a ``--public`` endpoint is closed unless ``public_jobs``.
    """
    if not function.train_source:
        return JobsSetup(False)
    access = "open" if (public_jobs or not public) else "closed"
    try:
        template = build_template(source, function.name, access)
    except BadInput as exc:
        setup = JobsSetup(False, notes=[f"POST /jobs is not available: the train cells do not build into a "
                                        f"Kaggle kernel ({exc})"])
        function.notes.extend(Note(n) for n in setup.notes)
        return setup
    files = {TEMPLATE_FILE: template}
    for name in JOBS_MODULES:
        files[name] = (_RUNTIME_DIR / name).read_bytes()
    function.runtime_files.update(files)
    if not any(re.split(r"[<>=!~\[; ]", r.strip(), 1)[0].lower() == REQUIREMENT for r in function.requirements):
        function.requirements.append(_pinned(REQUIREMENT))
    return JobsSetup(True, files)


def _pinned(name: str) -> str:
    """``kagglesdk==<the version installed here>`` (the one kagg's own Kaggle commands use), as
    inferred requirements are pinned; unpinned when it is not installed here."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"{name}=={version(name)}"
    except PackageNotFoundError:
        return name
