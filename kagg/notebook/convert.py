"""A loaded notebook to a :class:`~kagg.model.ConvertedFunction` (docs/architecture.md, "Notebook").

The steps, each in its own module: magics -> plain Python (:mod:`kagg.notebook.magics`),
the serving mode and its parameters (:mod:`kagg.notebook.parameters`), requirements
(:mod:`kagg.notebook.requirements`). This module chooses cells by tag, decides the
mode, checks that every kept cell compiles and assembles the generated source.
Nothing in the notebook is executed.
"""

from __future__ import annotations

import ast
import os
import re
import unicodedata
import warnings
from dataclasses import dataclass, field
from typing import Iterable, Optional

from kagg.errors import BadInput
from kagg.model import ConvertedFunction, Mode, Note, Parameter, SourceInfo
from kagg.notebook.cells import cell_source, cell_tags
from kagg.notebook.loading import LoadedNotebook, load_notebook
from kagg.notebook.magics import CellCode, transform_cell
from kagg.notebook.parameters import handler_signature, parameters_cell
from kagg.notebook.requirements import infer_requirements, local_module_files, read_requirements_file
from kagg.notebook.skipped import skipped_only_notes

DEFAULT_ENTRY = "handler"
DISPLAY_IMPORT = "from kagg_runtime import display  # a no-op outside Jupyter"

_NON_PYTHON_KERNEL_NAMES = re.compile(
    r"^(ir|r|julia.*|bash|sh|zsh|javascript|typescript|deno|tslab|scala.*|spylon.*|java|kotlin|go|gophernotes|"
    r"gonb|rust|evcxr.*|ruby|perl.*|octave|matlab|sas|sql|xsql.*|xcpp.*|c|cpp|csharp|fsharp|\.net-.*|powershell|"
    r"haskell|clojure|lua|wolfram.*|stata|apl|nim|elixir|erlang|ocaml.*|xr|xeus-(?!python).*)$", re.IGNORECASE)


@dataclass
class _Cell:
    """One code cell: its number among all cells, tags, raw source and, when kept, its rewritten code."""

    number: int
    tags: set[str]
    source: str
    code: Optional[CellCode] = None
    tree: Optional[ast.Module] = None
    error: Optional[str] = None  # a one-line "cell N, line M: ..." message when it does not compile
    futures: list[str] = field(default_factory=list)

    @property
    def role(self) -> str:
        if "skip" in self.tags:
            return "skip"
        if "train" in self.tags:
            return "train"
        return "parameters" if "parameters" in self.tags else "code"


@dataclass
class _Served:
    """What the chosen mode serves: which cells run when, and the request parameters."""

    mode: Mode
    module_cells: list[_Cell]
    request_cells: list[_Cell]
    parameters: list[Parameter]
    accepts_kwargs: bool
    entry: Optional[str]


def convert_source(source: str, entry: Optional[str] = None, name: Optional[str] = None) -> ConvertedFunction:
    """Load a notebook (path or URL) and convert it."""
    return convert(load_notebook(source), entry=entry, name=name)


def convert(loaded: LoadedNotebook, entry: Optional[str] = None, name: Optional[str] = None) -> ConvertedFunction:
    """Turn a loaded notebook into a function, or raise BadInput saying what the notebook needs."""
    filename = loaded.filename
    check_kernel(loaded.nb, filename)
    function_name = function_name_for(name, loaded.stem)
    notes: list[Note] = list(loaded.notes)
    cells = _code_cells(loaded, notes)
    kept = [c for c in cells if c.role in ("code", "parameters")]
    for cell in kept:
        _prepare(cell)
        notes.extend(cell.code.notes)
    target = entry or DEFAULT_ENTRY
    found = _find_def(kept, target)
    if found:
        build = _handler_mode(kept, found, target, notes)
    elif entry:
        raise BadInput(_missing_entry_message(filename, entry, cells, kept))
    elif any(c.role == "parameters" for c in kept):
        build = _script_mode(kept, filename, notes)
    else:
        _raise_broken_definition(kept, target)
        raise BadInput(_nothing_to_serve_message(filename, cells, kept))
    served = build.module_cells + build.request_cells
    module_source = _assemble(build.module_cells, loaded, "runs once per instance (cold start)",
                              display=_needs_display(served))
    request_source = (_assemble(build.request_cells, loaded, "runs for every request, after the module")
                      if build.mode == "script" else None)
    notes.extend(_ipython_only_notes(served))
    skipped = [(c.number, _parse_quietly(c)) for c in cells if c.role == "skip"]
    if any(tree is not None for _number, tree in skipped):  # else nothing is defined only there: no walk
        notes.extend(skipped_only_notes([(c.number, c.tree) for c in served], skipped))
    requirements, origin = _requirements(loaded, served, notes)
    return ConvertedFunction(
        name=function_name, mode=build.mode, entry=build.entry, module_source=module_source,
        request_source=request_source, parameters=build.parameters, accepts_kwargs=build.accepts_kwargs,
        requirements=requirements, requirements_origin=origin,
        source=SourceInfo(path=loaded.source, sha256=loaded.sha256), notes=notes,
        train_source=_train_source([c for c in cells if c.role == "train"]),
        **_local_files(loaded, cells))


def check_kernel(nb: dict, filename: str) -> None:
    """Refuse notebooks whose kernel is not Python; no kernel information at all counts as Python."""
    meta = nb.get("metadata") if isinstance(nb.get("metadata"), dict) else {}
    spec = meta.get("kernelspec") if isinstance(meta.get("kernelspec"), dict) else {}
    info = meta.get("language_info") if isinstance(meta.get("language_info"), dict) else {}
    language = next((v for v in (spec.get("language"), info.get("name")) if isinstance(v, str) and v.strip()), None)
    if language is not None:
        if _is_python(language):
            return
    else:
        kernel = spec.get("name")
        if not isinstance(kernel, str) or not _NON_PYTHON_KERNEL_NAMES.match(kernel.strip()):
            return
        language = kernel
    shown = spec.get("display_name")
    if not isinstance(shown, str) or not shown.strip() or shown.strip().lower() == language.strip().lower():
        shown = language
    raise BadInput(f"{filename} uses the {shown.strip()} kernel; kagg serves Python notebooks only")


def function_name_for(name: Optional[str], stem: str) -> str:
    """The given name (providers check it against their own rules), else one derived from the file name."""
    if name:
        return name
    ascii_stem = unicodedata.normalize("NFKD", stem).encode("ascii", "ignore").decode("ascii")
    derived = re.sub(r"[^a-z0-9]+", "-", ascii_stem.lower()).strip("-")
    if derived[:1].isdigit():
        derived = "nb-" + derived
    return derived[:63].strip("-") or "notebook"


def _is_python(language: str) -> bool:
    lang = language.strip().lower().replace(" ", "")
    return lang.startswith("python") or lang in ("ipython", "ipython3", "py")


def _code_cells(loaded: LoadedNotebook, notes: list[Note]) -> list[_Cell]:
    cells = []
    for number, cell in enumerate(loaded.nb.get("cells") or [], start=1):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        meta = cell.get("metadata")
        if isinstance(meta, dict) and "tags" in meta and not isinstance(meta["tags"], list):
            notes.append(Note("metadata.tags is not a list of strings; read it as words", number))
        cells.append(_Cell(number=number, tags=cell_tags(cell), source=cell_source(cell)))
    return cells


def _prepare(cell: _Cell) -> None:
    """Rewrite magics, then parse and compile, keeping the first error as a one-line message."""
    cell.code = transform_cell(cell.source, cell.number)
    if cell.code.dropped:
        return
    try:
        with warnings.catch_warnings():  # e.g. invalid escape sequences: the notebook's business, not ours
            warnings.simplefilter("ignore")
            tree = ast.parse(cell.code.code, filename=f"<cell {cell.number}>")
            compile(tree, f"<cell {cell.number}>", "exec", dont_inherit=True)
    except SyntaxError as exc:
        cell.error = _syntax_message(cell, exc)
        return
    except ValueError as exc:  # e.g. a NUL byte in the source
        cell.error = f"cell {cell.number}: {exc}; fix the code or tag the cell `skip`"
        return
    cell.tree = tree
    cell.futures = [a.name for node in tree.body if isinstance(node, ast.ImportFrom)
                    and node.module == "__future__" for a in node.names]


def _parse_quietly(cell: _Cell) -> Optional[ast.Module]:
    """A skipped cell's tree, for the names it defines (None if it is not Python)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return ast.parse(transform_cell(cell.source, cell.number).code)
    except (SyntaxError, ValueError):
        return None


def _syntax_message(cell: _Cell, exc: SyntaxError) -> str:
    msg = " ".join(str(exc.msg).split())
    hint = "fix the code or tag the cell `skip`"
    if "Missing parentheses in call to" in msg or re.search(r"^\s*print\s+[^\s(=]", cell.code.code, re.M) \
            and msg == "invalid syntax":
        hint = "it looks like Python 2 code: port it to Python 3 or tag the cell `skip`"
    elif "'await' outside" in msg:
        hint = "top-level await only works in Jupyter: move it into a function run with asyncio.run(...)"
    return f"cell {cell.number}, line {exc.lineno or 1}: {msg}; {hint}"


def _find_def(cells: list[_Cell], name: str) -> Optional[tuple[_Cell, ast.FunctionDef]]:
    """The last top-level ``def name`` among parsed cells (the one in force after all cells ran)."""
    found = None
    for cell in cells:
        for node in cell.tree.body if cell.tree else ():
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == name:
                found = (cell, node)
    return found


def _raise_first_error(cells: Iterable[_Cell]) -> None:
    for cell in cells:
        if cell.error:
            raise BadInput(cell.error)


def _raise_broken_definition(cells: list[_Cell], name: str) -> None:
    """A cell that fails to compile may be the one defining the entry point: report that first."""
    pattern = re.compile(rf"^\s*(async\s+)?def\s+{re.escape(name)}\s*\(", re.M)
    _raise_first_error(c for c in cells if c.error and pattern.search(c.source))


def _handler_mode(kept: list[_Cell], found: tuple[_Cell, ast.FunctionDef], entry: str,
                  notes: list[Note]) -> _Served:
    _raise_first_error(kept)
    cell, func = found
    for other in kept:
        if other.role == "parameters":
            notes.append(Note(f"this cell is tagged `parameters`, but the notebook defines `{entry}`: "
                              "serving the function; the cell runs once at start", other.number))
    signature = handler_signature(func, cell.number)
    notes.extend(signature.notes)
    return _Served("handler", kept, [], signature.parameters, signature.accepts_kwargs, entry)


def _script_mode(kept: list[_Cell], filename: str, notes: list[Note]) -> _Served:
    tagged = [c for c in kept if c.role == "parameters"]
    first = tagged[0]
    for extra in tagged[1:]:
        notes.append(Note(f"also tagged `parameters`; only the first such cell (cell {first.number}) "
                          "declares parameters, this one runs as ordinary code", extra.number))
    parameters: list[Parameter] = parameters_cell(first.source, first.number)
    above = [c for c in kept if c.number < first.number]
    below = [c for c in kept if c.number > first.number]
    _raise_first_error(above + below)
    if not any(_assigns_result(c.tree) for c in below if c.tree):
        raise BadInput(f"{filename} never assigns `result` below its parameters cell (cell {first.number}); "
                       "assign the response to `result` in a later cell, e.g. `result = {\"answer\": ...}`")
    notes.extend(_global_parameter_notes(above, {p.name for p in parameters}))
    return _Served("script", above + [first], below, parameters, False, None)


def _global_parameter_notes(above: list[_Cell], names: set[str]) -> list[Note]:
    """``global x`` for a parameter ``x`` in code above the parameters cell: it runs once per instance,
    so assigning the parameter there cannot change the request's value (the runtime keeps it apart)."""
    found = []
    for cell in above:
        for node in ast.walk(cell.tree) if cell.tree else ():
            if isinstance(node, ast.Global):
                found.extend(Note(f"`global {name}` in code above the parameters cell: those cells run once per "
                                  f"instance, so assigning the request parameter `{name}` there does not change "
                                  f"the request's `{name}`; return the new value instead", cell.number, node.lineno)
                             for name in node.names if name in names)
    return found


def _assigns_result(tree: ast.AST) -> bool:
    """Whether module-level code binds ``result`` (function bodies only count with ``global result``)."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Global) and "result" in node.names:
            return True
        if isinstance(node, ast.Name) and node.id == "result" and isinstance(node.ctx, ast.Store):
            return True
        if isinstance(node, ast.alias) and (node.asname or node.name) == "result":
            return True
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and child.name == "result":
                return True
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
                stack.extend(n for n in ast.walk(child) if isinstance(n, ast.Global))
            else:
                stack.append(child)
    return False


def _missing_entry_message(filename: str, entry: str, cells: list[_Cell], kept: list[_Cell]) -> str:
    _raise_broken_definition(kept, entry)
    pattern = re.compile(rf"^(async\s+)?def\s+{re.escape(entry)}\s*\(", re.M)
    for cell in cells:
        if cell.role in ("skip", "train") and pattern.search(cell.source):
            return (f"`{entry}` is defined in cell {cell.number}, which is tagged `{cell.role}`; "
                    "remove the tag or choose another --entry")
    for cell in kept:
        for node in cell.tree.body if cell.tree else ():
            targets = node.targets if isinstance(node, ast.Assign) else []
            if any(isinstance(t, ast.Name) and t.id == entry for t in targets):
                return (f"cell {cell.number}, line {node.lineno}: `{entry}` is assigned, not defined with `def`; "
                        f"kagg reads the parameters of `def {entry}(...)`")
    functions = sorted({n.name for c in kept if c.tree for n in c.tree.body
                        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))})
    known = f" (it defines {', '.join(functions[:6])}{', …' if len(functions) > 6 else ''})" if functions else ""
    return f"{filename} defines no top-level function `{entry}`{known}; check --entry"


def _nothing_to_serve_message(filename: str, cells: list[_Cell], kept: list[_Cell]) -> str:
    pattern = re.compile(rf"^(async\s+)?def\s+{DEFAULT_ENTRY}\s*\(", re.M)
    hidden = next((c for c in cells if c.role in ("skip", "train") and pattern.search(c.source)), None)
    if hidden:
        what = f"nothing to serve (`handler` in cell {hidden.number} is tagged `{hidden.role}`)"
    else:
        what = "nothing to serve" if any(c.source.strip() for c in kept) else "no code to serve"
    return (f"{filename} has {what}: define a function `handler(...)` "
            "or tag a cell `parameters` and assign `result`")


def _needs_display(cells: list[_Cell]) -> bool:
    """True when the code calls ``display`` without importing or defining it."""
    used = bound = False
    for cell in cells:
        if not _may_name(cell, "display"):
            continue
        for node in ast.walk(cell.tree) if cell.tree else ():
            if isinstance(node, ast.Name) and node.id == "display":
                if isinstance(node.ctx, ast.Load):
                    used = True
                else:
                    bound = True
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name == "display":
                bound = True
            elif isinstance(node, ast.Import):
                bound |= any((a.asname or a.name.split(".")[0]) == "display" for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                bound |= any((a.asname or a.name) == "display" for a in node.names)
    return used and not bound


def _may_name(cell: _Cell, identifier: str) -> bool:
    """Whether the cell's code can mention ``identifier`` (a cheap test before walking its tree;
    non-ASCII code is walked anyway, since Python reads identifiers NFKC-normalized)."""
    code = cell.code.code if cell.code else ""
    return identifier in code or not code.isascii()


def _ipython_only_notes(cells: list[_Cell]) -> list[Note]:
    for cell in cells:
        if not _may_name(cell, "get_ipython"):
            continue
        for node in ast.walk(cell.tree) if cell.tree else ():
            if isinstance(node, ast.Name) and node.id == "get_ipython":
                return [Note("uses `get_ipython()`, which does not exist outside Jupyter", cell.number, node.lineno)]
    return []


def _assemble(cells: list[_Cell], loaded: LoadedNotebook, purpose: str, display: bool = False) -> str:
    """Kept cells as one module: a header, hoisted ``__future__`` imports, then each cell under a marker."""
    origin = " ".join(loaded.source.split())
    out = [f"# Generated by kagg from {origin} (sha256 {loaded.sha256}).",
           f"# This part {purpose}. Do not edit: change the notebook and convert again."]
    futures = sorted({name for c in cells for name in c.futures})
    if futures:
        out.append(f"from __future__ import {', '.join(futures)}")
    if display:
        out.append(DISPLAY_IMPORT)
    for cell in cells:
        if cell.code.dropped:
            out += ["", f"# --- cell {cell.number} (dropped: {cell.code.dropped} cell) ---"]
            continue
        code = _without_futures(cell) if cell.futures else cell.code.code
        if not code.strip():
            continue
        label = " (parameters)" if cell.role == "parameters" else ""
        out += ["", f"# --- cell {cell.number}{label} ---", code.rstrip()]
    return "\n".join(out) + "\n"


def _without_futures(cell: _Cell) -> str:
    """The cell's code with its ``from __future__`` imports commented out (they move to the top)."""
    lines = cell.code.code.split("\n")
    for node in cell.tree.body:
        if not (isinstance(node, ast.ImportFrom) and node.module == "__future__"):
            continue
        first, last = node.lineno - 1, (node.end_lineno or node.lineno) - 1
        before = lines[first][: node.col_offset]
        after = lines[last][node.end_col_offset or 0:]
        if before.strip() or after.strip().lstrip(";").strip():
            segment = lines[first][node.col_offset:node.end_col_offset] if first == last else None
            if segment is not None:  # shares its line with other statements: keep them, neutralize the import
                lines[first] = before + "pass" + after
            continue
        for i in range(first, last + 1):
            lines[i] = "# " + lines[i] + ("  (kagg moved it to the top)" if i == last else "")
    return "\n".join(lines)


def _requirements(loaded: LoadedNotebook, cells: list[_Cell], notes: list[Note]) -> tuple[list[str], str]:
    pip_lines = [spec for c in cells for spec in c.code.requirements]
    req_file = loaded.folder / "requirements.txt" if loaded.folder else None
    if req_file and os.path.isfile(req_file):
        if pip_lines:
            notes.append(Note("requirements.txt beside the notebook is used; the notebook's "
                              f"pip install lines ({', '.join(dict.fromkeys(pip_lines))}) are not"))
        try:
            return read_requirements_file(req_file), "file"
        except OSError as exc:
            raise BadInput(f"cannot read {req_file}: {exc.strerror or exc}; check its permissions") from None
    trees = [(c.number, c.tree) for c in cells if c.tree]
    requirements, import_notes = infer_requirements(pip_lines, trees, loaded.folder)
    notes.extend(import_notes)
    return requirements, "inferred"


def _local_files(loaded: LoadedNotebook, cells: list[_Cell]) -> dict:
    """The ConvertedFunction fields of what is packaged from the notebook's folder: ``local_files``
    (the modules it imports and the data files its kept cells name), ``data_files``, ``data_refs``
    (see :func:`kagg.notebook.datafiles.beside_notebook`)."""
    from kagg.notebook.datafiles import beside_notebook

    parsed = [c for c in cells if c.tree]
    try:
        modules = local_module_files([(c.number, c.tree) for c in parsed], loaded.folder)
    except OSError as exc:
        raise BadInput(f"cannot read a module beside the notebook: {exc.strerror or exc} ({exc.filename})") from None
    return beside_notebook([c.tree for c in parsed], loaded.folder, modules, [c.code.code for c in parsed])


def _train_source(cells: list[_Cell]) -> Optional[str]:
    """The ``train`` cells as written (magics included: they run as a Kaggle notebook)."""
    parts = [f"# --- cell {c.number} (train) ---\n{c.source.rstrip()}" for c in cells if c.source.strip()]
    return "\n\n".join(parts) + "\n" if parts else None
