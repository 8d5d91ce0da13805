"""Loading a notebook from a path or a URL into an nbformat v4 node.

Loading is forgiving about what does not matter for running the code
(schema-invalid metadata, a future 4.x minor, a v3 file) and strict, with a
one-line message, about what makes the input unusable (not there, not JSON,
not a notebook, not reachable).
"""

from __future__ import annotations

import hashlib
import http.client
import json
import re
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import nbformat

from kagg import __version__
from kagg.errors import BadInput, OperationFailed
from kagg.model import Note
from kagg.urls import is_url

#: Seconds to wait for a notebook URL before giving up.
URL_TIMEOUT = 30
#: Refuse bodies larger than this (bytes); a notebook this size is not a function.
MAX_BYTES = 200 * 1024 * 1024

_GITHUB_BLOB = re.compile(r"^https?://(?:www\.)?github\.com/([^/]+)/([^/]+)/blob/(.+)$")


@dataclass
class LoadedNotebook:
    """A notebook as read: the v4 node plus where its bytes came from and their hash."""

    nb: nbformat.NotebookNode
    raw: bytes
    source: str  # the path or URL as the user gave it
    folder: Optional[Path]  # the directory of a local file; None for URLs
    sha256: str
    stem: str  # the file name without ``.ipynb``
    notes: list[Note] = field(default_factory=list)  # things loading tolerated

    @property
    def filename(self) -> str:
        """The notebook's file name, for messages (``nb.ipynb``)."""
        return _basename(self.source)



def github_raw_url(url: str) -> str:
    """Turn a GitHub ``blob`` page URL into the raw file URL; other URLs are returned unchanged."""
    match = _GITHUB_BLOB.match(url)
    if not match:
        return url
    owner, repo, rest = match.groups()
    rest = rest.split("#", 1)[0].split("?", 1)[0]
    return f"https://raw.githubusercontent.com/{owner}/{repo}/{rest}"


def load_notebook(source: str) -> LoadedNotebook:
    """Read a notebook from a local path or an http(s) URL (GitHub blob URLs become raw URLs)."""
    if is_url(source):
        raw, folder = _fetch(source), None
    else:
        path = _check_path(source)
        raw, folder = _read_file(path, source), path.resolve().parent
    notes: list[Note] = []
    nb = parse_notebook(raw, _basename(source), notes)
    return LoadedNotebook(nb=nb, raw=raw, source=source, folder=folder,
                          sha256=hashlib.sha256(raw).hexdigest(), stem=_stem(source), notes=notes)


def parse_notebook(raw: bytes, filename: str, notes: Optional[list[Note]] = None) -> nbformat.NotebookNode:
    """Bytes to a v4 notebook node; ``notes`` collects what was tolerated (invalid metadata)."""
    text = _decode(raw, filename)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadInput(_not_json_message(filename, text, exc)) from None
    if not isinstance(data, dict) or "nbformat" not in data or not ("cells" in data or "worksheets" in data):
        raise BadInput(f"{filename} is JSON but not a Jupyter notebook (no `nbformat` and `cells`); "
                       "give an .ipynb file saved by Jupyter")
    nb = _to_v4(data, filename)
    if notes is not None:
        problem = _schema_problem(nb)
        if problem:
            notes.append(Note(f"the notebook does not match the nbformat schema ({problem}); loaded it anyway"))
    return nb


def _basename(source: str) -> str:
    if is_url(source):
        path = urllib.parse.urlsplit(source).path.rstrip("/")
        return urllib.parse.unquote(path.rsplit("/", 1)[-1]) or source
    return Path(source).name or source


def _stem(source: str) -> str:
    name = _basename(source)
    if name.lower().endswith(".ipynb"):
        return name[: -len(".ipynb")]
    return Path(name).stem


def _check_path(source: str) -> Path:
    path = Path(source).expanduser()
    if not path.exists():
        raise BadInput(f"{source} does not exist; check the path to the notebook")
    if path.is_dir():
        raise BadInput(f"{source} is a directory; give the .ipynb file inside it")
    if path.suffix.lower() == ".py":
        raise BadInput(f"{source} is a Python script, not a notebook; convert it with "
                       f"`jupytext --to notebook {source}` or paste its code into a notebook")
    return path


def _read_file(path: Path, source: str) -> bytes:
    try:
        if path.stat().st_size > MAX_BYTES:
            raise BadInput(f"{source} is larger than {MAX_BYTES // (1024 * 1024)} MB; "
                           "clear its outputs (kagg preprocess --strip-outputs) and try again")
        return path.read_bytes()
    except OSError as exc:
        raise BadInput(f"cannot read {source}: {exc.strerror or exc}; check its permissions") from None


def _fetch(url: str) -> bytes:
    target = github_raw_url(url)
    request = urllib.request.Request(target, headers={"User-Agent": f"kagg/{__version__}",
                                                      "Accept": "application/json, */*"})
    try:
        with urllib.request.urlopen(request, timeout=URL_TIMEOUT) as response:
            body = response.read(MAX_BYTES + 1)
            ctype = response.headers.get("Content-Type", "")
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            raise BadInput(f"{target} was not found (HTTP 404); check the URL "
                           "(a private repository needs a local copy)") from None
        raise BadInput(f"{target} answered HTTP {exc.code} {exc.reason}; check the URL or download "
                       "the notebook and give its path") from None
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, str):  # urllib's own complaints: "no host given", "unknown url type"
            raise BadInput(f"{url} is not a valid URL ({exc.reason}); give an http(s) URL to an .ipynb file") from None
        raise OperationFailed(f"could not fetch {target}: {exc.reason}; check the network and try again") from None
    except http.client.InvalidURL as exc:
        raise BadInput(f"{url} is not a valid URL ({exc}); give an http(s) URL to an .ipynb file") from None
    except (http.client.HTTPException, OSError) as exc:
        raise OperationFailed(f"could not fetch {target}: {exc or exc.__class__.__name__}; "
                              "check the network and try again") from None
    if len(body) > MAX_BYTES:
        raise BadInput(f"{target} is larger than {MAX_BYTES // (1024 * 1024)} MB; that is not a notebook kagg can serve")
    if body.lstrip()[:1] not in (b"{", b"\xef"):
        kind = ctype.split(";")[0].strip() or "no content type"
        raise BadInput(f"{target} did not return a notebook (got {kind}, not JSON); "
                       "give the raw .ipynb URL")
    return body


def _decode(raw: bytes, filename: str) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BadInput(f"{filename} is not UTF-8 text (byte {exc.start}); a notebook is a UTF-8 JSON "
                       "file, save it again from Jupyter") from None


def _not_json_message(filename: str, text: str, exc: json.JSONDecodeError) -> str:
    where = f"line {exc.lineno}, column {exc.colno}: {exc.msg}"
    first = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    if re.match(r"#\s*%%", first):
        return (f"{filename} is not JSON ({where}); it is a script in percent format (`# %%` cells): "
                f"convert it with `jupytext --to notebook {filename}`")
    if first.startswith(("<", "<!")):
        return f"{filename} is not JSON ({where}); it looks like HTML: download the raw .ipynb file"
    if exc.pos == 0 and _looks_like_python(text):
        return (f"{filename} is not JSON ({where}); it looks like a Python script: "
                f"convert it with `jupytext --to notebook` or paste it into a notebook")
    return f"{filename} is not valid JSON ({where}); open it in Jupyter and save it again"


def _looks_like_python(text: str) -> bool:
    try:
        compile(text, "<notebook>", "exec", dont_inherit=True)
    except (SyntaxError, ValueError):
        return False
    return True


def _to_v4(data: dict, filename: str) -> nbformat.NotebookNode:
    major = data.get("nbformat")
    if not isinstance(major, int):
        raise BadInput(f"{filename} has no valid `nbformat` version; open it in Jupyter and save it again")
    if major > 4:
        raise BadInput(f"{filename} is nbformat {major}, newer than kagg reads (4.x); "
                       "save it as nbformat 4 from Jupyter")
    if major == 4:
        data.setdefault("metadata", {})
        data.setdefault("cells", [])
        return _rejoin(nbformat.from_dict(data))
    for ws in data.setdefault("worksheets", []) or []:
        if isinstance(ws, dict):
            ws.setdefault("cells", [])
    data.setdefault("metadata", {})
    try:
        return nbformat.convert(nbformat.from_dict(data), 4)
    except Exception as exc:  # nbformat's converters raise bare KeyError/ValueError on odd input
        raise BadInput(f"{filename} is nbformat {major} and could not be upgraded to 4 ({exc!r}); "
                       "open it in Jupyter and save it again") from None


def _rejoin(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Sources and outputs stored as lists of lines become strings, as ``nbformat.reads`` leaves them."""
    from nbformat.v4.rwbase import rejoin_lines

    try:
        return rejoin_lines(nb)
    except (AttributeError, TypeError, KeyError):  # odd cells: cell_source() copes with lists anyway
        return nb


def _schema_problem(nb: nbformat.NotebookNode) -> Optional[str]:
    """The first schema violation as a short string, or None. Never raises.

    Outputs are left out of the check: kagg never reads them, and images in
    them make validation of a large notebook slow.
    """
    import warnings

    from nbformat.validator import ValidationError, validate

    cells = [dict(c, outputs=[]) if isinstance(c, dict) and c.get("cell_type") == "code" else c
             for c in nb.get("cells", [])]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            validate(dict(nb, cells=cells))
    except ValidationError as exc:
        message = str(getattr(exc, "message", exc)).splitlines()[0]
        return message[:120]
    except Exception:  # the validator itself failed on odd input: nothing useful to report
        return None
    return None
