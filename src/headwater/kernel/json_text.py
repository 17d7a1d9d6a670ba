"""Reading JSON text that users send (API bodies, definition files, console forms) as
RFC 8259 has it: numbers are finite, strings are Unicode.

Python's `json` reads two things that are not: ``NaN``/``Infinity``, and a lone
surrogate written as an escape (``"\\ud800"``: half of a character outside the Basic
Multilingual Plane).  Stored, a lone surrogate breaks every later answer that holds it
(no UTF-8 encoder takes it: a workspace's settings or its pipeline list could no longer
be shown), so both are refused where the text is read, as `json.JSONDecodeError` like
any other malformed JSON, with the position of the culprit; so is a number past a
float's range (``1e400``: an infinity once read).  Integers keep their size.
"""

from __future__ import annotations

import json
from typing import Any


def loads(text: str | bytes) -> Any:
    """`json.loads`, refusing what is not JSON (see the module docstring)."""
    if isinstance(text, bytes | bytearray):
        raw = bytes(text)
        encoding = json.detect_encoding(raw)
        try:
            text = raw.decode(encoding)
        except UnicodeDecodeError as exc:
            shown = raw.decode(encoding, "replace")
            raise json.JSONDecodeError(f"not {encoding} text", shown, exc.start) from None
    value = json.loads(
        text,
        parse_constant=lambda name: _refuse(name, text),
        parse_float=lambda token: _finite(token, text),
    )
    if "\\u" in text or "\\U" in text:  # only an escape can make a lone surrogate
        _check_strings(value, text)
    return value


def _refuse(name: str, text: str) -> Any:
    raise json.JSONDecodeError(f"{name} is not a JSON number", text, max(text.find(name), 0))


def _finite(token: str, text: str) -> float:
    """A number's value, unless it is past a float's range (``1e400``), which Python
    reads as an infinity: JSON has none, and encoders write it as null."""
    value = float(token)
    if value - value != 0:
        raise json.JSONDecodeError(
            f"{token} is past the largest number (about 1.8e308)", text, max(text.find(token), 0)
        )
    return value


def _check_strings(value: Any, text: str) -> None:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            _check_text(item, text)
        elif isinstance(item, dict):
            for key, inner in item.items():
                _check_text(key, text)
                stack.append(inner)
        elif isinstance(item, list):
            stack.extend(item)


def _check_text(item: str, text: str) -> None:
    try:
        item.encode("utf-8")
    except UnicodeEncodeError as exc:
        escape = f"\\u{ord(item[exc.start]):04x}"
        at = max(text.lower().find(escape), 0)
        raise json.JSONDecodeError(
            f"{escape} is a lone surrogate (half of a character), not Unicode text", text, at
        ) from None
