"""The secrets gate: find hard-coded credentials in a notebook before it is packaged.

A deployed function's code is copied into a zip, uploaded to a cloud and often
shared; a key pasted into any cell (code, markdown, raw) or printed into an
output travels with it, and so does one in a module or a text file packaged
beside the notebook. The deploy stops on a finding unless ``--allow-secrets``.
What counts as a credential is decided by :mod:`kagg.notebook.secret_rules`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

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


def check_files(files: dict[str, bytes], source_name: str) -> None:
    """Stop a deploy when a module packaged beside the notebook (``helpers.py``) holds credentials."""
    findings = [Finding(0, f.line, f.rule, f.description, f.redacted, name)
                for name, data in files.items()
                for f in scan_text(data.decode("utf-8", errors="replace"), "code")]
    if findings:
        raise SecretsFound(findings, source_name)
