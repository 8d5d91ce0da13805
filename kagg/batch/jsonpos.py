"""Where things start in a JSON text, so that problems in a JSON list can name their line.

The standard json module gives no positions for parsed values; these walk
the text with ``JSONDecoder.raw_decode`` once it is known to parse.
"""

from __future__ import annotations

import json


def line_of(text: str, pos: int) -> int:
    return text.count("\n", 0, pos) + 1


def skip_ws(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\r\n":
        pos += 1
    return pos


def array_element_lines(text: str, pos: int) -> list[int]:
    """Start line of each element of the JSON array at ``pos`` (the text is known to parse)."""
    decoder = json.JSONDecoder()
    lines: list[int] = []
    pos = skip_ws(text, pos + 1)
    while pos < len(text) and text[pos] != "]":
        lines.append(line_of(text, pos))
        _, pos = decoder.raw_decode(text, pos)
        pos = skip_ws(text, pos)
        if pos < len(text) and text[pos] == ",":
            pos = skip_ws(text, pos + 1)
    return lines


def key_positions(text: str, pos: int) -> dict[str, int]:
    """Where each top-level value of the JSON object at ``pos`` starts."""
    decoder = json.JSONDecoder()
    out: dict[str, int] = {}
    pos = skip_ws(text, pos + 1)
    while pos < len(text) and text[pos] != "}":
        key, pos = decoder.raw_decode(text, pos)
        pos = skip_ws(text, skip_ws(text, pos) + 1)  # past ':'
        out[key] = pos
        _, pos = decoder.raw_decode(text, pos)
        pos = skip_ws(text, pos)
        if pos < len(text) and text[pos] == ",":
            pos = skip_ws(text, pos + 1)
    return out
