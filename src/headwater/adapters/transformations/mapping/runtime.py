"""Run-time helpers shared by the compiled expression closures."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime
from typing import Any

from headwater.kernel.values import float_text, show_value


class EvalError(ValueError):
    """Evaluating an expression failed for one record (a per-record error)."""


#: A value for a message, as the Customer Model's errors show it (what does not print
#: escaped).
show = show_value


def text(v: Any, fn: str) -> str:
    if type(v) is str:
        return v
    raise EvalError(f"{fn}() expects a string, got {show(v)}")


def integer(v: Any, fn: str) -> int:
    if type(v) is int:
        return v
    if type(v) is float and v.is_integer():
        return int(v)
    raise EvalError(f"{fn}() expects an integer, got {show(v)}")


def number(v: Any, fn: str) -> int | float:
    if type(v) in (int, float):
        return v  # type: ignore[no-any-return]
    raise EvalError(f"{fn}() expects a number, got {show(v)}")


def boolean(v: Any, fn: str) -> bool | None:
    if v is None or type(v) is bool:
        return v
    raise EvalError(f"{fn} expects a boolean, got {show(v)}")


def to_text(v: Any) -> str:
    """How `concat` and `to_string` render a scalar."""
    if type(v) is str:
        return v
    if type(v) is bool:
        return "true" if v else "false"
    if type(v) is int:
        return str(v)
    if type(v) is float:
        if not math.isfinite(v):
            raise EvalError(f"cannot turn {v} into text")
        return float_text(v)
    if isinstance(v, datetime | date):
        return v.isoformat()
    raise EvalError(f"expected a text, number, boolean or date, got {show(v)}")


def parse_date(v: str) -> date:
    raw = v.strip()
    try:
        if len(raw) == 10:
            return date.fromisoformat(raw)
        iso = raw[:-1] + "+00:00" if raw.endswith(("Z", "z")) else raw
        moment = datetime.fromisoformat(iso)
        return moment.astimezone(UTC).date() if moment.tzinfo else moment.date()
    except ValueError:
        raise EvalError(f"to_date() expects an ISO 8601 date, got {show(v)}") from None
    except OverflowError:  # in UTC, past the calendar's first or last day
        raise EvalError(f"to_date() got a date out of range: {show(v)}") from None


def substring(s: Any, start: Any, length: Any = None) -> str:
    """PostgreSQL ``substring(s from start for length)``: 1-based; start may be < 1."""
    body = text(s, "substring")
    begin = integer(start, "substring")
    if length is None:
        return body[max(begin - 1, 0) :]
    count = integer(length, "substring")
    if count < 0:
        raise EvalError(f"substring() length must not be negative, got {count}")
    end = begin - 1 + count
    return body[max(begin - 1, 0) : max(end, 0)]


#: Longest text an expression may make (a record's result is capped at 1 MiB of JSON
#: anyway): nested replace() grows its input geometrically, ten levels past memory.
MAX_TEXT = 1_000_000


def replace(s: Any, old: Any, new: Any) -> str:
    body, a, b = text(s, "replace"), text(old, "replace"), text(new, "replace")
    if a == "":
        return body
    size = len(body) + body.count(a) * (len(b) - len(a))
    if size > MAX_TEXT:
        raise EvalError(f"replace() would make a text of {size:,} characters (limit {MAX_TEXT:,})")
    return body.replace(a, b)


def sized(made: str, fn: str) -> str:
    """`made`, or an error when it is past `MAX_TEXT`."""
    if len(made) > MAX_TEXT:
        raise EvalError(f"{fn}() made a text of {len(made):,} characters (limit {MAX_TEXT:,})")
    return made


def _fields(s: Any, delim: Any, n: Any, fn: str) -> tuple[list[str], int]:
    body, sep, pos = text(s, fn), text(delim, fn), integer(n, fn)
    if pos == 0:
        raise EvalError(f"{fn}() field position must not be zero")
    parts = body.split(sep) if sep else [body]
    return parts, pos


def split_part(s: Any, delim: Any, n: Any) -> str:
    """PostgreSQL ``split_part``: field `n` (1-based; negative counts from the end), or ''."""
    parts, pos = _fields(s, delim, n, "split_part")
    index = pos - 1 if pos > 0 else len(parts) + pos
    return parts[index] if 0 <= index < len(parts) else ""


def split_rest(s: Any, delim: Any, n: Any) -> str:
    """Fields `n` to the end, joined by `delim` (``split_rest("Ada M Lovelace", " ", 2)``
    is ``"M Lovelace"``); '' when there are fewer fields."""
    parts, pos = _fields(s, delim, n, "split_rest")
    index = pos - 1 if pos > 0 else len(parts) + pos
    return str(delim).join(parts[index:]) if 0 <= index < len(parts) else ""


def _comparable(v: Any) -> tuple[int, Any]:
    kind = type(v)
    if kind is bool:
        return 0, v
    if kind in (int, float):
        return 1, v
    if kind is str:
        return 2, v
    if kind is datetime:
        return 3, v if v.tzinfo else v.replace(tzinfo=UTC)
    if kind is date:
        return 3, datetime(v.year, v.month, v.day, tzinfo=UTC)
    return 4, v


def compare(op: str, x: Any, y: Any) -> bool:
    """Comparison with types checked: ``==``/``!=`` of different types are unequal;
    ordering different types is an error.  Dates compare as midnight UTC."""
    (kx, vx), (ky, vy) = _comparable(x), _comparable(y)
    if op == "==":
        return kx == ky and vx == vy
    if op == "!=":
        return not (kx == ky and vx == vy)
    if kx != ky or kx in (0, 4):
        raise EvalError(f"cannot order {show(x)} and {show(y)} with {op}")
    if op == "<":
        return bool(vx < vy)
    if op == "<=":
        return bool(vx <= vy)
    if op == ">":
        return bool(vx > vy)
    return bool(vx >= vy)
