"""A converted notebook's requirements: ``requirements.txt`` beside it, else pip lines plus imports.

Inferred requirements are pinned to the versions installed where kagg runs,
because that is the environment in which the notebook was last known to
work. An import no installed distribution provides is never guessed at: it
becomes a note telling the user to list it.
"""

from __future__ import annotations

import ast
import functools
import os
import re
import sys
from pathlib import Path
from typing import Any, Iterable, Optional

from kagg.model import Note
from kagg.cache import cache_dir

#: Imports that are provided by kagg's runtime inside the artifact, not by a distribution.
PROVIDED_MODULES = frozenset({"kagg_runtime"})
#: The name of the requirements file beside a notebook that is used as is (and packaged).
REQUIREMENTS_FILE = "requirements.txt"
#: Bumped when the cache file's layout changes.
_CACHE_VERSION = 1


def requirements_file(folder: Optional[Path]) -> Optional[Path]:
    """The ``requirements.txt`` beside a notebook in ``folder``, if there is one."""
    if folder is None:
        return None
    path = Path(folder) / REQUIREMENTS_FILE
    return path if path.is_file() else None


def _metadata():
    """``importlib.metadata``, imported on first use: it costs more than most conversions."""
    import importlib.metadata

    return importlib.metadata


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
    resolver: Optional[_Resolver] = None  # made at the first import that needs a distribution
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
        resolver = resolver or _Resolver()
        dists = resolver.distributions(module)
        if not dists:
            shared = resolver.shared(top)  # a namespace (``google``) others share: name the sub-package
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
                chosen[canonical_name(dist)] = f"{dist}=={resolver.version(dist)}"
    if resolver is not None:
        resolver.save()
    return sorted(chosen.values(), key=lambda s: canonical_name(requirement_name(s) or s)), notes


class _Resolver:
    """Which installed distribution provides an import, and its version, remembered across runs.

    Finding a distribution by its import name means reading the metadata of every installed
    distribution (``packages_distributions()``, a tenth of a second or more), so the answers are
    kept in a small JSON file in kagg's cache folder, one per Python environment, and thrown
    away when the environment changes: the stamp lists every ``*.dist-info`` / ``*.egg-info``
    entry on ``sys.path`` with its modification time, so installing, upgrading or removing a
    distribution starts afresh. Answers not in the file are computed with ``importlib.metadata``.
    """

    def __init__(self) -> None:
        self.stamp = environment_stamp()
        self.path = _cache_path()
        self.data: dict[str, dict[str, Any]] = {"distributions": {}, "shared": {}, "versions": {}}
        self.dirty = False
        if self.path is not None:
            try:
                import json

                loaded = json.loads(self.path.read_text(encoding="utf-8"))
                if (isinstance(loaded, dict) and loaded.get("version") == _CACHE_VERSION
                        and loaded.get("stamp") == self.stamp
                        and all(isinstance(loaded.get(k), dict) for k in self.data)):
                    self.data = {k: loaded[k] for k in self.data}
            except (OSError, ValueError):
                pass

    def _get(self, table: str, key: str, compute) -> Any:
        values = self.data[table]
        if key not in values:
            values[key] = compute(key)
            self.dirty = True
        return values[key]

    def distributions(self, module: str) -> list[str]:
        return list(self._get("distributions", module, distributions_for))

    def shared(self, top: str) -> bool:
        return bool(self._get("shared", top, lambda t: t in _module_map()))

    def version(self, dist: str) -> str:
        return str(self._get("versions", dist, lambda d: _metadata().version(d)))

    def save(self) -> None:
        if not self.dirty or self.path is None:
            return
        import json

        from kagg.atomic import write_bytes_atomic

        doc = {"version": _CACHE_VERSION, "stamp": self.stamp, **self.data}
        try:
            write_bytes_atomic(self.path, json.dumps(doc, sort_keys=True).encode("utf-8"))
        except OSError:  # a read-only home: the answers are simply computed again next time
            pass
        self.dirty = False


def _cache_path() -> Optional[Path]:
    """The cache file of this Python environment (one per interpreter)."""
    import hashlib

    digest = hashlib.sha256(os.path.realpath(sys.executable).encode("utf-8", "surrogateescape")).hexdigest()
    return cache_dir() / f"distributions-{digest[:16]}.json"


def environment_stamp() -> str:
    """A digest of what ``importlib.metadata`` would find: each ``sys.path`` entry's metadata entries
    (``*.dist-info``, ``*.egg-info``, ``*.egg``: name and modification time) or, for a zip file,
    its size and time. It changes when a distribution is installed, upgraded or removed, so
    anything derived from installed metadata (entry points too) can be cached under it."""
    import hashlib

    parts: list[str] = []
    for entry in sys.path:
        where = entry or "."
        try:
            with os.scandir(where) as it:
                infos = sorted(f"{e.name}:{e.stat().st_mtime_ns}" for e in it
                               if e.name.lower().endswith((".dist-info", ".egg-info", ".egg")))
        except NotADirectoryError:
            try:
                st = os.stat(where)
            except OSError:
                continue
            infos = [f"file:{st.st_size}:{st.st_mtime_ns}"]
        except OSError:
            continue
        if infos:
            parts.append(os.path.abspath(where) + "\0" + "\0".join(infos))
    return hashlib.sha256("\n".join(parts).encode("utf-8", "surrogateescape")).hexdigest()


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


def _statements(tree: ast.AST) -> Iterable[ast.AST]:
    """The statements of ``tree`` (and its except handlers and match cases) in ``ast.walk``'s order.

    An import is a statement, and statements only sit in other statements' bodies, so the
    expressions (most of the nodes of a typical cell) need not be visited.
    """
    from collections import deque

    todo = deque([tree])
    while todo:
        node = todo.popleft()
        yield node
        for name in node._fields:
            value = getattr(node, name, None)
            if type(value) is list:
                todo.extend(v for v in value if isinstance(v, (ast.stmt, ast.excepthandler, ast.match_case)))


def _imports(trees: Iterable[tuple[int, ast.AST]]) -> Iterable[tuple[int, str, str, int]]:
    """(cell, dotted module, module as written, line) for every absolute import.

    ``from a.b import c`` gives ``a.b.c`` as the module to resolve.

    The extra ``.c`` only matters under a shared namespace (``from google.cloud
    import bigquery``), where it may name the sub-package that decides the distribution.
    """
    for cell, tree in trees:
        found = getattr(tree, "_kagg_imports", None)  # requirements and local modules both ask
        if found is None:
            found = []
            for node in _statements(tree):
                if isinstance(node, ast.Import):
                    found.extend((alias.name, alias.name, node.lineno) for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    found.extend((node.module if alias.name == "*" else f"{node.module}.{alias.name}",
                                  node.module, node.lineno) for alias in node.names)
            try:
                tree._kagg_imports = found  # type: ignore[attr-defined]
            except AttributeError:
                pass
        for dotted, shown, line in found:
            yield cell, dotted, shown, line


def _direct_distribution(top: str) -> Optional[str]:
    """The distribution named like the module (``numpy``), if it ships that package: no full scan needed."""
    metadata = _metadata()
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


def local_module_files(trees: Iterable[tuple[int, ast.AST]], folder: Optional[Path]) -> dict[str, bytes]:
    """The ``.py`` files of the modules beside the notebook that it imports (``helpers.py``,
    ``utils/``), by path relative to the notebook's folder, so they ship in the artifact.

    A package's caches and hidden entries are left out; a symbolic link that leads out of the
    notebook's folder (``tools/host.py -> /etc/hostname``) is refused (BadInput naming each link
    and its target), links that stay inside it are followed
    (:func:`kagg.notebook.datafiles.module_files`)."""
    files: dict[str, bytes] = {}
    if folder is None:
        return files
    from kagg.notebook.datafiles import module_files

    done: set[str] = set()
    for _cell, module, _shown, _line in _imports(trees):
        top = module.split(".")[0]
        if top in sys.stdlib_module_names or top in done:
            continue
        done.add(top)
        local = _local_module(top, folder)
        if local is None:
            continue
        for rel in module_files(folder, local.rstrip("/")):
            files[rel] = (folder / rel).read_bytes()
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
    return {top: list(dict.fromkeys(dists)) for top, dists in _metadata().packages_distributions().items()}


@functools.lru_cache(maxsize=None)
def _files(dist: str) -> tuple[str, ...]:
    metadata = _metadata()
    try:
        return tuple(str(f) for f in (metadata.distribution(dist).files or ()))
    except metadata.PackageNotFoundError:
        return ()


def _provides(dist: str, prefix: str) -> bool:
    return any(f.startswith(prefix + "/") or f.startswith(prefix + ".") for f in _files(dist))
