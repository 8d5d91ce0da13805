"""From a line of the generated module back to the notebook: "cell 3, line 2".

Conversion writes each kept cell under a marker (``# --- cell N ---``) in
``kagg_notebook.py`` / ``kagg_request.py``, line for line. A traceback from notebook code
names those files; users think in cells. Everything that shows such an error — a failed
deploy, ``kagg serve``, ``kagg logs`` — translates it with these functions.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterable, Optional

#: the files conversion generates from the notebook's cells
GENERATED_FILES = ("kagg_notebook.py", "kagg_request.py")
_MARKER = re.compile(r"^# --- cell (\d+)\b")
_FRAME = re.compile(r'File "(?P<path>[^"]*(?:kagg_notebook|kagg_request)\.py)", line (?P<line>\d+)')


def cell_location(source: str, lineno: int) -> Optional[tuple[int, int]]:
    """(cell number, line in that cell) of line ``lineno`` (1-based) of a generated module;
    None for kagg's own header lines."""
    lines = source.splitlines()
    if not 1 <= lineno <= len(lines):
        return None
    for i in range(lineno - 1, -1, -1):
        match = _MARKER.match(lines[i])
        if match:
            return (int(match.group(1)), lineno - 1 - i) if i < lineno - 1 else None
    return None


class LineMap:
    """The generated files of one app folder, read once, for translating many lines."""

    def __init__(self, app_dir: Optional[Path]):
        self._sources: dict[str, str] = {}
        for name in GENERATED_FILES if app_dir else ():
            try:
                self._sources[name] = (Path(app_dir) / name).read_text(encoding="utf-8")
            except OSError:
                continue

    def where(self, path: str, lineno: int) -> Optional[str]:
        source = self._sources.get(Path(path).name)
        found = cell_location(source, lineno) if source is not None else None
        return f"cell {found[0]}, line {found[1]}" if found else None

    def annotate(self, line: str) -> str:
        """A traceback line with the notebook's cell and line added where it names generated code."""
        match = _FRAME.search(line)
        if not match:
            return line
        where = self.where(match.group("path"), int(match.group("line")))
        if where is None:
            return line
        end = line.rstrip("\n")
        return f"{end}  [notebook {where}]" + line[len(end):]

    def summary(self, log_lines: Iterable[str]) -> Optional[str]:
        """"cell 3, line 2: NameError: name 'x' is not defined" for the last traceback in the lines."""
        last_frame: Optional[str] = None
        error: Optional[str] = None
        for line in log_lines:
            match = _FRAME.search(line)
            if match:
                last_frame = self.where(match.group("path"), int(match.group("line")))
                error = None
            elif last_frame and not line.startswith((" ", "\t")) and ":" in line and error is None:
                head = line.split(":", 1)[0].strip()
                if head and head.replace(".", "").replace("_", "").isalnum():
                    error = line.strip()
        if last_frame and error:
            return f"{last_frame}: {error}"
        return None
