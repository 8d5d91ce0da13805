"""Files beside the notebook that go into the artifact with it (docs/notebook-contract.md,
"Files beside the notebook").

Besides the modules it imports (:func:`kagg.notebook.requirements.local_module_files`), a
notebook reads files from its folder: ``json.load(open("weights.json"))``,
``pd.read_csv("train.csv")``, ``Path("data/labels.txt").read_text()``. Those the kept cells name
with a string literal (or a name bound to one, ``TRAIN = "train.csv"``) that exists beside the
notebook are packaged at the same relative path, so the notebook's relative paths work where it
runs: every provider starts the code with the app folder as the working directory (the local
server's ``cwd``, Lambda's ``/var/task``, Cloud Functions' ``/workspace``). ``--include GLOB``
adds others, ``--exclude GLOB`` leaves some out, and a size guard stops a deploy that would
carry more than :data:`DEFAULT_MAX_TOTAL` (or one file over :data:`DEFAULT_MAX_FILE`) unless
``--max-data-size`` raises it.

Every file packaged from the folder passes the same checks: nothing reached through a symbolic
link that leaves the folder, and no name that kagg's own files at the artifact's root would
replace (``main.py``, ``kagg.json``, ...).

Conversion (:func:`beside_notebook`) packages what the code names within the default limits;
:func:`package_data` applies the user's options and the checks' refusals, and runs wherever
kagg deploys or shows a conversion (``kagg deploy``, ``kagg serve``, ``kagg batch``, ``kagg convert``).
"""

from __future__ import annotations

import ast
import fnmatch
import functools
import os
import posixpath
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence

from kagg.errors import BadInput

MB = 1024 * 1024
#: the most data (bytes) packaged without ``--max-data-size``: all data files together ...
DEFAULT_MAX_TOTAL = 50 * MB
#: ... and any one of them
DEFAULT_MAX_FILE = 20 * MB
#: folders never packaged from the notebook's folder, whatever names them (caches, VCS, kagg's state)
SKIPPED_PARTS = frozenset({"__pycache__", ".ipynb_checkpoints", ".git", ".hg", ".svn", ".kagg"})
#: the requirements file beside the notebook: kagg writes the artifact's own from it
_REQUIREMENTS = "requirements.txt"

#: what each of kagg's own root files is, for the message refusing a local file of that name
KAGG_FILE_ROLES = {
    "main.py": "the entry file of functions-framework and Google Cloud Functions",
    "lambda_function.py": "the AWS Lambda entry file",
    "function_app.py": "the Azure Functions entry file",
    "host.json": "the Azure Functions host settings",
    "kagg.json": "kagg's manifest (name, mode, parameters)",
    "kagg_runtime.py": "kagg's runtime",
    "kagg_notebook.py": "the code generated from the notebook",
    "kagg_request.py": "the request cells generated from the notebook",
    "requirements.txt": "the requirements kagg writes",
}

#: calls whose string arguments are paths the code reads (by the called name: ``pd.read_csv`` is
#: ``read_csv``); names starting with :data:`_READ_PREFIXES` count too (``read_parquet``, ``loadtxt``)
_PATH_CALLS = frozenset({
    "open", "Path", "PurePath", "PosixPath", "PurePosixPath", "read", "parse", "imread", "fromfile",
    "memmap", "genfromtxt", "File", "ZipFile", "TarFile", "connect", "listdir", "scandir", "walk",
    "glob", "iglob", "exists", "isfile", "isdir", "from_pretrained", "from_file", "Booster",
    "open_dataset", "open_mfdataset",
})
_READ_PREFIXES = ("read_", "load")
_GLOB_CALLS = frozenset({"glob", "iglob"})
#: calls that name a path without reading a folder's files: a folder they name is not packaged whole
#: (``DATA = Path("data")`` then ``DATA / "test.csv"`` packages data/test.csv, not all of data/)
_FILE_ONLY_CALLS = frozenset({"Path", "PurePath", "PosixPath", "PurePosixPath", "exists", "isfile", "isdir",
                              "open", "File", "ZipFile", "TarFile", "connect"})
#: path constructors and joins whose literal parts make one path (``Path("data", "x.csv")``)
_JOIN_CALLS = frozenset({"Path", "PurePath", "PosixPath", "PurePosixPath", "join", "joinpath"})
_MAGIC = re.compile(r"[*?\[]")
_MAX_CANDIDATES = 16  # string values one expression may stand for (``a + b`` with several of each)
_MAX_DEPTH = 6  # names resolved through names


@dataclass(frozen=True)
class Limits:
    """The size guard: the most bytes of data in all (``total``) and in one file (``per_file``)."""

    total: int = DEFAULT_MAX_TOTAL
    per_file: int = DEFAULT_MAX_FILE

    @classmethod
    def of(cls, max_data_size: Optional[int]) -> "Limits":
        """``--max-data-size`` replaces both limits; without it, the defaults."""
        return cls() if max_data_size is None else cls(max_data_size, max_data_size)


# -- sizes ---------------------------------------------------------------------------------------

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(?:([kmgt])(?:i?b)?|(b))?\s*$", re.IGNORECASE)
_UNITS = {"": MB, "b": 1, "k": 1024, "m": MB, "g": 1024 * MB, "t": 1024 * 1024 * MB}


def parse_size(text: str, option: str = "--max-data-size") -> int:
    """``100MB``, ``1.5G``, ``500k``, ``200`` (megabytes) in bytes; 1 MB = 1024 × 1024 bytes."""
    match = _SIZE.match(text or "")
    if not match:
        raise BadInput(f"invalid {option} {text!r}: give a size such as 100MB, 1.5GB or 500KB")
    unit = (match.group(2) or match.group(3) or "").lower()
    size = int(float(match.group(1)) * _UNITS[unit])
    if size <= 0:
        raise BadInput(f"invalid {option} {text!r}: the size must be more than 0")
    return size


def format_size(size: int) -> str:
    """``1.5 MB``, ``40 B``: what the messages and ``kagg convert`` show."""
    if size < 1024:
        return f"{size} B"
    for unit, factor in (("GB", 1024 * MB), ("MB", MB), ("KB", 1024)):
        if size >= factor:
            return f"{size // factor} {unit}" if size % factor == 0 else f"{size / factor:.1f} {unit}"
    return f"{size} B"  # pragma: no cover


# -- what the code names -------------------------------------------------------------------------

def _call_name(func: ast.expr) -> Optional[str]:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


def _reads_paths(name: Optional[str]) -> bool:
    return bool(name) and (name in _PATH_CALLS or name.startswith(_READ_PREFIXES))  # type: ignore[union-attr]


class _Names:
    """The string values the kept cells' code gives a path expression: literals, names bound to
    literals (anywhere in the kept cells, every binding counts), ``+``, ``/``, f-strings of those,
    ``os.path.join``/``Path(...)`` of those. Nothing is executed."""

    def __init__(self, trees: Sequence[ast.AST]):
        self.values: dict[str, list[ast.expr]] = {}
        self.calls: list[ast.Call] = []
        for tree in trees:
            for node in ast.walk(tree):
                if isinstance(node, ast.Call):
                    self.calls.append(node)
                elif isinstance(node, ast.Assign):
                    for target in node.targets:
                        self._bind(target, node.value)
                elif isinstance(node, (ast.AnnAssign, ast.NamedExpr)) and node.value is not None:
                    self._bind(node.target, node.value)

    def _bind(self, target: ast.expr, value: ast.expr) -> None:
        if isinstance(target, ast.Name):
            self.values.setdefault(target.id, []).append(value)
        elif (isinstance(target, (ast.Tuple, ast.List)) and isinstance(value, (ast.Tuple, ast.List))
              and len(target.elts) == len(value.elts)):
            for t, v in zip(target.elts, value.elts):
                self._bind(t, v)

    def strings(self, node: ast.expr, depth: int = 0) -> list[str]:
        if depth > _MAX_DEPTH:
            return []
        if isinstance(node, ast.Constant):
            return [node.value] if isinstance(node.value, str) else []
        if isinstance(node, ast.Name):
            out: list[str] = []
            for value in self.values.get(node.id, [])[:_MAX_CANDIDATES]:
                out.extend(self.strings(value, depth + 1))
            return list(dict.fromkeys(out))[:_MAX_CANDIDATES]
        if isinstance(node, ast.JoinedStr):
            parts: list[list[str]] = []
            for value in node.values:
                if isinstance(value, ast.FormattedValue):
                    if value.conversion not in (-1, 115) or value.format_spec is not None:
                        return []
                    parts.append(self.strings(value.value, depth + 1))
                else:
                    parts.append(self.strings(value, depth + 1))
            return self._combine(parts, "")
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Div)):
            sep = "" if isinstance(node.op, ast.Add) else "/"
            return self._combine([self.strings(node.left, depth + 1), self.strings(node.right, depth + 1)], sep)
        if isinstance(node, ast.Call) and _call_name(node.func) in _JOIN_CALLS and not node.keywords:
            args = list(node.args)
            if _call_name(node.func) == "joinpath" and isinstance(node.func, ast.Attribute):
                args.insert(0, node.func.value)
            if args and not any(isinstance(a, ast.Starred) for a in args):
                return self._combine([self.strings(a, depth + 1) for a in args], "/")
        return []

    @staticmethod
    def _combine(parts: list[list[str]], sep: str) -> list[str]:
        out = [""]
        for i, options in enumerate(parts):
            if not options:
                return []
            joined = []
            for head in out:
                for part in options:
                    if sep and i and part.startswith("/"):
                        joined.append(part)  # a later absolute part wins, as in os.path.join
                    else:
                        joined.append(head + (sep if i and sep and head and not head.endswith("/") else "") + part)
            out = list(dict.fromkeys(joined))[:_MAX_CANDIDATES]
        return out


def _arguments(call: ast.Call) -> Iterable[ast.expr]:
    nodes = [*call.args, *(k.value for k in call.keywords)]
    if _call_name(call.func) == "open":  # open(file, mode, ...): only the file is a path
        nodes = call.args[:1] + [k.value for k in call.keywords if k.arg == "file"]
    for node in nodes:
        if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
            yield from node.elts
        elif isinstance(node, ast.Dict):
            yield from (v for v in node.values if v is not None)
        elif not isinstance(node, ast.Starred):
            yield node


def _writes(call: ast.Call, names: _Names) -> bool:
    """``open(path, "w")``: a file the code writes, not one it reads."""
    modes = call.args[1:2] + [k.value for k in call.keywords if k.arg == "mode"]
    return any(set(m) & set("wax") for node in modes for m in names.strings(node))


def relative_path(text: str) -> Optional[str]:
    """``text`` as a normalized path inside the notebook's folder (``./data/x.csv`` ->
    ``data/x.csv``), or None: absolute, home-relative, a URL, ``..`` out of the folder, the folder."""
    if not text or len(text) > 1024 or any(c in text for c in "\0\n\r") or "://" in text:
        return None
    if text.startswith(("/", "~", "\\")) or re.match(r"^[A-Za-z]:[\\/]", text):
        return None
    norm = posixpath.normpath(text.strip())
    if norm in (".", "..") or norm.startswith("../") or norm.startswith("/"):
        return None
    return norm


def named_paths(trees: Sequence[ast.AST]) -> dict[str, bool]:
    """Every path inside the notebook's folder that the code passes to a call that reads files
    (``open``, ``read_*``, ``load*``, ``Path(...)``, ...), as written there (normalized), in order,
    each with whether a folder of that name is packaged whole (``os.listdir("images")``,
    ``from_pretrained("model")``: yes; ``Path("data")``, ``open``: no). ``glob("data/*.csv")``
    gives the pattern itself; ``open(path, "w")`` is not a read."""
    names = _Names(trees)
    found: dict[str, bool] = {}
    for call in names.calls:
        name = _call_name(call.func)
        if not (_reads_paths(name) or name == "rglob") or (name == "open" and _writes(call, names)):
            continue
        # a method of a path (``DATA.joinpath("x").read_text()``, ``(DATA / "x").open()``): the path
        base = names.strings(call.func.value) if isinstance(call.func, ast.Attribute) else []
        if name in _JOIN_CALLS:
            texts = names.strings(call)  # Path("data", "x.csv") is one path
        elif name in _GLOB_CALLS or name == "rglob":
            patterns = [t for arg in call.args[:1] for t in names.strings(arg)]
            if name == "rglob":
                patterns = ["**/" + t for t in patterns]
            texts = names._combine([base, patterns], "/") if base else patterns
        else:
            texts = base + [t for arg in _arguments(call) for t in names.strings(arg)]
        whole = name not in _FILE_ONLY_CALLS
        for text in texts:
            rel = relative_path(text)
            if rel is not None and (name in _GLOB_CALLS or name == "rglob" or not _MAGIC.search(rel)):
                found[rel] = found.get(rel, False) or whole
    return found


#: a run of the characters file names are usually made of: how a name stands in code
_NAME_RUN = re.compile(r"[\w.\-]+")


@functools.lru_cache(maxsize=64)
def _entries(folder: str, changed_ns: int) -> Optional[tuple[frozenset[str], tuple[str, ...]]]:
    """The entries of ``folder`` (as it was at ``changed_ns``): those made of name characters only,
    found in code as a whole run of them, and the others (a space, a bracket), found as written;
    None when the folder is empty or unreadable. Cached: a batch converts hundreds of notebooks
    from one folder. A set, not a pattern of every entry: compiling that took 4 ms for a folder
    of 200 notebooks, before the first notebook of a batch could be checked."""
    try:
        entries = [e for e in os.listdir(folder) if e not in SKIPPED_PARTS]
    except OSError:
        return None
    if not entries:
        return None
    plain = frozenset(e for e in entries if _NAME_RUN.fullmatch(e))
    return plain, tuple(e for e in entries if e not in plain)


def _may_name_any(folder: Path, texts: Optional[Sequence[str]]) -> bool:
    """Whether the code (``texts``, None: unknown) can name anything in ``folder``: a path the code
    names starts with one of the folder's entries, written out somewhere in it (or it globs).
    Walking the code's trees costs a tenth of a conversion; most notebooks' folders hold nothing
    the code mentions, and then they are not walked."""
    try:
        changed = os.stat(folder).st_mtime_ns  # an entry added or removed changes the folder's mtime
    except OSError:
        return False
    entries = _entries(str(folder), changed)
    if entries is None:
        return False
    if texts is None:
        return True
    plain, odd = entries
    return any("glob" in text or not plain.isdisjoint(_NAME_RUN.findall(text)) or any(e in text for e in odd)
               for text in texts)


def data_refs(trees: Sequence[ast.AST], folder: Optional[Path], texts: Optional[Sequence[str]] = None) -> list[str]:
    """The paths of :func:`named_paths` that exist beside the notebook (files, folders, links,
    patterns matching something), sorted: what :func:`package_data` starts from. ``texts``: the
    code of the trees, to skip the walk when it cannot name anything in the folder."""
    if folder is None or not _may_name_any(folder, texts):
        return []
    out = []
    for rel, whole in named_paths(trees).items():
        if _MAGIC.search(rel):
            if _glob(folder, rel):
                out.append(rel)
        elif os.path.lexists(folder / rel) and (whole or not os.path.isdir(folder / rel)):
            out.append(rel)
    return sorted(set(out))


# -- the folder, without leaving it --------------------------------------------------------------

def _inside(path: str, base: str) -> bool:
    return path == base or path.startswith(base.rstrip(os.sep) + os.sep)


class _Walk:
    """Files under the notebook's folder, collecting every symbolic link that leads out of it."""

    def __init__(self, folder: Path, exclude: Sequence[str] = ()):
        self.folder = Path(folder)
        self.base = os.path.realpath(self.folder)
        self.links_out: list[str] = []
        self.exclude = list(exclude)  # paths left out are not looked at, links included

    def _link_out(self, rel: str, path: str) -> bool:
        """True (and noted) when ``path`` (for ``rel``) resolves outside the folder or nowhere."""
        real = os.path.realpath(path)
        if not _inside(real, self.base):
            self.links_out.append(f"{rel} -> {real}")
            return True
        if not os.path.exists(real):
            self.links_out.append(f"{rel} -> {os.readlink(path) if os.path.islink(path) else real} (missing)")
            return True
        return False

    def check(self, rel: str) -> bool:
        """Whether ``rel`` may be read: no component of it is a link out of the folder."""
        path = self.folder
        done: list[str] = []
        for part in rel.split("/"):
            path = path / part
            done.append(part)
            if part in SKIPPED_PARTS or _excluded("/".join(done), self.exclude):
                return False
            if os.path.islink(path) and self._link_out("/".join(done), str(path)):
                return False
        return True

    def files(self, rel: str, suffix: str = "") -> list[str]:
        """``rel`` (a file) or every file below it (a folder: sorted, caches and hidden names
        skipped, links inside the folder followed); ``suffix``: only names ending so."""
        if not self.check(rel):
            return []
        path = self.folder / rel
        if path.is_file():
            return [rel] if rel.endswith(suffix) else []
        if not path.is_dir():
            return []
        out: list[str] = []
        self._walk(rel, [os.path.realpath(path)], suffix, out)
        return out

    def _walk(self, rel: str, stack: list[str], suffix: str, out: list[str]) -> None:
        try:
            entries = sorted(os.scandir(self.folder / rel), key=lambda e: e.name)
        except OSError as exc:
            raise BadInput(f"cannot read {rel}/ beside the notebook: {exc.strerror or exc}") from None
        for entry in entries:
            if entry.name in SKIPPED_PARTS or entry.name.startswith("."):
                continue
            child = f"{rel}/{entry.name}" if rel not in ("", ".") else entry.name
            if _excluded(child, self.exclude) or (suffix and not entry.name.endswith(suffix)
                                                  and not entry.is_dir()):
                continue  # left out, or not packaged (a package's data file): its links do not matter
            if entry.is_symlink() and self._link_out(child, entry.path):
                continue
            if entry.is_dir():
                real = os.path.realpath(entry.path)
                if any(_inside(seen, real) for seen in stack):
                    continue  # a link back up the tree: a cycle
                self._walk(child, stack + [real], suffix, out)
            elif entry.is_file() and entry.name.endswith(suffix):
                out.append(child)

    def refuse_links(self) -> None:
        if not self.links_out:
            return
        listed = ", ".join(dict.fromkeys(self.links_out))
        what = "a symbolic link" if len(self.links_out) == 1 else "symbolic links"
        raise BadInput(f"the notebook's folder holds {what} to files outside it ({listed}); kagg does not "
                       "follow links out of the notebook's folder: copy what they point to into the folder, "
                       f"or remove {'it' if len(self.links_out) == 1 else 'them'}")


def module_files(folder: Path, rel: str, suffix: str = ".py") -> list[str]:
    """The files of the module ``rel`` (``helpers.py`` or a package folder ``tools``), refusing
    symbolic links out of the folder (for :func:`kagg.notebook.requirements.local_module_files`)."""
    walk = _Walk(folder)
    files = walk.files(rel, suffix)
    walk.refuse_links()
    return files


def _glob(folder: Path, pattern: str) -> list[str]:
    """Matches of ``pattern`` under ``folder`` (relative posix paths, sorted). Caches are never
    matched, and hidden names (``.env``) only by a pattern part that starts with a dot."""
    explicit = {p for p in pattern.split("/") if p.startswith(".")}
    out = []
    try:
        matches = sorted(Path(folder).glob(pattern))
    except (ValueError, OSError):
        return []
    for path in matches:
        rel = path.relative_to(folder).as_posix()
        parts = rel.split("/")
        if rel in ("", ".") or any(p in SKIPPED_PARTS or (p.startswith(".") and p not in explicit) for p in parts):
            continue
        out.append(rel)
    return out


def _check_pattern(pattern: str, option: str) -> str:
    text = (pattern or "").strip()
    rel = relative_path(text) if text not in (".", "./") else "."
    if not text or rel is None:
        raise BadInput(f"{option} {pattern!r} is not a path inside the notebook's folder; give a file, folder "
                       "or glob relative to it, such as data/*.csv")
    return rel


def _excluded(rel: str, patterns: Sequence[str]) -> bool:
    parts = rel.split("/")
    prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    for pattern in patterns:
        alts = [pattern] + ([pattern[3:]] if pattern.startswith("**/") else [])
        if any(fnmatch.fnmatchcase(p, alt) for p in prefixes for alt in alts):
            return True
    return False


# -- names kagg's own files take -----------------------------------------------------------------

def _kagg_names() -> dict[str, str]:
    """kagg's own files at the artifact's root (any provider's) -> what each is."""
    from kagg.packaging import builder

    names = {builder.NOTEBOOK_FILE, builder.REQUEST_FILE, builder.MANIFEST_FILE, builder.RUNTIME_FILE,
             builder.REQUIREMENTS_FILE, *(n for shims in builder.SHIMS.values() for n in shims)}
    return {n: KAGG_FILE_ROLES.get(n, "one of kagg's own files") for n in sorted(names)}


def check_clashes(files: Iterable[str], what: str) -> None:
    """Refuse a file from the notebook's folder that one of kagg's own files would replace in the
    artifact: a module ``main.py`` or package ``main/`` (also ``kagg_runtime``, ``lambda_function``,
    ...), a data file ``kagg.json`` or ``host.json``. ``what``: "module" or "data file"."""
    files = list(files)
    if not files:
        return
    own = _kagg_names()
    stems = {n[:-3]: n for n in own if n.endswith(".py")}
    for rel in files:
        top, _, rest = rel.partition("/")
        if not rest and top in own:
            name = top
            stem, dot, suffix = top.partition(".")
            renamed = f"my_{stem}{dot}{suffix}"
            shown = top
        elif rest and top in stems:
            name, renamed, shown = stems[top], f"my_{top}/", f"{top}/"
        else:
            continue
        kind = what if what != "module" or not rest else "package"
        if what == "module":
            fix = f"rename it (e.g. to {renamed}) and change `import {top.partition('.')[0]}` in the notebook to match"
        else:
            fix = (f"rename it (e.g. to {renamed}) and the path in the notebook, or leave it out with "
                   f"--exclude {shlex.quote(shown.rstrip('/'))}")
        raise BadInput(f"the {kind} {shown} beside the notebook has the name of kagg's own {name} "
                       f"({own[name]}), which would replace it in the artifact; {fix}")


# -- conversion and the user's options -----------------------------------------------------------

def _size_message(sizes: dict[str, int], limits: Limits) -> Optional[str]:
    total = sum(sizes.values())
    big = sorted(sizes, key=lambda r: (-sizes[r], r))
    over = [r for r in big if sizes[r] > limits.per_file]
    if not over and total <= limits.total:
        return None
    shown = (over or big)[:3]
    listed = ", ".join(f"{r} ({format_size(sizes[r])})" for r in shown)
    more = len(over or big) - len(shown)
    listed += f" and {more} more" if more > 0 else ""
    if over:
        head = (f"{'a data file' if len(over) == 1 else f'{len(over)} data files'} beside the notebook "
                f"{'is' if len(over) == 1 else 'are'} over the limit of {format_size(limits.per_file)} for one "
                f"file: {listed}")
    else:
        head = (f"the data files beside the notebook come to {format_size(total)}, over the limit of "
                f"{format_size(limits.total)} in all; the biggest: {listed}")
    need = max(total, max(sizes.values()))
    raise_to = -(-need // (10 * MB)) * 10
    return (f"{head}; leave files out with --exclude (e.g. --exclude {shlex.quote(shown[0])}), "
            f"or raise the limit with --max-data-size {raise_to}MB")


def collect(folder: Path, refs: Sequence[str], include: Sequence[str] = (), exclude: Sequence[str] = (),
            limits: Limits = Limits(), modules: Iterable[str] = ()) -> dict[str, int]:
    """The data files to package (relative path -> size), sorted: the files ``refs`` name (a file, a
    folder, a glob) and those ``include`` adds, less ``exclude`` and what ``modules`` already holds.
    Refuses (BadInput) an include that matches nothing, links out of the folder, a name of kagg's
    own files, and more data than ``limits`` allow."""
    includes = [_check_pattern(p, "--include") for p in include]
    excludes = [_check_pattern(p, "--exclude") for p in exclude]
    walk = _Walk(folder, excludes)
    chosen: list[str] = []
    for spec, given in [(r, False) for r in refs] + [(p, True) for p in includes]:
        if spec == "." or _MAGIC.search(spec):
            matches = [""] if spec == "." else _glob(folder, spec)
            found = [f for m in matches for f in (walk.files(m) if m else _root_files(walk))]
        else:
            found = walk.files(spec) if os.path.lexists(folder / spec) else []
        if given and not found and not walk.links_out and not _excluded(spec, excludes):
            raise BadInput(f"--include {shlex.quote(spec)} matches no file in the notebook's folder {folder}")
        chosen.extend(found)
    walk.refuse_links()
    skip = set(modules)
    files = sorted({f for f in chosen if f not in skip and f != _REQUIREMENTS and not _excluded(f, excludes)})
    check_clashes(files, "data file")
    sizes = {}
    for rel in files:
        try:
            sizes[rel] = (folder / rel).stat().st_size
        except OSError as exc:
            raise BadInput(f"cannot read {rel} beside the notebook: {exc.strerror or exc}") from None
    message = _size_message(sizes, limits) if sizes else None
    if message:
        raise BadInput(message)
    return sizes


def _root_files(walk: _Walk) -> list[str]:
    out: list[str] = []
    walk._walk("", [walk.base], "", out)
    return out


def _read(folder: Path, rel: str) -> bytes:
    try:
        return (folder / rel).read_bytes()
    except OSError as exc:
        raise BadInput(f"cannot read {rel} beside the notebook: {exc.strerror or exc}") from None


def beside_notebook(trees: Sequence[ast.AST], folder: Optional[Path], modules: dict[str, bytes],
                    texts: Optional[Sequence[str]] = None) -> dict[str, Any]:
    """What conversion packages from the notebook's folder, as ConvertedFunction fields:
    ``local_files`` (the modules, then the data files the code names, within the default limits),
    ``data_files`` (which of them are data) and ``data_refs`` (the paths the code names that exist).
    ``texts``: the code of ``trees`` (see :func:`data_refs`).

    A module that kagg's own files would replace is refused here. Data that cannot be packaged
    as it stands (too big, a link out, a clashing name) is left out: :func:`package_data`, which
    every deploy and ``kagg convert`` run with the user's options, says why.
    """
    check_clashes(modules, "module")
    refs = data_refs(trees, folder, texts)
    data: dict[str, bytes] = {}
    if refs and folder is not None:
        try:
            data = {rel: _read(folder, rel) for rel in collect(folder, refs, modules=modules)}
        except BadInput:
            data = {}
    return {"local_files": dict(sorted({**modules, **data}.items())), "data_files": sorted(data),
            "data_refs": refs}


def package_data(function: Any, folder: Optional[Path], include: Sequence[str] = (),
                 exclude: Sequence[str] = (), max_data_size: Optional[int] = None) -> None:
    """Settle ``function``'s data files with the user's options (``--include``, ``--exclude``,
    ``--max-data-size``): BadInput, one line, for anything :func:`collect` refuses."""
    include, exclude = list(include or ()), list(exclude or ())
    if folder is None:
        if include:
            raise BadInput("--include packages files beside the notebook, and a notebook read from a URL has "
                           "no folder; download it next to its files and deploy the file")
        return
    refs = list(getattr(function, "data_refs", None) or [])
    if not refs and not include:
        return
    old = dict(function.local_files)
    old_data = set(getattr(function, "data_files", None) or [])
    modules = {k: v for k, v in old.items() if k not in old_data}
    chosen = collect(folder, refs, include, exclude, Limits.of(max_data_size), modules)
    data = {rel: old[rel] if rel in old_data else _read(folder, rel) for rel in chosen}
    function.local_files = dict(sorted({**modules, **data}.items()))
    function.data_files = sorted(data)


# -- a file the notebook could not find at start ---------------------------------------------------

_MISSING = [
    re.compile(r"No such file or directory:\s*(?P<q>['\"])(?P<path>.+?)(?P=q)"),
    re.compile(r"File (?:b)?(?P<q>['\"])(?P<path>.+?)(?P=q) does not exist"),
    re.compile(r"unable to open file: name = (?P<q>['\"])(?P<path>.+?)(?P=q)"),
    re.compile(r"FileNotFoundError:.*?(?P<q>['\"])(?P<path>[^'\"]+)(?P=q)"),
]


def missing_file_hint(error_line: str, notebook_dir: Optional[Path]) -> Optional[str]:
    """For a start-up error such as ``FileNotFoundError: [Errno 2] No such file or directory:
    'train.csv'``: when that file (or folder) is beside the notebook, how to package it
    ("train.csv is beside the notebook but was not packaged; deploy with --include train.csv");
    else None."""
    if not error_line or notebook_dir is None:
        return None
    for pattern in _MISSING:
        match = pattern.search(error_line)
        if match:
            break
    else:
        return None
    text = match.group("path")
    folder = Path(notebook_dir)
    if os.path.isabs(text):
        try:
            text = Path(text).resolve().relative_to(folder.resolve()).as_posix()
        except ValueError:
            return None
    rel = relative_path(text)
    if rel is None or not os.path.exists(folder / rel):
        return None
    walk = _Walk(folder)
    if not walk.check(rel):
        return None
    return f"{rel} is beside the notebook but was not packaged; deploy with --include {shlex.quote(rel)}"


def notebook_folder(source: str) -> Optional[Path]:
    """The folder of a notebook given as a path (None for a URL)."""
    from kagg.urls import is_url

    if not source or is_url(source):
        return None
    return Path(source).resolve().parent


def add_missing_file_hint(message: str, source: str) -> str:
    """``message`` with :func:`missing_file_hint`'s advice appended when it applies (for a
    provider's start-failure message; ``source`` is the notebook's path as deployed)."""
    hint = missing_file_hint(message, notebook_folder(source))
    return f"{message}; {hint}" if hint else message
