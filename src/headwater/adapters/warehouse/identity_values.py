"""A full rebuild's profile values, set-based (``hw_new``; see `identity_profiles`).

Per column, the non-null value of the identity with the latest ``_source_updated_at``,
ties by pipeline order then identity key.  Ordered aggregates (one sort per column
and profile) cost far more than the rest of a rebuild, so:

- a profile of one identity takes its row as is;
- the members of the others are ranked once (``hw_m``: ``pr`` 1 is the winner) and
  their rows fetched once (``hw_mr``); a profile of up to `LEVELS` identities is then
  ``coalesce(first's value, second's, ...)``: one join per rank, no sort;
- a larger profile (rare) takes ``(array_agg(value ORDER BY pr) FILTER (WHERE value
  IS NOT NULL))[1]``, the same text on both engines.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from headwater.adapters.warehouse import sql
from headwater.adapters.warehouse.ownership import Execute
from headwater.adapters.warehouse.profile_store import Spelling
from headwater.kernel.model import PropertyType

T = PropertyType
WORK = ("hw_m", "hw_mr", "hw_new")
#: Profiles of up to this many identities are valued by a join per rank.
LEVELS = 4


def values(
    execute: Execute,
    schema: str,
    sp: Spelling,
    columns: Mapping[str, PropertyType],
    order: Sequence[str],
) -> None:
    """Create ``hw_new (id, size, columns...)`` from ``hw_id``, ``hw_c`` and ``hw_ik``."""
    s = sql.quote(schema)
    names = [sql.quote(n) for n in columns]
    params: dict[str, Any] = {f"o{j}": p for j, p in enumerate(order)}
    ranks = " ".join(f"WHEN {sp.ph(f'o{j}')} THEN {j}" for j in range(len(order)))
    rank = f"CASE w.p {ranks} ELSE {len(order)} END" if order else "0"
    execute(
        f"{sp.temp.format('hw_m')} SELECT c.comp, w.p, w.s, row_number() OVER (PARTITION BY "
        f"c.comp ORDER BY w.at IS NULL, w.at DESC, {rank}, w.n) AS pr FROM hw_c AS c "
        "JOIN hw_id AS d ON d.comp = c.comp JOIN hw_ik AS w ON w.n = c.n WHERE d.size > 1",
        params,
    )
    picked = "".join(f", i.{n}" for n in names)
    join = f"JOIN {s}.identities AS i ON i._pipeline_id = w.p AND i._source_id = w.s"
    execute(f"{sp.temp.format('hw_mr')} SELECT w.comp, w.pr{picked} FROM hw_m AS w {join}", {})
    one = "".join(f", i.{n}" for n in names)
    execute(
        f"{sp.temp.format('hw_new')} SELECT d.id, d.size{one} FROM hw_id AS d JOIN hw_ik AS w "
        f"ON w.n = d.mn {join} WHERE d.size = 1",
        {},
    )
    levels = [f"(SELECT * FROM hw_mr WHERE pr = {k}) AS l{k}" for k in range(1, LEVELS + 1)]
    joined = levels[0] + "".join(
        f" LEFT JOIN {level} ON l{k}.comp = l1.comp" for k, level in enumerate(levels[1:], 2)
    )
    coalesced = "".join(
        f", coalesce({', '.join(f'l{k}.{n}' for k in range(1, LEVELS + 1))})" for n in names
    )
    execute(
        f"INSERT INTO hw_new SELECT d.id, d.size{coalesced} FROM hw_id AS d JOIN {joined} "
        f"ON l1.comp = d.comp WHERE d.size > 1 AND d.size <= {LEVELS}",
        {},
    )
    aggregated = "".join(
        f", {_first(sp, n, columns[c])}" for n, c in zip(names, columns, strict=True)
    )
    execute(
        f"INSERT INTO hw_new SELECT d.id, d.size{aggregated} FROM hw_id AS d JOIN hw_mr AS r "
        f"ON r.comp = d.comp WHERE d.size > {LEVELS} GROUP BY d.id, d.size",
        {},
    )


def _first(sp: Spelling, name: str, ptype: PropertyType) -> str:
    """The first non-null value of column `name` of ``hw_mr`` (alias r) by rank."""
    col = f"r.{name}"
    # An array of arrays is no array on PostgreSQL: arrays travel as JSON text.
    value = sp.to_json.format(col) if ptype is T.ARRAY else col
    agg = f"(array_agg({value} ORDER BY r.pr) FILTER (WHERE {col} IS NOT NULL))[1]"
    return sp.array_from_json.format(agg) if ptype is T.ARRAY else agg


def drop(execute: Execute, *tables: str) -> None:
    """Drop work tables (as soon as done with them: less to hold in memory or spill)."""
    for table in tables:
        execute(f"DROP TABLE IF EXISTS {table}", {})
