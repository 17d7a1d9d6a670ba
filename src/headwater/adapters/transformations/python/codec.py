"""The JSON codec of the Python transformation worker: the first part of its source.

`pool` runs ``python -I -S -c`` with this file's text followed by `worker`'s, so it must
stay self-contained as `worker` does: standard library imports only, never Headwater.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from decimal import Decimal
from typing import Any

Dumps = Callable[[Any], bytes]


def load_codec(orjson_dir: str | None) -> tuple[Dumps, Callable[[bytes], Any]]:
    """orjson when the parent told us where it lives, else the json module."""
    if orjson_dir:
        sys.path.insert(0, orjson_dir)
        try:
            import orjson

            def dumps(value: Any) -> bytes:
                body = orjson.dumps(value, default=_default)
                return body if b"null" not in body else finite(value, body)

            return dumps, orjson.loads
        except ImportError:
            pass
        finally:
            sys.path.remove(orjson_dir)
            sys.path_importer_cache.pop(orjson_dir, None)
    encoder = json.JSONEncoder(default=_default, ensure_ascii=False, separators=(",", ":"))
    return (lambda value: finite(value, encoder.encode(value).encode())), json.loads


def finite(value: Any, body: bytes, at: str = "", deep: Any = (dict, list, tuple, set)) -> bytes:
    """`body`, the JSON of `value`, unless `value` holds NaN or an infinity (orjson writes
    null, json NaN: JSON has neither): then ValueError naming where (paths made lazily)."""
    many = not isinstance(value, dict)
    for key, item in enumerate(value) if many else dict.items(value):
        if isinstance(item, float) and item - item != 0:
            name = "NaN" if item != item else "Infinity" if item > 0 else "-Infinity"
            where = f"{at}[{key}]" if many else f"{at}.{key}"
            raise ValueError(f"{name} at {where[1:]!r} (JSON has no NaN or Infinity)")
        if isinstance(item, deep):
            finite(item, body, f"{at}[{key}]" if many else f"{at}.{key}")
    return body


def refused(value: Any, at: str = "") -> str | None:
    """What in `value` the encoder refused, and where: a key that is not text, an
    integer past 64 bits, a lone surrogate, a value of another type (None: not found)."""
    many = not isinstance(value, dict)
    for key, item in enumerate(value) if many else dict.items(value):
        if not many and not isinstance(key, str):
            return f"a key that is not text ({type(key).__name__}) in {at[1:] or 'the top'!r}"
        where = f"{at}[{key}]" if many else f"{at}.{key}"
        if isinstance(item, int) and not -(2**63) <= item < 2**64:
            return f"an integer past 64 bits at {where[1:]!r}"
        if isinstance(item, str) and not item.isascii() and not item.isprintable():
            try:
                item.encode()
            except UnicodeEncodeError:
                return f"a lone surrogate in the text at {where[1:]!r}"
        if isinstance(item, dict | list | tuple | set | frozenset):
            if found := refused(item, where):
                return found
        elif not isinstance(item, str | int | float | Decimal | None) and not hasattr(
            item, "isoformat"
        ):
            return f"a value of type {type(item).__name__} at {where[1:]!r}"
    return None


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not a JSON value")
