"""Which of a notebook's cells become the kernel (ARCHITECTURE.md §9, "Cells").

Every code cell not tagged ``skip``; in a handler-mode notebook (a top-level ``def handler``
outside ``train`` cells) the setup cells and the ``train`` cells, not the cell(s) defining the
handler: serving is not training. Cells keep their source as written (magics too: Kaggle runs
them in a notebook); each must compile once its magics are rewritten, so a typo is a BadInput
here and not an ERROR an hour into a GPU session.
"""

from __future__ import annotations

import ast
import warnings
from dataclasses import dataclass, field
from typing import Optional

from kagg.errors import BadInput
from kagg.notebook.cells import cell_source, cell_tags
from kagg.notebook.loading import LoadedNotebook
from kagg.notebook.magics import transform_cell

HANDLER = "handler"


@dataclass
class KernelCell:
    """One code cell that goes into the kernel; ``number`` counts all cells of the notebook from 1."""

    number: int
    source: str
    tags: list[str]
    tree: Optional[ast.Module] = None

    @property
    def role(self) -> str:
        lowered = {t.lower() for t in self.tags}
        if "train" in lowered:
            return "train"
        return "parameters" if "parameters" in lowered else "code"


@dataclass
class Selection:
    cells: list[KernelCell]
    parameters_cell: Optional[KernelCell]
    handler_mode: bool
    notes: list[str] = field(default_factory=list)


def select_cells(loaded: LoadedNotebook) -> Selection:
    """The kernel's cells, in notebook order, or BadInput saying why there is nothing to run."""
    candidates = []
    notes: list[str] = []
    for number, cell in enumerate(loaded.nb.get("cells") or [], start=1):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        tags = cell_tags(cell)
        source = cell_source(cell)
        if "skip" in tags or not source.strip():
            continue
        raw_tags = (cell.get("metadata") or {}).get("tags")
        kept_tags = [t for t in raw_tags if isinstance(t, str)] if isinstance(raw_tags, list) else sorted(tags)
        candidates.append(KernelCell(number, source, kept_tags, _compiled(source, number)))
    handler_cells = [c for c in candidates if c.role != "train" and _defines(c.tree, HANDLER)]
    handler_mode = bool(handler_cells)
    cells = candidates
    if handler_mode:
        if not any(c.role == "train" for c in candidates):
            shown = ", ".join(str(c.number) for c in handler_cells)
            raise BadInput(f"{loaded.filename} serves `{HANDLER}` (cell {shown}) and has no cell tagged `train`; "
                           "tag the training cells `train` (the handler cell does not go to Kaggle)")
        cells, note = _without_handler(candidates, handler_cells)
        notes.append(note)
    if not cells:
        raise BadInput(f"{loaded.filename} has no code to run on Kaggle (every code cell is empty or tagged "
                       "`skip`); remove the `skip` tag from the training cells")
    tagged = [c for c in cells if c.role == "parameters"]
    for extra in tagged[1:]:
        notes.append(f"cell {extra.number} is also tagged `parameters`; only cell {tagged[0].number} declares "
                     "the parameters, this one runs as ordinary code")
    return Selection(cells, tagged[0] if tagged else None, handler_mode, notes)


def _without_handler(candidates: list[KernelCell], handler_cells: list[KernelCell]) -> tuple[list[KernelCell], str]:
    """Leave out the handler's cells, and the other non-``train`` cells that call it (serving checks
    such as ``handler({"x": 1})``, which would fail without it); a ``train`` cell that uses the
    handler keeps it in."""
    shown = ", ".join(str(c.number) for c in handler_cells)
    users = [c for c in candidates if c not in handler_cells and _uses(c.tree, HANDLER)]
    trainers = [c for c in users if c.role == "train"]
    if trainers:
        return candidates, (f"handler-mode notebook: cell {shown} (the handler) is kept because `train` cell "
                            f"{trainers[0].number} calls `{HANDLER}`")
    left_out = handler_cells + users
    cells = [c for c in candidates if c not in left_out]
    also = f"; so is cell {', '.join(str(c.number) for c in users)}, which calls it" if users else ""
    return cells, (f"handler-mode notebook: the kernel runs the setup and `train` cells; cell {shown} "
                   f"(the handler) is left out{also}")


def _uses(tree: Optional[ast.Module], name: str) -> bool:
    return bool(tree) and any(isinstance(n, ast.Name) and n.id == name and isinstance(n.ctx, ast.Load)
                              for n in ast.walk(tree))


def _compiled(source: str, number: int) -> Optional[ast.Module]:
    """The cell's tree once its magics are rewritten; BadInput (one line) when it does not compile."""
    code = transform_cell(source, number)
    if code.dropped:  # a %%bash / %%writefile cell: IPython runs it on Kaggle, nothing to compile
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tree = ast.parse(code.code, filename=f"<cell {number}>")
            compile(tree, f"<cell {number}>", "exec", dont_inherit=True)
    except SyntaxError as exc:
        msg = " ".join(str(exc.msg).split())
        if "'await' outside" in msg:  # IPython runs top-level await in a notebook
            return None
        raise BadInput(f"cell {number}, line {exc.lineno or 1}: {msg}; fix the code or tag the cell `skip`") from None
    except ValueError as exc:
        raise BadInput(f"cell {number}: {exc}; fix the code or tag the cell `skip`") from None
    return tree


def _defines(tree: Optional[ast.Module], name: str) -> bool:
    return bool(tree) and any(isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name == name
                              for n in tree.body)
