"""Read a batch list (CSV, JSON or text) into :class:`BatchItem` objects.

The whole file is checked before any work starts and every problem is kept
with its line number, so a user fixes a forty-line list in one pass rather
than one error per run. Values are merged row > command line > the file's
``defaults`` > built-in defaults: the command line is what the user typed
now, a row is the most specific thing they wrote.
"""

from __future__ import annotations

import csv
import io
import json
import os
import stat
import sys
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Optional

from kagg.batch import OPERATIONS
from kagg.batch.jsonpos import array_element_lines, key_positions, line_of, skip_ws
from kagg.batch.values import PARSERS
from kagg.errors import BadInput
from kagg.model import DeployOptions
from kagg.urls import is_url

#: the columns (CSV) or keys (JSON) an item may have
COLUMNS = ("notebook", "name", "provider", "region", "memory", "timeout", "entry", "public", "env",
           "payload")
#: keys that make no sense in a JSON ``defaults`` block (they identify one item)
NOT_DEFAULTS = ("notebook", "name")


@dataclass
class Problem:
    """One thing wrong with the list, at a line of it."""

    where: str  # "list.csv:7"
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


class BatchInputError(BadInput):
    """The list (or what it names) is invalid; ``problems`` holds one line per problem.

    The message is a one-line summary, because the CLI prints errors as one line;
    the command prints the problems themselves above it.
    """

    def __init__(self, source: str, problems: list[Problem]):
        self.source = source
        self.problems = sorted(problems, key=lambda p: p.line)
        super().__init__(self.summary())

    def summary(self, where: str = "") -> str:
        """``list.csv has 3 problems{where}; nothing was done``."""
        count = len(self.problems)
        return f"{self.source} has {count} problem{'s' if count != 1 else ''}{where}; nothing was done"


@dataclass
class Overrides:
    """Item settings given on the command line or in a JSON ``defaults`` block; None = not given."""

    provider: Optional[str] = None
    region: Optional[str] = None
    memory: Optional[int] = None
    timeout: Optional[int] = None
    entry: Optional[str] = None
    public: Optional[bool] = None
    env: dict[str, str] = field(default_factory=dict)
    payload: Any = None
    has_payload: bool = False


@dataclass
class BatchItem:
    """One line of the list, with every default applied and every value checked."""

    index: int  # 0-based position in the list
    line: int  # 1-based line in the file where the item starts
    where: str  # "list.csv:7", for messages
    notebook: Optional[str]  # a path (resolved against the list's folder) or a URL
    name: Optional[str]  # as written; None means "derived from the notebook"
    provider: str = "local"
    region: Optional[str] = None
    memory: Optional[int] = None
    timeout: Optional[int] = None
    entry: Optional[str] = None
    public: bool = False
    env: dict[str, str] = field(default_factory=dict)
    payload: Any = None
    has_payload: bool = False

    @property
    def key(self) -> str:
        """Identity of the item across runs of the same list (used by ``--resume``)."""
        return f"{self.provider}:{self.name or self.notebook}"

    @property
    def label(self) -> str:
        """A short name to show before the real endpoint name is known."""
        if self.name:
            return self.name
        tail = (self.notebook or "?").rstrip("/").rsplit("/", 1)[-1]
        return tail[:-6] if tail.endswith(".ipynb") else tail

    @property
    def is_url(self) -> bool:
        return is_url(self.notebook or "")

    def deploy_options(self, force: bool = False, allow_secrets: bool = False) -> DeployOptions:
        return DeployOptions(name=self.name, entry=self.entry, region=self.region, memory=self.memory,
                             timeout=self.timeout, env=dict(self.env), public=self.public, force=force,
                             allow_secrets=allow_secrets)


@dataclass
class BatchSpec:
    """A parsed list: its items and the problems found while reading it."""

    source: str  # the list as the user named it
    path: Optional[Path]  # None for stdin
    format: str
    items: list[BatchItem]
    problems: list[Problem]



def detect_format(path: str, given: Optional[str]) -> str:
    """``--format`` if given, else the extension; BadInput when neither tells."""
    if given:
        return given
    suffix = Path(path).suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix == ".json":
        return "json"
    if path == "-" or suffix in ("", ".txt", ".lst", ".list"):
        return "text"
    raise BadInput(f"cannot tell the format of {path} from its extension; pass --format csv|json|text")


def read_list_text(path: str) -> str:
    """The list's text (``-`` is stdin), BOM removed; BadInput if it cannot be read."""
    try:
        data = sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
    except FileNotFoundError:
        raise BadInput(f"batch list {path} not found")
    except IsADirectoryError:
        raise BadInput(f"batch list {path} is a directory; pass a .csv, .json or text file")
    except OSError as exc:
        raise BadInput(f"cannot read batch list {path}: {exc.strerror}")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BadInput(f"batch list {path} is not UTF-8 (byte {exc.start}); save it as UTF-8")


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def parse_values(raw: dict[str, Any], where: str, line: int, providers: list[str],
                 problems: list[Problem]) -> dict[str, Any]:
    """Check each given value; blank ones count as not given. Adds to ``problems``."""
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if _blank(value):
            continue
        try:
            values[key] = PARSERS[key](value, key)
        except ValueError as exc:
            problems.append(Problem(where, line, str(exc)))
    provider = values.get("provider")
    if provider is not None and provider not in providers:
        problems.append(Problem(where, line, f"unknown provider {provider!r} (available: {', '.join(providers)})"))
        values.pop("provider")
    return values


def overrides_from(values: dict[str, Any]) -> Overrides:
    known = {f.name for f in fields(Overrides)}
    out = Overrides(**{k: v for k, v in values.items() if k in known and k not in ("payload",)})
    if "payload" in values:
        out.payload, out.has_payload = values["payload"], True
    return out


# -- building items ------------------------------------------------------------------------------
@dataclass
class _Context:
    source: str
    base_dir: Path
    operation: str
    cli: Overrides
    file_defaults: Overrides
    providers: list[str]
    problems: list[Problem] = field(default_factory=list)
    items: list[BatchItem] = field(default_factory=list)
    names: dict[str, int] = field(default_factory=dict)  # explicit name -> first line
    quiet_missing: bool = False  # the header already said there is no notebook column


def _pick(name: str, row: dict, *layers: Overrides, fallback: Any = None) -> Any:
    if name in row:
        return row[name]
    for layer in layers:
        value = getattr(layer, name)
        if value is not None:
            return value
    return fallback


def _resolve_notebook(notebook: str, base_dir: Path) -> str:
    if is_url(notebook) or os.path.isabs(notebook) or str(base_dir) in ("", "."):
        return notebook
    return str(base_dir / notebook)


def _add_item(ctx: _Context, raw: dict[str, Any], line: int) -> None:
    """Turn one row/object into an item, or record why it cannot be one."""
    where = f"{ctx.source}:{line}"
    before = len(ctx.problems)
    values = parse_values(raw, where, line, ctx.providers, ctx.problems)
    layers = (ctx.cli, ctx.file_defaults)
    notebook = values.get("notebook")
    name = values.get("name")
    if name is not None:
        first = ctx.names.setdefault(name, line)
        if first != line:
            ctx.problems.append(Problem(where, line, f"duplicate name {name!r} (also on line {first})"))
    if notebook is None:
        if ctx.quiet_missing:
            pass
        elif ctx.operation in ("deploy", "convert", "download", "run"):
            ctx.problems.append(Problem(where, line, "no notebook given"))
        elif name is None:
            ctx.problems.append(Problem(where, line, "neither notebook nor name given"))
    resolved = _resolve_notebook(notebook, ctx.base_dir) if notebook else None
    if resolved and not is_url(notebook) and not (ctx.operation in ("delete", "invoke") and name):
        if ctx.operation != "download":
            try:  # one stat for "exists" and "is a folder": a list of 200 notebooks is read before anything
                is_dir = stat.S_ISDIR(os.stat(resolved).st_mode)
            except (FileNotFoundError, NotADirectoryError, ValueError):
                ctx.problems.append(Problem(where, line, f"notebook {Path(resolved)} not found"))
            except OSError as exc:
                ctx.problems.append(Problem(where, line, f"notebook {Path(resolved)}: {exc.strerror}"))
            else:
                if is_dir:
                    ctx.problems.append(Problem(where, line, f"notebook {Path(resolved)} is a directory"))
    if len(ctx.problems) > before:
        return
    env: dict[str, str] = {}
    for layer in (ctx.file_defaults, ctx.cli):
        env.update(layer.env)
    env.update(values.get("env", {}))
    has_payload = "payload" in values or ctx.cli.has_payload or ctx.file_defaults.has_payload
    payload = values["payload"] if "payload" in values else (
        ctx.cli.payload if ctx.cli.has_payload else ctx.file_defaults.payload)
    ctx.items.append(BatchItem(
        index=len(ctx.items), line=line, where=where,
        notebook=resolved,
        name=name,
        provider=_pick("provider", values, *layers, fallback="kaggle" if ctx.operation == "run" else "local"),
        region=_pick("region", values, *layers),
        memory=_pick("memory", values, *layers),
        timeout=_pick("timeout", values, *layers),
        entry=_pick("entry", values, *layers),
        public=bool(_pick("public", values, *layers, fallback=False)),
        env=env, payload=payload, has_payload=has_payload,
    ))


# -- formats ------------------------------------------------------------------------------------
def _read_csv(ctx: _Context, text: str) -> None:
    reader = csv.reader(io.StringIO(text, newline=""))
    header: Optional[list[Optional[str]]] = None
    previous = 0
    try:
        for row in reader:
            line, previous = previous + 1, reader.line_num
            if not row or all(not cell.strip() for cell in row) or row[0].lstrip().startswith("#"):
                continue
            if header is None:
                header = _read_header(ctx, row, line)
                continue
            if len(row) > len(header):
                ctx.problems.append(Problem(f"{ctx.source}:{line}", line,
                                            f"{len(row)} fields but the header has {len(header)}"))
                continue
            raw = {col: cell for col, cell in zip(header, row) if col is not None}
            _add_item(ctx, raw, line)
    except csv.Error as exc:
        ctx.problems.append(Problem(f"{ctx.source}:{reader.line_num}", reader.line_num, f"bad CSV: {exc}"))
    if header is None:
        ctx.problems.append(Problem(f"{ctx.source}:1", 1, "no header line (e.g. notebook,name,provider)"))


def _read_header(ctx: _Context, row: list[str], line: int) -> list[Optional[str]]:
    """Column names; unknown or repeated ones are problems and their cells are ignored."""
    where = f"{ctx.source}:{line}"
    header: list[Optional[str]] = []
    for cell in row:
        col = cell.strip().lower()
        if col not in COLUMNS:
            ctx.problems.append(Problem(where, line, f"unknown column {cell.strip()!r} (known: {', '.join(COLUMNS)})"))
            header.append(None)
        elif col in header:
            ctx.problems.append(Problem(where, line, f"column {col!r} appears twice"))
            header.append(None)
        else:
            header.append(col)
    needed = "name" if ctx.operation in ("delete", "invoke") else None
    if "notebook" not in header and (needed is None or needed not in header):
        ctx.quiet_missing = True
        ctx.problems.append(Problem(where, line, "no 'notebook' column" + (" or 'name' column" if needed else "")))
    return header


def _read_text(ctx: _Context, text: str) -> None:
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            _add_item(ctx, {"notebook": stripped}, number)


def _read_json(ctx: _Context, text: str) -> None:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        ctx.problems.append(Problem(f"{ctx.source}:{exc.lineno}", exc.lineno,
                                    f"not valid JSON ({exc.msg}, column {exc.colno})"))
        return
    start = skip_ws(text, 0)
    if isinstance(doc, list):
        items, lines = doc, array_element_lines(text, start)
    elif isinstance(doc, dict):
        positions = key_positions(text, start)
        for key in doc:
            if key not in ("defaults", "items"):
                line = line_of(text, positions[key])
                ctx.problems.append(Problem(f"{ctx.source}:{line}", line,
                                            f"unknown key {key!r} (expected 'defaults' and 'items')"))
        items = doc.get("items")
        if not isinstance(items, list):
            line = line_of(text, positions.get("items", start))
            ctx.problems.append(Problem(f"{ctx.source}:{line}", line, "'items' must be a list of objects"))
            return
        lines = array_element_lines(text, positions["items"])
        if "defaults" in doc:
            _read_json_defaults(ctx, doc["defaults"], line_of(text, positions["defaults"]))
    else:
        ctx.problems.append(Problem(f"{ctx.source}:1", 1,
                                    'expected a list of objects or {"defaults": {...}, "items": [...]}'))
        return
    for obj, line in zip(items, lines):
        if isinstance(obj, str):
            obj = {"notebook": obj}
        if not isinstance(obj, dict):
            ctx.problems.append(Problem(f"{ctx.source}:{line}", line, "item is not an object or a notebook path"))
            continue
        unknown = [k for k in obj if k not in COLUMNS]
        for key in unknown:
            ctx.problems.append(Problem(f"{ctx.source}:{line}", line,
                                        f"unknown key {key!r} (known: {', '.join(COLUMNS)})"))
        if not unknown:
            _add_item(ctx, obj, line)


def _read_json_defaults(ctx: _Context, defaults: Any, line: int) -> None:
    where = f"{ctx.source}:{line}"
    if not isinstance(defaults, dict):
        ctx.problems.append(Problem(where, line, "'defaults' must be an object"))
        return
    for key in list(defaults):
        if key not in COLUMNS:
            ctx.problems.append(Problem(where, line, f"unknown key {key!r} in defaults (known: {', '.join(COLUMNS)})"))
        elif key in NOT_DEFAULTS:
            ctx.problems.append(Problem(where, line, f"{key!r} cannot be a default; give it per item"))
    usable = {k: v for k, v in defaults.items() if k in COLUMNS and k not in NOT_DEFAULTS}
    ctx.file_defaults = overrides_from(parse_values(usable, where, line, ctx.providers, ctx.problems))


READERS = {"csv": _read_csv, "json": _read_json, "text": _read_text}


def load(path: str, format: Optional[str] = None, operation: str = "deploy",
         cli: Optional[Overrides] = None, providers: Optional[list[str]] = None) -> BatchSpec:
    """Read and check the list at ``path``. Problems are returned, not raised, so that the
    caller can add the ones found by later checks and report them all together."""
    from kagg.providers import available

    if operation not in OPERATIONS:
        raise BadInput(f"unknown operation {operation!r}; one of {', '.join(OPERATIONS)}")
    fmt = detect_format(path, format)
    text = read_list_text(path)
    source = "<stdin>" if path == "-" else path
    base_dir = Path(".") if path == "-" else Path(path).parent
    ctx = _Context(source, base_dir, operation, cli or Overrides(), Overrides(),
                   (providers if providers is not None else available()) + (["kaggle"] if operation == "run" else []))
    READERS[fmt](ctx, text)
    if not ctx.items and not ctx.problems:
        ctx.problems.append(Problem(f"{source}:1", 1, "lists no notebooks"))
    return BatchSpec(source, None if path == "-" else Path(path), fmt, ctx.items, ctx.problems)
