"""Names that the function uses but only a ``skip`` cell defines: a NameError on every request.

A data scientist tags exploration cells ``skip``; when one of them also defines something the
handler reads (a lookup table, a helper), the endpoint converts and deploys, then answers 500.
Conversion warns instead, naming the name, the cell that uses it and the skipped cell.
"""

from __future__ import annotations

import ast
import builtins
from typing import Iterable, Optional

from kagg.model import Note

_BUILTINS = frozenset(dir(builtins)) | {"display", "get_ipython", "__file__", "__name__"}


def defined_names(tree: ast.Module) -> set[str]:
    """Names a cell binds at its top level (assignments, defs, classes, imports, for/with targets)."""
    names: set[str] = set()
    for node in tree.body:
        for sub in ast.walk(node) if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) else [node]:
            if isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(sub.name)
            elif isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store):
                names.add(sub.id)
            elif isinstance(sub, (ast.Import, ast.ImportFrom)):
                names.update((a.asname or a.name).split(".")[0] for a in sub.names if a.name != "*")
    return names


class _Reads(ast.NodeVisitor):
    """One pass over a cell: names read, and names bound inside its functions (their locals)."""

    def __init__(self) -> None:
        self.reads: list[tuple[str, int]] = []
        self.local: set[str] = set()
        self._depth = 0

    def _function(self, node: ast.AST) -> None:
        args = node.args  # type: ignore[attr-defined]
        self.local |= {a.arg for a in args.args + args.kwonlyargs + args.posonlyargs}
        self.local |= {a.arg for a in (args.vararg, args.kwarg) if a is not None}
        self._depth += 1
        self.generic_visit(node)
        self._depth -= 1

    visit_FunctionDef = visit_AsyncFunctionDef = visit_Lambda = _function

    def visit_comprehension(self, node: ast.comprehension) -> None:
        self.local |= {n.id for n in ast.walk(node.target) if isinstance(n, ast.Name)}
        self.generic_visit(node)

    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, ast.Load):
            self.reads.append((node.id, node.lineno))
        elif self._depth:
            self.local.add(node.id)


def _used(tree: ast.Module) -> Iterable[tuple[str, int]]:
    """(name, line) for every name the cell reads that is not local to a function of it."""
    visitor = _Reads()
    visitor.visit(tree)
    return [(name, line) for name, line in visitor.reads if name not in visitor.local]


def skipped_only_notes(kept: list[tuple[int, Optional[ast.Module]]],
                       skipped: list[tuple[int, Optional[ast.Module]]]) -> list[Note]:
    """A note for each name read by a kept cell that no kept cell defines but a skipped one does.

    ``kept`` and ``skipped`` are (cell number, parsed tree) pairs; unparsable cells are ignored.
    """
    defined_kept: set[str] = set()
    for _number, tree in kept:
        if tree is not None:
            defined_kept |= defined_names(tree)
    defined_skipped: dict[str, int] = {}
    for number, tree in skipped:
        if tree is not None:
            for name in defined_names(tree):
                defined_skipped.setdefault(name, number)
    notes: list[Note] = []
    seen: set[str] = set()
    for number, tree in kept:
        if tree is None:
            continue
        for name, line in _used(tree):
            if name in defined_kept or name in _BUILTINS or name in seen or name not in defined_skipped:
                continue
            seen.add(name)
            notes.append(Note(f"`{name}` is defined only in cell {defined_skipped[name]}, which is tagged skip; "
                              "the endpoint will fail with NameError when it runs this line — move the "
                              "definition to a cell that is not skipped, or remove the skip tag", number, line))
    return notes
