"""A converted notebook's requirements: ``requirements.txt`` beside it, else pip lines plus imports.

Inferred requirements are pinned to the versions installed where kagg runs,
because that is the environment in which the notebook was last known to
work. An import no installed distribution provides is never guessed at: it
becomes a note telling the user to list it.
"""

from __future__ import annotations

import ast
import functools
import importlib.metadata as metadata
import re
import sys
from pathlib import Path
from typing import Iterable, Optional

from kagg.model import Note

#: Imports that are provided by kagg's runtime inside the artifact, not by a distribution.
PROVIDED_MODULES = frozenset({"kagg_runtime"})


def canonical_name(name: str) -> str:
    """PEP 503 normalized project name, for comparing ``Scikit_Learn`` with ``scikit-learn``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(spec: str) -> Optional[str]:
    """The project name of a requirement line, or None for URLs and options."""
    match = re.match(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)", spec)
    if not match or re.match(r"^\s*[a-z+]+://", spec) or spec.lstrip().startswith(("git+", "hg+", "-")):
        egg = re.search(r"#egg=([A-Za-z0-9][A-Za-z0-9._-]*)", spec)
        return egg.group(1) if egg else None
    return match.group(1)


def read_requirements_file(path: Path) -> list[str]:
    """The requirement lines of a requirements.txt (comments and blank lines left out)."""
    lines = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        line = re.sub(r"(^|\s)#.*$", "", line).strip()
        if line:
            lines.append(line)
    return lines


def infer_requirements(pip_lines: Iterable[str], trees: Iterable[tuple[int, ast.AST]],
                       folder: Optional[Path]) -> tuple[list[str], list[Note]]:
    """Pip lines plus pinned distributions for the imports in ``trees`` ((cell number, AST) pairs)."""
    notes: list[Note] = []
    chosen: dict[str, str] = {}
    for spec in pip_lines:
        chosen.setdefault(canonical_name(requirement_name(spec) or spec), spec)
    done: set[str] = set()  # modules (and unambiguous top-level names) already resolved
    noted: set[str] = set()
    for cell, module, shown, line in _imports(trees):
        top = module.split(".")[0]
        if top in sys.stdlib_module_names or top in PROVIDED_MODULES or module in done or top in done:
            continue
        done.add(module)
        local = _local_module(top, folder)
        if local:
            done.add(top)
            notes.append(Note(f"import `{top}` is the local module {local} beside the notebook; "
                              "it is packaged with the function", cell, line))
            continue
        dists = distributions_for(module)
        if not dists:
            shared = top in _module_map()  # a namespace (``google``) others share: name the sub-package
            shown = shown if shared else top
            if not shared:
                done.add(top)
            if shown in noted or (not shared and canonical_name(top) in chosen):
                continue  # already noted, or a pip line asks for it
            noted.add(shown)
            notes.append(Note(f"import `{shown}` is not installed here; add it to requirements.txt", cell, line))
            continue
        for dist in dists:
            if canonical_name(dist) not in chosen:
                chosen[canonical_name(dist)] = f"{dist}=={metadata.version(dist)}"
    return sorted(chosen.values(), key=lambda s: canonical_name(requirement_name(s) or s)), notes


@functools.lru_cache(maxsize=None)
def distributions_for(module: str) -> list[str]:
    """Installed distributions providing a dotted module; [] when none does (or it is ambiguous)."""
    parts = module.split(".")
    direct = _direct_distribution(parts[0])
    if direct:
        return [direct]
    candidates = _module_map().get(parts[0], [])
    if len(candidates) <= 1:
        return list(candidates)
    # A namespace package (``google``) is shared: the distribution with the deepest matching path wins.
    for depth in range(len(parts), 1, -1):
        prefix = "/".join(parts[:depth])
        providers = [d for d in candidates if _provides(d, prefix)]
        if len(providers) == 1:
            return providers
        if providers:
            return []
    return []


def _imports(trees: Iterable[tuple[int, ast.AST]]) -> Iterable[tuple[int, str, str, int]]:
    """(cell, dotted module, module as written, line) for every absolute import.

    ``from a.b import c`` gives ``a.b.c`` as the module to resolve.

    The extra ``.c`` only matters under a shared namespace (``from google.cloud
    import bigquery``), where it may name the sub-package that decides the distribution.
    """
    for cell, tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    yield cell, alias.name, alias.name, node.lineno
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                for alias in node.names:
                    dotted = node.module if alias.name == "*" else f"{node.module}.{alias.name}"
                    yield cell, dotted, node.module, node.lineno


def _direct_distribution(top: str) -> Optional[str]:
    """The distribution named like the module (``numpy``), if it ships that package: no full scan needed."""
    for name in dict.fromkeys((top, top.replace("_", "-"))):
        try:
            dist = metadata.distribution(name)
        except (metadata.PackageNotFoundError, ValueError):
            continue
        top_level = (dist.read_text("top_level.txt") or "").split()
        files = [str(f) for f in dist.files or ()]
        if top in top_level or any(f == f"{top}/__init__.py" or f == f"{top}.py" for f in files):
            return dist.metadata["Name"]
    return None


_SKIPPED_PARTS = {"__pycache__", ".ipynb_checkpoints", ".git"}


def local_module_files(trees: Iterable[tuple[int, ast.AST]], folder: Optional[Path]) -> dict[str, bytes]:
    """The ``.py`` files of the modules beside the notebook that it imports (``helpers.py``,
    ``utils/``), by path relative to the notebook's folder, so they ship in the artifact."""
    files: dict[str, bytes] = {}
    if folder is None:
        return files
    for _cell, module, _shown, _line in _imports(trees):
        top = module.split(".")[0]
        if top in sys.stdlib_module_names:
            continue
        local = _local_module(top, folder)
        if local is None:
            continue
        if local.endswith(".py"):
            files[local] = (folder / local).read_bytes()
            continue
        for path in sorted((folder / top).rglob("*.py")):
            rel = path.relative_to(folder)
            if not _SKIPPED_PARTS.intersection(rel.parts):
                files[rel.as_posix()] = path.read_bytes()
    return dict(sorted(files.items()))


def _local_module(top: str, folder: Optional[Path]) -> Optional[str]:
    if folder is None:
        return None
    if (folder / f"{top}.py").is_file():
        return f"{top}.py"
    if (folder / top / "__init__.py").is_file():
        return f"{top}/"
    return None


@functools.lru_cache(maxsize=1)
def _module_map() -> dict[str, list[str]]:
    return {top: list(dict.fromkeys(dists)) for top, dists in metadata.packages_distributions().items()}


@functools.lru_cache(maxsize=None)
def _files(dist: str) -> tuple[str, ...]:
    try:
        return tuple(str(f) for f in (metadata.distribution(dist).files or ()))
    except metadata.PackageNotFoundError:
        return ()


def _provides(dist: str, prefix: str) -> bool:
    return any(f.startswith(prefix + "/") or f.startswith(prefix + ".") for f in _files(dist))
