"""Per-record write errors: find the rows an engine refuses so the rest of a batch lands.

Two layers, both engine-neutral:

- `stage_values` checks, in Python and column by column, what we know an engine refuses
  (integers outside 64 bits, NUL characters where the engine cannot store them, JSON that
  cannot be encoded).  Clean columns cost one pass; only a hit looks at single rows.
- `bisect` finds the rest: when an engine refuses a batch with a *data* error (a
  `Refused` value), the adapter tries halves in transactions that are rolled back, down
  to single rows.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from headwater.adapters.warehouse.contract import WriteResult
from headwater.kernel.errors import TerminalError, redact
from headwater.kernel.model import PropertyType
from headwater.kernel.records import IdentityRow

T = PropertyType
MESSAGE_LIMIT = 300
VALUE_LIMIT = 60
_INT_MIN, _INT_MAX = -(2**63), 2**63 - 1
# orjson writes NUL as \u0000; a preceding odd run of backslashes means a literal "\u0000".
_JSON_NUL = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")


class RejectedData(TerminalError):
    """The engine refused a value of the batch: a data error, not a connection error,
    so retrying the same batch cannot help (not transient, unlike `WarehouseError`).

    Within a write the adapters turn it into a `Refused` value and isolate the offending
    rows; it is raised only when that cannot help (see `write_isolating`).
    """


@dataclass
class Staged:
    """A batch's rows and their column values as staged, minus the rows refused upfront."""

    rows: list[IdentityRow]
    values: dict[str, list[Any]]  # column -> one value per row of `rows` (JSON as text)
    rejected: list[tuple[str, str]]  # (source id, message)


def show(value: Any) -> str:
    """A value for a message: repr, secrets redacted, truncated."""
    text = redact(repr(value))
    return text if len(text) <= VALUE_LIMIT else text[: VALUE_LIMIT - 1] + "…"


def message(text: str) -> str:
    """An engine's error for a message: first lines, secrets redacted, truncated."""
    text = redact(" ".join(str(text).strip().splitlines()[:3]))
    return text if len(text) <= MESSAGE_LIMIT else text[: MESSAGE_LIMIT - 1] + "…"


def stage_values(
    rows: Sequence[IdentityRow],
    columns: Mapping[str, PropertyType],
    nul_forbidden: bool,
    retyped: Mapping[str, str] | None = None,
) -> Staged:
    """Column values of `rows` ready to stage, and the rows refused with the reason
    (`retyped`: the columns whose values cannot be written, and why)."""
    values: dict[str, list[Any]] = {}
    bad: dict[int, str] = {}
    for name, ptype in columns.items():
        col = [row.values.get(name) for row in rows]
        if retyped and name in retyped:
            bad.update(
                (i, retyped[name]) for i, v in enumerate(col) if v is not None and i not in bad
            )
        if ptype is T.JSON:
            col = _json_column(col, name, bad)
        elif ptype is T.INTEGER:
            _check_ints(col, name, bad)
        if nul_forbidden and ptype in (T.STRING, T.JSON, T.ARRAY):
            _check_nul(col, name, ptype, bad)
        values[name] = col
    if not bad:
        return Staged(list(rows), values, [])
    keep = [i for i in range(len(rows)) if i not in bad]
    return Staged(
        [rows[i] for i in keep],
        {name: [col[i] for i in keep] for name, col in values.items()},
        [(rows[i].source_id, bad[i]) for i in sorted(bad)],
    )


def _json_column(col: list[Any], name: str, bad: dict[int, str]) -> list[str | None]:
    out: list[str | None] = []
    for i, value in enumerate(col):
        if value is None:
            out.append(None)
            continue
        try:
            out.append(orjson.dumps(value, default=str).decode())
        except (orjson.JSONEncodeError, TypeError) as exc:
            bad.setdefault(i, f"column {name!r}: cannot be stored as JSON ({exc})")
            out.append(None)
    return out


def _check_ints(col: list[Any], name: str, bad: dict[int, str]) -> None:
    for i, value in enumerate(col):
        if isinstance(value, int) and not _INT_MIN <= value <= _INT_MAX:
            bad.setdefault(i, f"column {name!r}: {show(value)} is out of the 64-bit integer range")


def _check_nul(col: list[Any], name: str, ptype: PropertyType, bad: dict[int, str]) -> None:
    texts: list[Any]
    if ptype is T.ARRAY:
        texts = [None if v is None else "".join(e for e in v if isinstance(e, str)) for v in col]
    else:
        texts = col  # model-typed: text or None
    needle = "\\u0000" if ptype is T.JSON else "\x00"
    try:  # the common case: one scan in C, no hit
        hit = needle in "".join(filter(None, texts))
    except TypeError:  # a value that is not text: look at the strings only
        texts = [v if isinstance(v, str) else None for v in col]
        hit = needle in "".join(filter(None, texts))
    if not hit:
        return
    for i, text in enumerate(texts):
        if not isinstance(text, str) or needle not in text:
            continue
        if ptype is T.JSON and not _JSON_NUL.search(text):
            continue
        bad.setdefault(
            i, f"column {name!r}: {show(col[i])} contains a NUL character, which cannot be stored"
        )


@dataclass(frozen=True)
class Refused:
    """A write the engine refused for a value of its rows (rolled back): why."""

    reason: str


#: One transaction writing these rows, committed or (False) rolled back.
Attempt = Callable[[list[IdentityRow], bool], WriteResult | Refused]


def bisect(rows: Sequence[IdentityRow], reason: str, attempt: Attempt) -> list[tuple[str, str]]:
    """The rows of `rows` (which failed as a whole with `reason`) that fail on their own,
    found by trying halves in transactions that are rolled back, down to single rows."""
    if len(rows) == 1:
        return [(rows[0].source_id, reason)]
    found: list[tuple[str, str]] = []
    mid = len(rows) // 2
    for part in (list(rows[:mid]), list(rows[mid:])):
        tried = attempt(part, False)
        if isinstance(tried, Refused):
            found += bisect(part, tried.reason, attempt)
    return found


def write_isolating(rows: list[IdentityRow], attempt: Attempt) -> WriteResult:
    """Write `rows` with ``attempt(rows, True)``; if the engine refuses data, leave the
    refused rows out.

    Returns the `WriteResult` of the final write with the refused rows appended to its
    ``rejected``.  Should the rows left still be refused (a failure no single row
    explains), this raises `RejectedData`: the run fails on a data error (terminal, so
    it is not retried), and nothing of the batch was written.
    """
    first = attempt(rows, True)
    if not isinstance(first, Refused):
        return first
    refused = bisect(rows, first.reason, attempt)
    ids = {source_id for source_id, _ in refused}
    result = attempt([r for r in rows if r.source_id not in ids], True)
    if isinstance(result, Refused):
        raise RejectedData(result.reason)
    result.rejected.extend(refused)
    return result
