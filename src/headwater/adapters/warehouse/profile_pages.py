"""Profiles for listing (the API, the console, the CLI): a page newest first (by the
time a profile last changed, then id) after a cursor, and an optional search over every
value, both in the warehouse.

A million identities make about 730,000 profiles: reading them all into Python for each
page took 9 s and 930 MB.  A page continues from the cursor profile's place (keyset),
not from a position in a list read anew: a profile that changes between two pages
moves to the front (the next listing shows it first) instead of shifting every later
one by one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from headwater.adapters.warehouse import sql
from headwater.adapters.warehouse.ownership import Execute
from headwater.adapters.warehouse.profile_store import ProfileRecord, record_of
from headwater.adapters.warehouse.spelling import Spelling
from headwater.kernel.errors import InvalidInput
from headwater.kernel.model import PropertyType


def _matching(
    sp: Spelling, columns: Mapping[str, PropertyType], search: str | None, params: dict[str, Any]
) -> list[str]:
    """Conditions of the search: some value contains `search`, case-insensitively (the
    engine lower-cases both sides: Python's and the engines' lower-casing differ beyond
    ASCII, `ΟΔΟΣ` is `οδος` in Python and `οδοσ` in DuckDB, so the stored text was not
    found by itself)."""
    needle = (search or "").strip()
    if not needle or not columns:
        return []
    escaped = needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    params["needle"] = f"%{escaped}%"
    likes = [
        f"lower(CAST(p.{sql.quote(n)} AS {sp.text})) LIKE lower({sp.ph('needle')}) ESCAPE '\\'"
        for n in columns
    ]
    return ["(" + " OR ".join(likes) + ")"]


def page(
    execute: Execute,
    schema: str,
    sp: Spelling,
    columns: Mapping[str, PropertyType],
    search: str | None,
    after: str | tuple[Any, str] | None,
    limit: int,
) -> list[ProfileRecord]:
    """Up to `limit` profiles after the profile `after` (None: from the first), newest
    first (``_updated_at``, then the id's text, both descending), each with a value
    containing `search` if given.  `InvalidInput` at ``starting_after`` when no profile
    has the id `after` (it was merged away since the page before).  `after` may be the
    place itself, ``(updated_at, id)`` of the last row read: a listing that goes on
    page after page then neither repeats nor stops when that profile changes meanwhile
    (it moves to the front, and an id named it there: the list started over)."""
    s = sql.quote(schema)
    params: dict[str, Any] = {}
    pid = f"CAST(p._profile_id AS {sp.text}){sp.collate}"
    where = _matching(sp, columns, search, params)
    if isinstance(after, str):
        found = execute(
            f"SELECT p._updated_at FROM {s}.profiles AS p WHERE {pid} = {sp.ph('after')}",
            {"after": after},
        )
        if not found:
            raise InvalidInput(
                f"no profile with id {after!r} (merged or removed since): list again",
                "starting_after",
            )
        after = (found[0][0], after)
    if after is not None:
        where.append(
            f"(p._updated_at < {sp.ph('at')} OR (p._updated_at = {sp.ph('at')} "
            f"AND {pid} < {sp.ph('after')}))"
        )
        params.update(at=after[0], after=after[1])
    cols = "".join(", p." + sql.quote(n) for n in columns)
    rows = execute(
        f"SELECT CAST(p._profile_id AS {sp.text}), p._updated_at, p._identity_count{cols} "
        f"FROM {s}.profiles AS p"
        + (f" WHERE {' AND '.join(where)}" if where else "")
        + f" ORDER BY p._updated_at DESC, {pid} DESC LIMIT {int(limit)}",
        params,
    )
    return [record_of(r, columns) for r in rows]


def count(
    execute: Execute,
    schema: str,
    sp: Spelling,
    columns: Mapping[str, PropertyType],
    search: str | None,
) -> int:
    """How many profiles `page` would list in all."""
    params: dict[str, Any] = {}
    where = _matching(sp, columns, search, params)
    found = execute(
        f"SELECT count(*) FROM {sql.quote(schema)}.profiles AS p"
        + (f" WHERE {' AND '.join(where)}" if where else ""),
        params,
    )
    return int(found[0][0]) if found else 0
