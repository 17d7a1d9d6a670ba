"""Stripe's form encoding: ``metadata[plan]=pro``, ``types[]=a``, ``locales[0]=en``.

Bracketed names become nested dicts; ``[]`` and numeric indexes become lists.  A plain
empty value is kept as ``""`` (Stripe's "unset this field").  An index is ASCII digits
only: ``metadata[²]`` names a key ``²``, as any other name would.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl

from headwater.sandbox.errors import invalid

_PART = re.compile(r"\[([^\[\]]*)\]")


def _split(name: str) -> list[str]:
    head, _, rest = name.partition("[")
    if not rest:
        return [head]
    tail = "[" + rest
    parts = _PART.findall(tail)
    if "".join(f"[{p}]" for p in parts) != tail or not head:
        raise invalid(f"Invalid parameter name: {name}", param=name)
    return [head, *parts]


def parse_form(raw: bytes | str) -> dict[str, Any]:
    """Decode a query string or form body into nested dicts and lists."""
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    result: dict[str, Any] = {}
    for name, value in parse_qsl(text, keep_blank_values=True):
        _assign(result, _split(name), value, name)
    parsed: dict[str, Any] = _listify(result)
    return parsed


def _assign(target: dict[str, Any], path: list[str], value: str, name: str) -> None:
    node = target
    for i, part in enumerate(path):
        last = i == len(path) - 1
        if part == "":  # "types[]": append
            part = f"\x00{len(node)}"
        if last:
            node[part] = value
            return
        child = node.get(part)
        if child is None or child == "":
            child = node[part] = {}
        if not isinstance(child, dict):
            raise invalid(f"Invalid parameter: {name} conflicts with a scalar value", param=name)
        node = child


def _is_index(key: str) -> bool:
    return key.startswith("\x00") or (key.isascii() and key.isdigit())


def _index_order(key: str) -> tuple[int, str]:
    # The number's order without int(), which refuses indexes of thousands of digits.
    digits = key.lstrip("\x00").lstrip("0")
    return len(digits), digits


def _listify(node: Any) -> Any:
    """Turn dicts whose keys are all indexes (or appends) into lists, in index order."""
    if not isinstance(node, dict):
        return node
    items = {k: _listify(v) for k, v in node.items()}
    if items and all(_is_index(k) for k in items):
        return [items[k] for k in sorted(items, key=_index_order)]
    return items
