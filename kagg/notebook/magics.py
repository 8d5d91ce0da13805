"""Turning a code cell's IPython-only syntax into plain Python.

The generated code must run without IPython, so magics and shell escapes are
rewritten here, line by line, following IPython's own rules for where they may
appear (the start of a logical line, outside strings and brackets). Every
rewritten cell keeps its number of lines, so a SyntaxError's line number is
the line the user sees in Jupyter.

- ``%pip install`` / ``!pip install`` (and conda) become requirements;
- session settings (``%matplotlib``, ``%load_ext``, ``%config`` ...) vanish silently;
- ``%%time`` / ``%%capture`` keep their body, ``%time stmt`` keeps ``stmt``;
- everything else (other magics, ``!shell``, ``obj?``, ``%%bash`` cells) is
  dropped with a :class:`~kagg.model.Note` naming the cell and line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Optional

from kagg.model import Note

#: Line magics that only configure the interactive session: dropped without a note.
SILENT_LINE_MAGICS = frozenset({
    "matplotlib", "load_ext", "reload_ext", "unload_ext", "config",
    "autoreload", "aimport", "xmode", "autosave", "precision",
})
#: Cell magics whose body is ordinary Python that must still run.
BODY_CELL_MAGICS = frozenset({"time", "capture"})

_NOTE_WIDTH = 80
_ASSIGN = re.compile(
    r"^(?P<lhs>[A-Za-z_][\w.]*(?:\[[^\]=]*\])*(?:\s*,\s*[A-Za-z_][\w.]*(?:\[[^\]=]*\])*)*)"
    r"\s*=\s*(?P<esc>!|%)(?P<rest>.*)$")
_INSTALL = re.compile(
    r"^(?:sudo\s+)?(?:(?:\S*python[\d.]*|\{sys\.executable\}|\$\{?sys\.executable\}?)\s+-m\s+)?"
    r"(?:\S*/)?(?P<tool>pip[\d.]*|conda|mamba|micromamba|uv\s+pip)\s+(?P<sub>\S+)(?P<args>.*)$")
_SHELL_OPERATORS = frozenset({"&&", "||", ";", "|", "&", ">", ">>", "<", "2>", "2>&1", "&>"})
_PIP_VALUE_OPTIONS = frozenset({
    "-c", "--constraint", "-t", "--target", "-i", "--index-url", "--extra-index-url",
    "-f", "--find-links", "--prefix", "--root", "--src", "--upgrade-strategy", "--platform",
    "--python-version", "--implementation", "--abi", "--only-binary", "--no-binary",
    "--progress-bar", "--log", "--proxy", "--retries", "--timeout", "--cache-dir",
    "--trusted-host", "--cert", "--client-cert", "--exists-action", "--global-option",
    "--install-option", "-C", "--config-settings", "--report", "--python", "--root-user-action",
    # conda / mamba
    "--channel", "-n", "--name", "-p",
})
_REQUIREMENT_FILE_OPTIONS = frozenset({"-r", "--requirement", "--file"})
_EDITABLE_OPTIONS = frozenset({"-e", "--editable"})
_INDEX_OPTIONS = frozenset({"-i", "--index-url", "--extra-index-url", "-f", "--find-links"})


@dataclass
class CellCode:
    """One code cell after rewriting: Python source with the cell's line count."""

    code: str
    requirements: list[str] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)
    dropped: Optional[str] = None  # set to e.g. "%%bash" when the whole cell was a dropped cell magic


def transform_cell(source: str, cell: int) -> CellCode:
    """Rewrite one code cell; ``cell`` is its 1-based number among all cells (for notes)."""
    lines = _cleanup(source.replace("\r\n", "\n").replace("\r", "\n").split("\n"))
    result = CellCode(code="")
    first = next((i for i, ln in enumerate(lines) if ln.strip()), None)
    if first is not None and lines[first].startswith("%%"):
        out = _cell_magic(lines, first, cell, result)
    else:
        out = _Rewriter(cell, 0, result).run(lines)
    result.code = "\n".join(out)
    return result


#: (first line, every line) patterns of pasted prompts IPython strips: ``>>>``/``...`` and ``In [1]:``
_PROMPTS = ((re.compile(r"^>>>( |$)"), re.compile(r"^(>>>|\.\.\.)( |$)")),
            (re.compile(r"^In \[\d+\]: "), re.compile(r"^(In \[\d+\]: |\s*\.{3,}: ?)")))


def _cleanup(lines: list[str]) -> list[str]:
    """IPython's clean-up before parsing: drop the first line's indent and pasted prompts."""
    first = next((i for i, ln in enumerate(lines) if ln.strip()), None)
    if first is None:
        return lines
    indent = lines[first][: len(lines[first]) - len(lines[first].lstrip(" \t"))]
    if indent:
        lines = [ln[len(indent):] if ln.startswith(indent) else ln for ln in lines]
    for initial, prompt in _PROMPTS:
        following = lines[first + 1] if first + 1 < len(lines) else ""
        if initial.match(lines[first]) or prompt.match(following):
            lines = lines[:first] + [prompt.sub("", ln, count=1) for ln in lines[first:]]
    return lines


def _cell_magic(lines: list[str], first: int, cell: int, result: CellCode) -> list[str]:
    header = lines[first].strip()[2:]
    name, args = (header.split(None, 1) + ["", ""])[:2] if header.strip() else ("", "")
    args = args.strip()
    line_no = first + 1
    if name in BODY_CELL_MAGICS:
        if name == "capture":
            var = next((a for a in args.split() if not a.startswith("-")), None)
            if var:
                result.notes.append(Note(f"kept the body of `%%capture {args}`; `{var}` is not defined "
                                         "when the function runs", cell, line_no))
        body = _Rewriter(cell, first + 1, result).run(lines[first + 1:])
        return lines[:first] + [f"# %%{header}  (kagg kept the cell's body)"] + body
    message = f"dropped the `%%{_short(header)}` cell (cell magics only run in Jupyter)"
    if name == "writefile":
        message = f"dropped the `%%{_short(header)}` cell: {args or 'the file'} is not written when the function runs"
    result.notes.append(Note(message, cell, line_no))
    result.dropped = f"%%{name}"
    return [f"# kagg dropped this %%{name} cell"]


class _Rewriter:
    """Walks a cell's lines, tracking strings and brackets, rewriting escaped lines in place."""

    def __init__(self, cell: int, offset: int, result: CellCode):
        self.cell, self.offset, self.result = cell, offset, result

    def run(self, lines: list[str]) -> list[str]:
        if not any("?" in line or _is_escaped(line) for line in lines):
            return list(lines)  # plain Python (most cells): nothing below would change a line
        out: list[str] = []
        depth, quote, continued = 0, None, False
        i = 0
        while i < len(lines):
            line = lines[i]
            at_start = depth == 0 and quote is None and not continued
            if at_start and _is_escaped(line):
                end = i
                while lines[end].rstrip().endswith("\\") and end + 1 < len(lines):
                    end += 1
                text = _join_continued(lines[i:end + 1])
                indent = line[: len(line) - len(line.lstrip())]
                out.append(self._rewrite(indent, text, i + 1))
                out.extend("" for _ in range(end - i))
                i = end + 1
                continue
            depth, quote, continued, last = _scan(line, depth, quote)
            if at_start and last == "?" and depth == 0 and quote is None and not continued:
                indent = line[: len(line) - len(line.lstrip())]
                out.append(self._drop(indent, line.strip(), f"dropped help request `{_short(line.strip())}`", i + 1))
            else:
                out.append(line)
            i += 1
        return out

    def _rewrite(self, indent: str, text: str, line_no: int) -> str:
        """The replacement for one escaped logical line (``text`` has no indent)."""
        assign = _ASSIGN.match(text)
        lhs = None
        if assign and not text.startswith(("!", "%", "?")):
            lhs, text = assign.group("lhs").strip(), assign.group("esc") + assign.group("rest")
        unbound = f"; `{lhs}` is not defined when the function runs" if lhs else ""
        shown = f"{lhs} = {text}" if lhs else text
        if text.startswith("?"):
            return self._drop(indent, shown, f"dropped help request `{_short(shown)}`", line_no)
        if text.startswith("%%"):
            return self._drop(indent, shown, f"dropped `{_short(shown)}`: a cell magic only works on a "
                              "cell's first line", line_no)
        if text.startswith("!"):
            command = text.lstrip("!").strip()
            if not lhs and self._install(command, shown, line_no):
                return self._comment(indent, shown, "requirement")
            return self._drop(indent, shown, f"dropped shell command `{_short(shown)}`{unbound}", line_no)
        name, args = (text[1:].split(None, 1) + ["", ""])[:2] if text[1:].strip() else ("", "")
        args = args.strip()
        if name == "time" and args:
            return indent + (f"{lhs} = {args}" if lhs else args)
        if name in SILENT_LINE_MAGICS and not lhs:
            return self._comment(indent, shown, "session setting")
        if name in ("pip", "conda", "mamba") and not lhs and self._install(f"{name} {args}", shown, line_no):
            return self._comment(indent, shown, "requirement")
        return self._drop(indent, shown, f"dropped line magic `{_short(shown)}`{unbound}", line_no)

    def _install(self, command: str, shown: str, line_no: int) -> bool:
        """Record the packages of an install command; False if it is not ``pip/conda install``."""
        match = _INSTALL.match(command)
        if not match:
            return False
        tool, sub = match.group("tool"), match.group("sub")
        if sub != "install":
            return False
        specs, problems = parse_install_args(match.group("args"), conda=tool in ("conda", "mamba", "micromamba"))
        self.result.requirements.extend(specs)
        for problem in problems:
            self.result.notes.append(Note(f"{problem} (in `{_short(shown)}`)", self.cell, self.offset + line_no))
        return True

    def _drop(self, indent: str, shown: str, message: str, line_no: int) -> str:
        self.result.notes.append(Note(message, self.cell, self.offset + line_no))
        return self._comment(indent, shown, "dropped")

    @staticmethod
    def _comment(indent: str, shown: str, why: str) -> str:
        # ``pass`` keeps an indented block valid when the escaped line was its only statement.
        return f"{indent}{'pass  ' if indent else ''}# kagg {why}: {shown}"


def parse_install_args(args: str, conda: bool = False) -> tuple[list[str], list[str]]:
    """Package specs from ``pip install`` arguments, and messages for what could not be used."""
    import shlex

    problems: list[str] = []
    try:
        tokens = shlex.split(args, comments=True, posix=True)
    except ValueError:
        return [], ["could not read the packages; add them to requirements.txt"]
    specs: list[str] = []
    skip_next = False
    for pos, token in enumerate(tokens):
        if skip_next:
            skip_next = False
            continue
        if token in _SHELL_OPERATORS:
            rest = " ".join(tokens[pos:])
            problems.append(f"dropped the rest of the shell line `{_short(rest)}`")
            break
        option = token.split("=", 1)[0]
        if option in _REQUIREMENT_FILE_OPTIONS:
            target, skip_next = _option_value(token, tokens, pos)
            problems.append(f"`{option} {target}` is not read; list its packages in requirements.txt "
                            "beside the notebook")
            continue
        if option in _EDITABLE_OPTIONS:
            target, skip_next = _option_value(token, tokens, pos)
            problems.append(f"editable install `{target}` is not a requirement kagg can ship; "
                            "add the package to requirements.txt")
            continue
        if option in _INDEX_OPTIONS:
            value, skip_next = _option_value(token, tokens, pos)
            problems.append(f"`{option} {value}` is not kept; if the packages need it, write requirements.txt "
                            "beside the notebook with that line")
            continue
        if token.startswith("-"):
            skip_next = option in _PIP_VALUE_OPTIONS and "=" not in token
            if conda and option == "-c":
                skip_next = True
            continue
        spec = _usable_spec(token, conda, problems)
        if spec and spec not in specs:
            specs.append(spec)
    return specs, problems


def _option_value(token: str, tokens: list[str], pos: int) -> tuple[str, bool]:
    """The value of ``--opt=value`` or ``--opt value``, and whether the next token was that value."""
    if "=" in token:
        return token.split("=", 1)[1], False
    return (tokens[pos + 1] if pos + 1 < len(tokens) else ""), True


def _usable_spec(token: str, conda: bool, problems: list[str]) -> Optional[str]:
    if any(ch in token for ch in "${}`"):
        problems.append(f"could not resolve the package `{token}`; add it to requirements.txt")
        return None
    if re.match(r"^(git\+|hg\+|svn\+|bzr\+|https?://)", token):
        return token
    if token.startswith((".", "/", "~")) or re.search(r"\.(whl|tar\.gz|zip|tgz)$", token):
        problems.append(f"local package `{token}` is not a requirement kagg can ship; "
                        "add the package from PyPI to requirements.txt")
        return None
    if conda:
        token = token.split("::", 1)[-1]
        match = re.match(r"^([A-Za-z0-9][\w.\-]*)=([^=<>!~].*)$", token)
        if match:
            version = match.group(2)
            token = f"{match.group(1)}=={version}" if "*" in version else f"{match.group(1)}=={version}.*"
    if not re.match(r"^[A-Za-z0-9][A-Za-z0-9._\-]*(\[[^\]]*\])?\s*([<>=!~;@].*)?$", token):
        problems.append(f"`{token}` is not a package name; add the package to requirements.txt")
        return None
    return token


def _is_escaped(line: str) -> bool:
    stripped = line.lstrip()
    if stripped.startswith(("!", "%", "?")):
        return True
    return ("!" in stripped or "%" in stripped) and bool(_ASSIGN.match(stripped))  # x = !cmd, x = %magic


def _join_continued(lines: list[str]) -> str:
    """IPython's join of backslash-continued magic lines: pieces joined by one space."""
    parts = [ln.strip() for ln in lines]
    return " ".join([p[:-1].rstrip() if p.endswith("\\") else p for p in parts[:-1]] + [parts[-1]]).strip()


def _scan(line: str, depth: int, quote: Optional[str]) -> tuple[int, Optional[str], bool, str]:
    """Python's lexical state after ``line``: (bracket depth, open quote, backslash-continued, last code char)."""
    i, n, last, comment = 0, len(line), "", False
    while i < n:
        ch = line[i]
        if quote:
            if ch == "\\":
                i += 2
                continue
            if line.startswith(quote, i):
                i += len(quote)
                quote, last = None, ch
                continue
            i += 1
            continue
        if ch == "#":
            comment = True
            break
        if ch in "\"'":
            quote = ch * 3 if line.startswith(ch * 3, i) else ch
            i += len(quote)
            last = ch
            continue
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth = max(0, depth - 1)
        if not ch.isspace():
            last = ch
        i += 1
    continued = False
    if quote and len(quote) == 1:
        if line.endswith("\\"):
            continued = True
        else:
            quote = None  # an unterminated one-line string: Python reports it; keep scanning sanely
    elif not quote and not comment and line.endswith("\\"):
        continued = True
    return depth, quote, continued, last


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _NOTE_WIDTH else text[: _NOTE_WIDTH - 1] + "…"
