"""The secrets gate: find hard-coded credentials in a notebook before it is packaged.

A deployed function's code is copied into a zip, uploaded to a cloud and often
shared; a key pasted into any cell (code, markdown, raw) or printed into an
output travels with it, and so does one in a module or a text file packaged
beside the notebook. The deploy stops on a finding unless ``--allow-secrets``.
What counts as a credential is decided by :mod:`kagg.notebook.secret_rules`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Optional

from kagg.errors import BadInput
from kagg.notebook.secret_rules import RULES, TextFinding, entropy, redact, scan_text

__all__ = [
    "Finding",
    "TextFinding",
    "SecretsFound",
    "RULES",
    "scan_text",
    "scan_notebook",
    "check_files",
    "check_notebook",
    "check_packaged",
    "packaged_files",
    "scan_file",
    "redact",
    "entropy",
]


@dataclass
class Finding:
    """One possible credential in a notebook, located for the user and never shown in full."""

    cell: int  # 1-based over all cells of the notebook
    line: int  # 1-based within the cell's source, or within the output when where == "output"
    rule: str
    description: str
    redacted: str
    where: str = "source"  # "source", "output", or the name of a module packaged beside the notebook

    def __str__(self) -> str:
        if self.where == "source":
            place = f"cell {self.cell}"
        elif self.where == "output":
            place = f"output of cell {self.cell}"
        else:
            place = self.where
        return f"{place}, line {self.line}: {self.description} ({self.rule}): {self.redacted}"


class SecretsFound(BadInput):
    """The notebook holds what look like credentials; nothing was packaged."""

    #: Findings listed in the one-line message; the rest are counted.
    SHOWN = 5

    def __init__(self, findings: list[Finding], source_name: str):
        self.findings = list(findings)
        self.source_name = source_name
        n = len(self.findings)
        listed = "; ".join(str(f) for f in self.findings[: self.SHOWN])
        if n > self.SHOWN:
            listed += f"; and {n - self.SHOWN} more"
        noun, pronoun = ("credential", "it") if n == 1 else ("credentials", "them")
        super().__init__(
            f"found {n} possible {noun} in {source_name}: {listed}; remove {pronoun} (use environment "
            f"variables or the cloud's secret store) or pass --allow-secrets")


def _text(value: Any) -> str:
    """nbformat stores multi-line strings as a string or a list of lines."""
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return "".join(str(v) for v in value)
    return str(value)


def _cells(nb: Any) -> list[Any]:
    """The cells of a v4 notebook, or of all worksheets of an old v3 one."""
    cells = nb.get("cells")
    if cells is None:
        cells = [c for ws in nb.get("worksheets") or [] for c in ws.get("cells") or []]
    return list(cells)


def _output_texts(output: Any) -> Iterable[str]:
    """Text an output shows: stream text and ``text/plain``; images, HTML and widget state are not scanned."""
    if output.get("text") is not None:  # stream (v4), and pyout/stream text in v3
        yield _text(output.get("text"))
    data = output.get("data") or {}
    if data.get("text/plain") is not None:
        yield _text(data.get("text/plain"))


def scan_notebook(nb: Any) -> list[Finding]:
    """Every possible credential in a notebook's sources (all cell types) and text outputs.

    ``nb`` is an nbformat NotebookNode or a plain dict with ``cells`` (v3
    ``worksheets`` work too). Output findings count lines within that output.
    """
    findings: list[Finding] = []
    for index, cell in enumerate(_cells(nb), start=1):
        cell_type = cell.get("cell_type", "code")
        kind = {"markdown": "markdown", "heading": "markdown", "raw": "raw"}.get(cell_type, "code")  # v3 heading
        source = _text(cell.get("source", cell.get("input")))
        for f in scan_text(source, kind):
            findings.append(Finding(index, f.line, f.rule, f.description, f.redacted))
        for output in cell.get("outputs") or []:
            for text in _output_texts(output):
                for f in scan_text(text, "output"):
                    findings.append(Finding(index, f.line, f.rule, f.description, f.redacted, "output"))
    return findings


def check_notebook(nb: Any, source_name: str) -> None:
    """Stop a deploy (raise :class:`SecretsFound`) when the notebook holds possible credentials."""
    findings = scan_notebook(nb)
    if findings:
        raise SecretsFound(findings, source_name)


#: Bytes at the start of a file read to tell text from binary data (as git and grep do).
_SNIFF = 8192


def scan_file(name: str, data: bytes) -> list[Finding]:
    """Possible credentials in one file packaged from the user's side, located by its name and line.

    A Python module is read as code; any other text (``requirements.txt``, a ``.env``, a
    config or data file) as plain text, where ``NAME=value`` and ``--password value`` count
    too. Binary files (a NUL byte in the first 8 KiB) are not scanned.
    """
    if b"\0" in data[:_SNIFF]:
        return []
    text = data.decode("utf-8-sig" if data.startswith(b"\xef\xbb\xbf") else "utf-8", errors="replace")
    kind = "code" if name.lower().endswith((".py", ".pyw", ".pyi")) else "raw"
    return [Finding(0, f.line, f.rule, f.description, f.redacted, name) for f in scan_text(text, kind)]


def check_files(files: dict[str, bytes], source_name: str) -> None:
    """Stop a deploy when a file packaged beside the notebook (``helpers.py``, ``requirements.txt``,
    a data file) holds credentials: the findings name the file and line, the value redacted."""
    findings = [f for name, data in files.items() for f in scan_file(name, data)]
    if findings:
        raise SecretsFound(findings, source_name)


def packaged_files(function: Any, folder: Optional[Path]) -> dict[str, bytes]:
    """Every file that goes into the artifact from the user's side, by the name the user knows it by.

    That is the files copied from the notebook's folder (``function.local_files``: the modules it
    imports, and any data file packaged with them) and, when the requirements come from it, the
    ``requirements.txt`` beside the notebook as the user wrote it (the artifact's copy has its
    comments stripped; its lines would not match the user's). What kagg generates from the
    notebook itself is covered by :func:`check_notebook`.
    """
    from kagg.notebook.requirements import REQUIREMENTS_FILE, requirements_file

    files = dict(getattr(function, "local_files", None) or {})
    if getattr(function, "requirements_origin", None) == "file":
        path = requirements_file(folder)
        if path is not None:
            try:
                files.setdefault(REQUIREMENTS_FILE, path.read_bytes())
            except OSError as exc:
                raise BadInput(f"cannot read {path}: {exc.strerror or exc}; check its permissions") from None
    return files


def check_packaged(function: Any, folder: Optional[Path], source_name: str) -> None:
    """Stop a deploy when any file packaged from the user's side holds possible credentials
    (see :func:`packaged_files`); runs after conversion and before anything is built."""
    check_files(packaged_files(function, folder), source_name)
