"""List pagination over an ascending list of integer sort keys, newest first.

A sort key is ``created << 32 | sequence``: ascending keys are oldest first, and the
sequence breaks ties between objects created in the same second.  Every page is found
by bisection, so its cost is O(log n + limit) whatever the size of the store.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from headwater.sandbox.errors import invalid

SEQ_BITS = 32
#: The latest ``created`` a sort key can hold (keys are signed 64-bit integers): the
#: sandbox clock never goes past it (2038-01-19T03:14:07Z).
LATEST_CREATED = 2 ** (63 - SEQ_BITS) - 1


def make_key(created: int, seq: int) -> int:
    return (created << SEQ_BITS) | seq


def created_of(key: int) -> int:
    return key >> SEQ_BITS


@dataclass(frozen=True)
class CreatedRange:
    """Half-open key range ``[low, high)`` from Stripe's ``created`` filter."""

    low: int | None = None
    high: int | None = None

    @classmethod
    def parse(cls, value: Any) -> CreatedRange:
        if value is None:
            return cls()
        if isinstance(value, str):
            c = parse_int(value, "created")
            return cls(make_key(c, 0), make_key(c + 1, 0))
        if not isinstance(value, dict):
            raise invalid("Invalid created: must be an integer or a hash", param="created")
        low: int | None = None
        high: int | None = None
        for op, raw in value.items():
            c = parse_int(raw, f"created[{op}]")
            if op in ("gt", "gte"):
                bound = make_key(c + 1 if op == "gt" else c, 0)
                low = bound if low is None else max(low, bound)
            elif op in ("lt", "lte"):
                bound = make_key(c if op == "lt" else c + 1, 0)
                high = bound if high is None else min(high, bound)
            else:
                raise invalid(f"Received unknown parameter: created[{op}]", f"created[{op}]")
        return cls(low, high)


_INTEGER = re.compile(r"-?[0-9]+")
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1


def parse_int(raw: Any, param: str) -> int:
    """A form or query integer; Stripe's integers are 64-bit, so larger ones are a 400."""
    shown = str(raw) if len(str(raw)) <= 40 else str(raw)[:40] + "..."
    if not isinstance(raw, str) or not _INTEGER.fullmatch(raw):
        raise invalid(f"Invalid integer: {shown}", param=param)
    # Count digits before converting: int() refuses strings past 4,300 digits.
    value = int(raw) if len(raw.lstrip("-").lstrip("0")) <= 19 else None
    if value is None or not INT64_MIN <= value <= INT64_MAX:
        message = f"Invalid integer: {shown} (must be between {INT64_MIN} and {INT64_MAX})"
        raise invalid(message, param=param)
    return value


def parse_limit(raw: Any) -> int:
    if raw is None:
        return 10
    limit = parse_int(raw, "limit")
    if limit < 1:
        raise invalid("This value must be greater than or equal to 1.", param="limit")
    if limit > 100:
        raise invalid("This value must be less than or equal to 100.", param="limit")
    return limit


def window(
    keys: Sequence[int],
    span: CreatedRange,
    limit: int,
    after: int | None = None,
    before: int | None = None,
) -> tuple[int, int, bool]:
    """Return ``(start, end, has_more)``: the page is ``keys[start:end]`` reversed.

    ``after`` is the key of a ``starting_after`` cursor (the page holds older objects),
    ``before`` the key of an ``ending_before`` cursor (newer objects, nearest first in
    position, still listed newest first).  Cursor keys need not be present in ``keys``.
    """
    lo = 0 if span.low is None else bisect_left(keys, span.low)
    hi = len(keys) if span.high is None else bisect_left(keys, span.high)
    if before is not None:
        start = max(lo, bisect_right(keys, before))
        end = min(hi, start + limit)
        return start, max(start, end), end < hi
    if after is not None:
        hi = min(hi, bisect_left(keys, after))
    start = max(lo, hi - limit)
    return start, max(start, hi), start > lo
