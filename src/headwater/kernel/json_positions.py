"""Where each value of a JSON text starts, by its location in the document.

Locations are written the way validation names them: ``conditions[0].conditions[2]``,
``logical``, ``address.city`` (keys joined with dots, list items as ``[i]``).  Used
to give a problem found in a parsed document (a filter file) its line and column.
"""

from __future__ import annotations

import json

_WHITESPACE = " \t\n\r"
_DECODER = json.JSONDecoder()


def value_positions(text: str) -> dict[str, tuple[int, int]]:
    """``{location: (line, column)}`` (1-based) of every value in `text`, the whole
    document at ``""``.  `text` must be valid JSON (parse it first)."""
    offsets: dict[str, int] = {}
    _walk(text, 0, "", offsets)
    return {where: _line_column(text, at) for where, at in offsets.items()}


def _skip(text: str, i: int) -> int:
    while i < len(text) and text[i] in _WHITESPACE:
        i += 1
    return i


def _walk(text: str, i: int, where: str, offsets: dict[str, int]) -> int:
    """Record where the value at `i` starts (and its members); return where it ends."""
    i = _skip(text, i)
    # Keys with dots or brackets make names ambiguous: the first value named keeps it.
    offsets.setdefault(where, i)
    if text[i] == "{":
        return _object(text, i + 1, where, offsets)
    if text[i] == "[":
        return _array(text, i + 1, where, offsets)
    _, end = _DECODER.raw_decode(text, i)
    return int(end)


def _object(text: str, i: int, where: str, offsets: dict[str, int]) -> int:
    i = _skip(text, i)
    if text[i] == "}":
        return i + 1
    while True:
        key, i = _DECODER.raw_decode(text, _skip(text, i))
        i = _skip(text, i) + 1  # the colon
        i = _skip(text, _walk(text, i, f"{where}.{key}" if where else key, offsets))
        if text[i] == "}":
            return i + 1
        i += 1  # the comma


def _array(text: str, i: int, where: str, offsets: dict[str, int]) -> int:
    i = _skip(text, i)
    if text[i] == "]":
        return i + 1
    index = 0
    while True:
        i = _skip(text, _walk(text, i, f"{where}[{index}]", offsets))
        if text[i] == "]":
            return i + 1
        i += 1
        index += 1


def _line_column(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1
