"""Loading a notebook from a path or a URL into an nbformat v4 node.

Loading is forgiving about what does not matter for running the code
(schema-invalid metadata, a future 4.x minor, a v3 file) and strict, with a
one-line message, about what makes the input unusable (not there, not JSON,
not a notebook, not reachable).

nbformat is not imported on the common path (a local v4 notebook that
matches the schema): importing it loads jsonschema and compiles the schema,
which costs more than converting a large notebook. :func:`schema_valid` checks
the structure cheaply, and only a notebook it cannot vouch for goes through
nbformat's validator (so every notebook nbformat rejects is still reported).
Version 3 files are upgraded with nbformat's converter.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Optional

from kagg.errors import BadInput, OperationFailed
from kagg.model import Note
from kagg.urls import is_url, redact_url
from kagg.notebook.schema import schema_problem

#: Seconds a notebook URL may take in all, connecting to last byte ($KAGG_FETCH_TIMEOUT to change).
URL_TIMEOUT = 60
#: Refuse bodies larger than this (bytes); a notebook this size is not a function.
MAX_BYTES = 200 * 1024 * 1024

_GITHUB_BLOB = re.compile(r"^https?://(?:www\.)?github\.com/([^/]+)/([^/]+)/blob/(.+)$")


class NotebookNode(dict):
    """A dict with attribute access (``nb.cells[0].source``), as nbformat's NotebookNode.

    kagg's own class, so that loading does not import nbformat; nbformat's
    functions accept it as the dict it is (``nbformat.from_dict(node)`` gives
    theirs). Mappings stored into it become nodes too.
    """

    __slots__ = ()

    def __getattr__(self, key: str) -> Any:
        try:
            return self[key]
        except KeyError:
            raise AttributeError(key) from None

    def __setattr__(self, key: str, value: Any) -> None:
        if hasattr(dict, key):
            raise AttributeError(f"{key} is a method of the notebook node, not a key")
        self[key] = value

    def __delattr__(self, key: str) -> None:
        try:
            del self[key]
        except KeyError:
            raise AttributeError(key) from None

    def __setitem__(self, key: Any, value: Any) -> None:
        if isinstance(value, Mapping) and not isinstance(value, NotebookNode):
            value = from_dict(value)
        super().__setitem__(key, value)

    def setdefault(self, key: Any, default: Any = None) -> Any:
        if key not in self:
            self[key] = default
        return self[key]

    def update(self, *args: Any, **kwargs: Any) -> None:
        for key, value in dict(*args, **kwargs).items():
            self[key] = value

    def copy(self) -> "NotebookNode":
        return NotebookNode(self)

    def __deepcopy__(self, memo: dict) -> "NotebookNode":
        from copy import deepcopy

        new = NotebookNode()
        memo[id(self)] = new
        for key, value in self.items():
            dict.__setitem__(new, key, value if isinstance(value, (str, int, float, type(None)))
                             else deepcopy(value, memo))
        return new

    def __reduce__(self):
        return (NotebookNode, (dict(self),))


def from_dict(data: Any) -> Any:
    """Every dict inside ``data`` (lists included) as a :class:`NotebookNode`; like nbformat's ``from_dict``."""
    if isinstance(data, dict):
        return NotebookNode({k: from_dict(v) for k, v in data.items()})
    if isinstance(data, (list, tuple)):
        return [from_dict(v) for v in data]
    return data


@dataclass
class LoadedNotebook:
    """A notebook as read: the v4 node plus where its bytes came from and their hash."""

    nb: NotebookNode
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
    from kagg.kaggle.pull import fetch_source, is_kernel_source  # stdlib-only until it is one

    if is_url(source):
        raw, folder = _fetch(source), None
    elif is_kernel_source(source):  # OWNER/SLUG: a Kaggle notebook, pulled
        raw, folder = fetch_source(source)[0], None
    else:
        path, size = _check_path(source)
        raw, folder = _read_file(path, source, size), path.resolve().parent
    notes: list[Note] = []
    name = _basename(source)
    nb = parse_notebook(raw, name, notes)
    shown = redact_url(source) if is_url(source) else source  # what the registry and messages keep
    return LoadedNotebook(nb=nb, raw=raw, source=shown, folder=folder,
                          sha256=hashlib.sha256(raw).hexdigest(), stem=_stem(name), notes=notes)


def parse_notebook(raw: bytes, filename: str, notes: Optional[list[Note]] = None) -> NotebookNode:
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
        problem = schema_problem(nb)
        if problem:
            notes.append(Note(f"the notebook does not match the nbformat schema ({problem}); loaded it anyway"))
    return nb


def _basename(source: str) -> str:
    if is_url(source):
        import urllib.parse

        path = urllib.parse.urlsplit(source).path.rstrip("/")
        return urllib.parse.unquote(path.rsplit("/", 1)[-1]) or source
    return Path(source).name or source


def _stem(name: str) -> str:
    """The file name without ``.ipynb``."""
    if name.lower().endswith(".ipynb"):
        return name[: -len(".ipynb")]
    return Path(name).stem


def _check_path(source: str) -> tuple[Path, int]:
    """The notebook's path and size (one stat: a batch checks hundreds of notebooks)."""
    path = Path(source).expanduser()
    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError, ValueError):
        raise BadInput(f"{source} does not exist; check the path to the notebook") from None
    except OSError as exc:
        raise BadInput(f"cannot read {source}: {exc.strerror or exc}; check its permissions") from None
    if stat.S_ISDIR(st.st_mode):
        raise BadInput(f"{source} is a directory; give the .ipynb file inside it")
    if path.suffix.lower() == ".py":
        raise BadInput(f"{source} is a Python script, not a notebook; convert it with "
                       f"`jupytext --to notebook {source}` or paste its code into a notebook")
    return path, st.st_size


def _read_file(path: Path, source: str, size: int) -> bytes:
    if size > MAX_BYTES:
        raise BadInput(f"{source} is larger than {MAX_BYTES // (1024 * 1024)} MB; "
                       "clear its outputs (kagg preprocess --strip-outputs) and try again")
    try:
        with open(path, "rb", buffering=0) as fh:
            return fh.readall()
    except OSError as exc:
        raise BadInput(f"cannot read {source}: {exc.strerror or exc}; check its permissions") from None


def fetch_timeout() -> float:
    """Seconds a notebook URL may take in all: ``$KAGG_FETCH_TIMEOUT`` (``90``, ``2m``), else :data:`URL_TIMEOUT`."""
    text = os.environ.get("KAGG_FETCH_TIMEOUT", "").strip()
    if not text:
        return float(URL_TIMEOUT)
    from kagg.monitor.units import parse_duration

    return parse_duration(text, "KAGG_FETCH_TIMEOUT")


def _fetch(url: str) -> bytes:
    """The body at ``url`` (a GitHub blob URL: its raw file), all of it within :func:`fetch_timeout`.

    Credentials in the URL are sent as Basic auth, and every message shows the URL redacted.
    """
    import http.client
    import io
    import urllib.error

    from kagg import __version__
    from kagg.urls import DeadlinePassed, http_exchange, redact_url, split_userinfo

    target = github_raw_url(url)
    shown = redact_url(target)
    timeout = fetch_timeout()
    clean, basic_auth = split_userinfo(target)

    def consume(status: int, headers: dict[str, str], read) -> tuple[int, str, bytes]:
        if not 200 <= status < 300:
            return status, "", b""
        declared = headers.get("content-length", "").strip()
        if declared.isdigit() and int(declared) > MAX_BYTES:
            raise _too_large(shown)  # before reading any of it
        buffer, size = io.BytesIO(), 0  # its getvalue() hands over the buffer: no second copy
        while size <= MAX_BYTES:
            piece = read(min(1 << 20, MAX_BYTES + 1 - size))
            if not piece:
                break
            buffer.write(piece)
            size += len(piece)
        if size > MAX_BYTES:
            raise _too_large(shown)
        return status, headers.get("content-type", ""), buffer.getvalue()

    try:
        status, ctype, body = http_exchange(clean, consume, headers={"User-Agent": f"kagg/{__version__}",
                                                                     "Accept": "application/json, */*"},
                                            secret_headers=basic_auth, timeout=timeout)
    except (BadInput, OperationFailed):
        raise
    except DeadlinePassed as exc:
        raise OperationFailed(f"could not fetch {shown}: {exc}; check the network, or allow more time "
                              f"with KAGG_FETCH_TIMEOUT (now {timeout:g} s)") from None
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, str):  # urllib's own complaints: "no host given", "unknown url type"
            raise BadInput(f"{redact_url(url)} is not a valid URL ({exc.reason}); "
                           "give an http(s) URL to an .ipynb file") from None
        raise OperationFailed(f"could not fetch {shown}: {exc.reason}; check the network and try again") from None
    except (http.client.InvalidURL, ValueError) as exc:
        what = str(exc).split(":", 1)[0].strip() or type(exc).__name__
        raise BadInput(f"{redact_url(url)} is not a valid URL ({what}); "
                       "give an http(s) URL to an .ipynb file") from None
    except (http.client.HTTPException, OSError) as exc:
        detail = str(exc).strip().splitlines()[0][:120] if str(exc).strip() else exc.__class__.__name__
        raise OperationFailed(f"could not fetch {shown}: {detail}; check the network and try again") from None
    if status == 404:
        raise BadInput(f"{shown} was not found (HTTP 404); check the URL "
                       "(a private repository needs a local copy)")
    if not 200 <= status < 300:
        from http import HTTPStatus

        try:
            reason = f" {HTTPStatus(status).phrase}"
        except ValueError:  # a status of the server's own
            reason = ""
        raise BadInput(f"{shown} answered HTTP {status}{reason}; check the URL or download "
                       "the notebook and give its path")
    if body.lstrip()[:1] not in (b"{", b"\xef"):
        kind = ctype.split(";")[0].strip() or "no content type"
        raise BadInput(f"{shown} did not return a notebook (got {kind}, not JSON); give the raw .ipynb URL")
    return body


def _too_large(shown: str) -> BadInput:
    return BadInput(f"{shown} is larger than {MAX_BYTES // (1024 * 1024)} MB; that is not a notebook kagg can serve")


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


def _to_v4(data: dict, filename: str) -> NotebookNode:
    major = data.get("nbformat")
    if not isinstance(major, int):
        raise BadInput(f"{filename} has no valid `nbformat` version; open it in Jupyter and save it again")
    if major > 4:
        raise BadInput(f"{filename} is nbformat {major}, newer than kagg reads (4.x); "
                       "save it as nbformat 4 from Jupyter")
    if major == 4:
        nb = from_dict(data)
        nb.setdefault("metadata", NotebookNode())
        nb.setdefault("cells", [])
        return _rejoin(nb)
    import nbformat

    for ws in data.setdefault("worksheets", []) or []:
        if isinstance(ws, dict):
            ws.setdefault("cells", [])
    data.setdefault("metadata", {})
    try:
        return from_dict(nbformat.convert(nbformat.from_dict(data), 4))
    except Exception as exc:  # nbformat's converters raise bare KeyError/ValueError on odd input
        raise BadInput(f"{filename} is nbformat {major} and could not be upgraded to 4 ({exc!r}); "
                       "open it in Jupyter and save it again") from None


def _is_json_mime(mime: str) -> bool:
    return mime == "application/json" or (mime.startswith("application/") and mime.endswith("+json"))


def _rejoin_bundle(bundle: Any) -> None:
    if isinstance(bundle, dict):
        for key, value in list(bundle.items()):
            if (isinstance(key, str) and not _is_json_mime(key) and isinstance(value, list)
                    and all(isinstance(line, str) for line in value)):
                bundle[key] = "".join(value)


def _rejoin(nb: NotebookNode) -> NotebookNode:
    """Sources and outputs stored as lists of lines become strings, as ``nbformat.reads`` leaves them
    (nbformat's ``rejoin_lines``; odd parts are left as they are: cell_source() copes with lists)."""
    cells = nb.get("cells")
    for cell in cells if isinstance(cells, list) else ():
        if not isinstance(cell, dict):
            continue
        source = cell.get("source")
        if isinstance(source, list) and all(isinstance(line, str) for line in source):
            cell["source"] = "".join(source)
        attachments = cell.get("attachments")
        if isinstance(attachments, dict):
            for bundle in attachments.values():
                _rejoin_bundle(bundle)
        if cell.get("cell_type") != "code" or not isinstance(cell.get("outputs"), list):
            continue
        for output in cell["outputs"]:
            if not isinstance(output, dict):
                continue
            kind = output.get("output_type", "")
            if kind in ("execute_result", "display_data"):
                _rejoin_bundle(output.get("data"))
            elif kind and isinstance(output.get("text"), list) and all(isinstance(t, str) for t in output["text"]):
                output["text"] = "".join(output["text"])
    return nb
