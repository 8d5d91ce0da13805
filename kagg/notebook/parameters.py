"""Request parameters, read statically (``ast``) from a handler's signature or a ``parameters`` cell.

Nothing is executed: the notebook's code only runs inside the deployed
function. Types are the names in :data:`kagg.model.PARAM_TYPES`; anything
kagg cannot read as one of them is ``"any"``.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from dataclasses import dataclass
from typing import Any, Optional, Union

from kagg.errors import BadInput
from kagg.model import Note, Parameter

_SIMPLE_TYPES = {"int": "int", "float": "float", "str": "str", "bool": "bool",
                 "list": "list", "tuple": "list", "set": "list", "frozenset": "list",
                 "dict": "dict"}
_GENERIC_TYPES = {"List": "list", "Tuple": "list", "Set": "list", "FrozenSet": "list", "Sequence": "list",
                  "MutableSequence": "list", "Iterable": "list", "Collection": "list",
                  "Dict": "dict", "Mapping": "dict", "MutableMapping": "dict", "OrderedDict": "dict",
                  "DefaultDict": "dict", "TypedDict": "dict"}
_NONE_NAMES = ("None", "NoneType")
_SECTION = re.compile(r"\s*(Returns|Return|Raises|Yields|Examples?|Notes?|See Also|Attributes):\s*$")
_NOT_JSON = object()  # a literal JSON cannot carry (a set, bytes, nan)
_NOT_LITERAL = object()  # not a literal at all (a call, a name)

FuncDef = Union[ast.FunctionDef, ast.AsyncFunctionDef]


@dataclass
class Signature:
    """What the runtime needs to bind a request to the handler."""

    parameters: list[Parameter]
    accepts_kwargs: bool
    notes: list[Note]


def annotation_type(node: Optional[ast.expr]) -> str:
    """The PARAM_TYPES name for an annotation node (``Optional[int]`` -> ``int``; unknown -> ``any``)."""
    if node is None:
        return "any"
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        try:
            return annotation_type(ast.parse(node.value, mode="eval").body)
        except SyntaxError:
            return "any"
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        return _union_type([node.left, node.right])
    name = _dotted_tail(node.value if isinstance(node, ast.Subscript) else node)
    if isinstance(node, ast.Subscript):
        if name == "Optional":
            return annotation_type(node.slice)
        if name == "Union":
            items = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
            return _union_type(items)
        if name == "Annotated":
            first = node.slice.elts[0] if isinstance(node.slice, ast.Tuple) and node.slice.elts else node.slice
            return annotation_type(first)
    if name in _SIMPLE_TYPES:
        return _SIMPLE_TYPES[name]
    return _GENERIC_TYPES.get(name or "", "any")


def literal_type(value: Any) -> str:
    """The PARAM_TYPES name of a default value (``None`` -> ``any``)."""
    if isinstance(value, bool):
        return "bool"
    for py_type, name in ((int, "int"), (float, "float"), (str, "str"), (list, "list"), (dict, "dict")):
        if isinstance(value, py_type):
            return name
    return "any"


def handler_signature(func: FuncDef, cell: int) -> Signature:
    """Parameters of ``def handler(...)``; ``cell`` is where it is defined (for notes and errors)."""
    args = func.args
    notes: list[Note] = []
    if args.posonlyargs:
        names = ", ".join(a.arg for a in args.posonlyargs)
        raise BadInput(f"cell {cell}, line {func.lineno}: `{func.name}` has positional-only parameters ({names}); "
                       "requests pass parameters by name, so remove the `/`")
    helps = docstring_help(ast.get_docstring(func) or "")
    positional = list(args.args)
    defaults: list[Optional[ast.expr]] = [None] * (len(positional) - len(args.defaults)) + list(args.defaults)
    pairs = list(zip(positional, defaults)) + list(zip(args.kwonlyargs, args.kw_defaults))
    params = []
    for arg, default in pairs:
        param = Parameter(name=arg.arg, type=annotation_type(arg.annotation), help=helps.get(arg.arg))
        if default is None:
            param.required = True
        else:
            value = _json_literal(default)
            if value is _NOT_JSON or value is _NOT_LITERAL:
                param.default_expr = _source(default)
                notes.append(Note(f"the default of `{arg.arg}` (`{param.default_expr}`) is not a JSON literal; "
                                  "/schema shows none and the handler's own default applies",
                                  cell, default.lineno))
            else:
                param.default = value
        params.append(param)
    return Signature(parameters=params, accepts_kwargs=args.kwarg is not None, notes=notes)


def docstring_help(doc: str) -> dict[str, str]:
    """Parameter help from a docstring: Google ``Args:``, Sphinx ``:param x:`` or NumPy ``Parameters``."""
    helps: dict[str, str] = {}
    for match in re.finditer(r":param\s+(?:[^:\s]+\s+)?(\w+)\s*:\s*(.+)", doc):
        helps.setdefault(match.group(1), match.group(2).strip())
    lines = doc.splitlines()
    for i, line in enumerate(lines):
        header = line.strip()
        if header in ("Args:", "Arguments:", "Parameters:", "Keyword Args:", "Keyword Arguments:"):
            _google_section(lines[i + 1:], helps)
        elif header == "Parameters" and i + 1 < len(lines) and set(lines[i + 1].strip()) == {"-"}:
            _numpy_section(lines[i + 2:], helps)
    return helps


def _google_section(lines: list[str], helps: dict[str, str]) -> None:
    """``name (type): text`` entries, continuation lines indented deeper, until the indent drops."""
    base: Optional[int] = None
    current: Optional[str] = None
    for line in lines:
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        base = indent if base is None else base
        if indent < base or _SECTION.match(line):
            return
        match = re.match(r"\s*\**(\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)", line)
        if indent == base and match:
            current = match.group(1)
            helps.setdefault(current, match.group(2).strip())
        elif current and indent > base:
            helps[current] = (helps[current] + " " + line.strip()).strip()


def _numpy_section(lines: list[str], helps: dict[str, str]) -> None:
    """``name : type`` entries with indented descriptions, until the next underlined section."""
    found: dict[str, str] = {}
    current: Optional[str] = None
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        if i + 1 < len(lines) and lines[i + 1].strip() and set(lines[i + 1].strip()) == {"-"}:
            break
        if not line.startswith((" ", "\t")):
            current = re.split(r"\s*:", line.strip(), maxsplit=1)[0].strip()
            found.setdefault(current, "")
        elif current:
            found[current] = (found[current] + " " + line.strip()).strip()
    for name, text in found.items():
        if text:
            helps.setdefault(name, text)


def parameters_cell(source: str, cell: int) -> list[Parameter]:
    """Parameters of a ``parameters``-tagged cell: only ``name = literal`` / ``name: type = literal``."""
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise BadInput(f"cell {cell}, line {exc.lineno}: the parameters cell does not parse ({exc.msg}); "
                       "it may only hold `name = literal` assignments") from None
    comments = _trailing_comments(source)
    params: dict[str, Parameter] = {}
    for stmt in tree.body:
        target, annotation, value = _assignment(stmt)
        shown = _statement_text(source, stmt)
        if target is not None and value is None:
            raise BadInput(f"cell {cell}, line {stmt.lineno}: give the parameter `{target}` a default, "
                           f"e.g. `{shown} = 0`")
        default = _json_literal(value) if value is not None else _NOT_LITERAL
        if target is None or default is _NOT_LITERAL:
            raise BadInput(f"cell {cell}, line {stmt.lineno}: the parameters cell may only hold "
                           f"`name = literal` assignments; move `{shown}` to another cell")
        if default is _NOT_JSON:
            raise BadInput(f"cell {cell}, line {stmt.lineno}: the default of `{target}` is not a JSON value; "
                           "use a number, string, bool, None, list or dict")
        ptype = annotation_type(annotation) if annotation is not None else "any"
        help_text = comments.get(stmt.end_lineno or stmt.lineno)
        if help_text:
            typed = re.match(r"type:\s*(\S+)\s*(.*)$", help_text)
            if typed:
                if annotation is None:
                    ptype = _type_comment(typed.group(1))
                help_text = typed.group(2).strip() or None
        if annotation is None and ptype == "any":
            ptype = literal_type(default)
        params.pop(target, None)
        params[target] = Parameter(name=target, type=ptype, default=default, required=False, help=help_text)
    return list(params.values())


def _assignment(stmt: ast.stmt) -> tuple[Optional[str], Optional[ast.expr], Optional[ast.expr]]:
    if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
        return stmt.targets[0].id, None, stmt.value
    if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) and stmt.simple:
        return stmt.target.id, stmt.annotation, stmt.value
    return None, None, None


def _type_comment(text: str) -> str:
    try:
        return annotation_type(ast.parse(text, mode="eval").body)
    except SyntaxError:
        return "any"


def _trailing_comments(source: str) -> dict[int, str]:
    """Line number -> text of a comment that follows code on that line."""
    comments: dict[int, str] = {}
    code_lines: set[int] = set()
    try:
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            if tok.type == tokenize.COMMENT:
                if tok.start[0] in code_lines:
                    comments[tok.start[0]] = tok.string.lstrip("#").strip()
            elif tok.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT,
                                  tokenize.ENDMARKER):
                code_lines.update(range(tok.start[0], tok.end[0] + 1))
    except (tokenize.TokenError, SyntaxError):
        pass  # the cell parsed, so this only happens on exotic input; help text is optional
    return comments


def _json_literal(node: ast.expr) -> Any:
    """The JSON value of a literal node, tuples as lists; ``_NOT_LITERAL`` / ``_NOT_JSON`` otherwise."""
    try:
        value = ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return _NOT_LITERAL
    return _jsonable(value)


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else _NOT_JSON
    if isinstance(value, (list, tuple)):
        items = [_jsonable(v) for v in value]
        return _NOT_JSON if any(v is _NOT_JSON for v in items) else items
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            return _NOT_JSON
        items = {k: _jsonable(v) for k, v in value.items()}
        return _NOT_JSON if any(v is _NOT_JSON for v in items.values()) else items
    return _NOT_JSON


def _union_type(items: list[ast.expr]) -> str:
    kinds = {annotation_type(item) for item in items if not _is_none(item)}
    if kinds == {"int", "float"}:
        return "float"  # a number either way; JSON does not tell them apart
    return kinds.pop() if len(kinds) == 1 else "any"


def _is_none(node: ast.expr) -> bool:
    if isinstance(node, ast.Constant):
        return node.value is None or node.value in _NONE_NAMES
    return _dotted_tail(node) in _NONE_NAMES


def _dotted_tail(node: ast.expr) -> Optional[str]:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def _source(node: ast.AST) -> str:
    text = ast.unparse(node)
    return text if len(text) <= 60 else text[:59] + "…"


def _statement_text(source: str, stmt: ast.stmt) -> str:
    """The statement as written (first line), for messages."""
    text = ast.get_source_segment(source, stmt) or ast.unparse(stmt)
    lines = text.splitlines() or [text]
    first = lines[0].strip() + (" …" if len(lines) > 1 else "")
    if isinstance(stmt, ast.AnnAssign) and stmt.value is None:
        first = first.rstrip()
    return first if len(first) <= 60 else first[:59] + "…"
