"""Is a loaded notebook valid nbformat v4? A cheap structural check first, nbformat's validator
only when that check cannot vouch for it: importing nbformat (and jsonschema) costs more than
the whole conversion of a large notebook, and almost every notebook passes the cheap check.
"""

from __future__ import annotations

import re
from typing import Any, Optional


def schema_problem(nb: Any) -> Optional[str]:
    """The first schema violation as a short string, or None. Never raises.

    Outputs are left out of the check: kagg never reads them, and images in
    them make validation of a large notebook slow. A notebook that
    :func:`schema_valid` vouches for is not given to nbformat's validator.
    """
    if schema_valid(nb):
        return None
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


# -- the cheap schema check ------------------------------------------------------------------------
#
# True only for a notebook that nbformat's v4 schema (4.0 to 4.5, outputs left out as above)
# accepts: it may say False for a valid one (then nbformat decides), never True for an invalid
# one. Each test below is the schema's rule or a stricter one.

_CELL_ID = re.compile(r"[a-zA-Z0-9_-]{1,64}")
_BASE_CELL_KEYS = {"raw": frozenset({"cell_type", "metadata", "source", "attachments"}),
                   "markdown": frozenset({"cell_type", "metadata", "source", "attachments"}),
                   "code": frozenset({"cell_type", "metadata", "source", "outputs", "execution_count"})}
_WITH_ID_KEYS = {kind: keys | {"id"} for kind, keys in _BASE_CELL_KEYS.items()}
_NB_KEYS = frozenset({"metadata", "nbformat_minor", "nbformat", "cells"})


def _is_int(value: Any) -> bool:
    return type(value) is int


def _multiline(value: Any) -> bool:
    return type(value) is str or (type(value) is list and all(type(v) is str for v in value))


def _optional_str(meta: dict, key: str) -> bool:
    return key not in meta or type(meta[key]) is str


def _nb_metadata_ok(meta: Any) -> bool:
    if not isinstance(meta, dict):
        return False
    if "kernelspec" in meta:
        spec = meta["kernelspec"]
        if not (isinstance(spec, dict) and type(spec.get("name")) is str and type(spec.get("display_name")) is str):
            return False
    if "language_info" in meta:
        info = meta["language_info"]
        if not (isinstance(info, dict) and type(info.get("name")) is str
                and all(_optional_str(info, k) for k in ("file_extension", "mimetype", "pygments_lexer"))):
            return False
        mode = info.get("codemirror_mode", "")
        if not (type(mode) is str or isinstance(mode, dict)):
            return False
    if "orig_nbformat" in meta and not (_is_int(meta["orig_nbformat"]) and meta["orig_nbformat"] >= 1):
        return False
    return _optional_str(meta, "title") and ("authors" not in meta or type(meta["authors"]) is list)


def _cell_metadata_ok(meta: Any, kind: str) -> bool:
    if not isinstance(meta, dict):
        return False
    if "name" in meta:
        name = meta["name"]
        if not (type(name) is str and name and "\n" not in name and "\r" not in name):
            return False
    if "tags" in meta:
        tags = meta["tags"]
        if not (type(tags) is list and all(type(t) is str and t and "," not in t for t in tags)
                and len(set(tags)) == len(tags)):
            return False
    if "jupyter" in meta and not isinstance(meta["jupyter"], dict):
        return False
    if kind == "raw":
        return _optional_str(meta, "format")
    if kind == "code":
        if "execution" in meta:
            execution = meta["execution"]
            if not (isinstance(execution, dict) and all(type(v) is str for v in execution.values())):
                return False
        if "collapsed" in meta and type(meta["collapsed"]) is not bool:
            return False
        if "scrolled" in meta and not (type(meta["scrolled"]) is bool or meta["scrolled"] == "auto"):
            return False
    return True


def _bundle_ok(bundle: Any) -> bool:
    return isinstance(bundle, dict) and all(
        _multiline(value) or (isinstance(key, str) and re.match(r"^application/(.*\+)?json$", key))
        for key, value in bundle.items())


def _cell_ok(cell: Any, with_ids: bool) -> bool:
    if not isinstance(cell, dict):
        return False
    kind = cell.get("cell_type")
    allowed = (_WITH_ID_KEYS if with_ids else _BASE_CELL_KEYS).get(kind) if type(kind) is str else None
    if allowed is None or not allowed.issuperset(cell):
        return False
    if "metadata" not in cell or "source" not in cell or not _multiline(cell["source"]):
        return False
    if with_ids and "id" in cell and not (type(cell["id"]) is str and _CELL_ID.fullmatch(cell["id"])):
        return False  # a missing id is fine: nbformat's validate() adds one before it checks
    if kind == "code":
        count = cell.get("execution_count", -1)  # outputs are not checked (see _schema_problem)
        if not (count is None or (_is_int(count) and count >= 0)):
            return False
    elif "attachments" in cell:
        attachments = cell["attachments"]
        if not (isinstance(attachments, dict) and all(_bundle_ok(b) for b in attachments.values())):
            return False
    return _cell_metadata_ok(cell["metadata"], kind)


def schema_valid(nb: Any) -> bool:
    """Whether nbformat's v4 schema surely accepts ``nb`` (outputs aside); False means "ask nbformat"."""
    if not isinstance(nb, dict) or not _NB_KEYS.issuperset(nb) or not _NB_KEYS.issubset(nb):
        return False
    minor = nb["nbformat_minor"]
    if nb["nbformat"] != 4 or not _is_int(nb["nbformat"]) or not _is_int(minor) or not 0 <= minor <= 5:
        return False
    cells = nb["cells"]
    if type(cells) is not list or not _nb_metadata_ok(nb["metadata"]):
        return False
    with_ids = minor >= 5
    return all(_cell_ok(cell, with_ids) for cell in cells)
