"""A full rebuild's profile values, set-based (``hw_new``; see `identity_profiles`).

Per column, the non-null value of the identity with the latest ``_source_updated_at``,
ties by pipeline order then identity key (the key itself: ``hw_ik``'s numbers have no
order).  Ordered aggregates (one sort per column
and profile) cost far more than the rest of a rebuild, so:

- a profile of one identity takes its row as is;
- the members of the others are ranked once (``hw_m``: ``pr`` 1 is the winner);
- where the engine skips nulls in a window (`Spelling.first_by`, DuckDB's
  ``first_value(value IGNORE NULLS) OVER (PARTITION BY comp ORDER BY pr)``), one
  windowed pass over the members' rows values them all, kept at ``pr`` 1.  The joins
  below hold whole rows in their hash tables: with realistic customers (addresses,
  metadata) they ran out of a rebuild's headroom at a million identities and the
  rebuild was redone; the window needs less, and `reserve` is told how much first
  (`_ranked_bytes`);
- elsewhere (PostgreSQL) their rows are fetched once (``hw_mr``); a profile of up to
  `LEVELS` identities is then ``coalesce(first's value, second's, ...)``: one join per
  rank, no sort; a larger profile (rare) takes ``(array_agg(value ORDER BY pr) FILTER
  (WHERE value IS NOT NULL))[1]``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from headwater.adapters.warehouse import sql
from headwater.adapters.warehouse.ownership import Execute
from headwater.adapters.warehouse.spelling import Spelling
from headwater.kernel.model import PropertyType

T = PropertyType
WORK = ("hw_m", "hw_mr", "hw_new")
#: Profiles of up to this many identities are valued by a join per rank.
LEVELS = 4
#: Told the bytes of working memory the next statement needs (the warehouse may raise
#: its memory bound for the rest of the rebuild).
Reserve = Callable[[int], None]
#: Identities whose row width is sampled, and the bytes a value takes besides its text
#: (DuckDB's 16-byte string header), and per ranked row (comp, pr, id, size, hashes).
SAMPLED = 2_000
VALUE_BYTES = 16
ROW_BYTES = 64
#: The share of the ranked rows' bytes the valuing statement holds in memory at once
#: (DuckDB, measured: 200,000 identities of ~1 KB, 109 MB of ranked rows, ran out
#: below a headroom of ~130 MB and not above; a million realistic ones (addresses,
#: metadata), 192 MB, did not run out at 191 MB).
HELD = 0.5


def values(
    execute: Execute,
    schema: str,
    sp: Spelling,
    columns: Mapping[str, PropertyType],
    order: Sequence[str],
    reserve: Reserve | None = None,
    direct: datetime | None = None,
) -> None:
    """Create ``hw_new (id, size, columns...)`` from ``hw_id`` and ``hw_ik``;
    `reserve` is told what the values of the profiles of several identities need.
    With `direct` (a time), the values go straight into ``profiles``, stamped with it:
    a resolution into an empty ``profiles`` has nothing to compare them with, and one
    write of the rows fewer (at a million identities, 730,000 wide rows) is most of
    what writing them costs."""
    s = sql.quote(schema)
    names = [sql.quote(n) for n in columns]
    put = _sink(execute, s, sp, names, direct)
    params: dict[str, Any] = {f"o{j}": p for j, p in enumerate(order)}
    ranks = " ".join(f"WHEN {sp.ph(f'o{j}')} THEN {j}" for j in range(len(order)))
    rank = f"CASE w.p {ranks} ELSE {len(order)} END" if order else "0"
    c = sp.collate
    execute(
        f"{sp.temp.format('hw_m')} SELECT w.comp, w.n, w.p, w.s, row_number() OVER (PARTITION "
        f"BY w.comp ORDER BY w.at IS NULL, w.at DESC, {rank}, w.p{c}, w.s{c}) AS pr "
        "FROM hw_ik AS w JOIN hw_id AS d ON d.comp = w.comp "
        "WHERE d.size > 1",
        params,
    )
    picked = "".join(f", i.{n}" for n in names)
    join = identity_join(s, sp, "w")
    analyse(execute, sp, "hw_m")
    single = (
        f"JOIN {s}.identities AS i ON i.{sp.row_id} = d.mn"
        if sp.row_id
        else f"JOIN hw_ik AS w ON w.n = d.mn {join}"
    )
    put(f"SELECT d.id, d.size{picked} FROM hw_id AS d {single} WHERE d.size = 1")
    if reserve is not None:
        reserve(_ranked_bytes(execute, schema, sp, names))
    if sp.first_by is not None:
        firsts = "".join(f", {sp.first_by.format(f'i.{n}')} AS {n}" for n in names)
        put(
            f"SELECT id, size{''.join(f', {n}' for n in names)} FROM "
            f"(SELECT d.id, d.size, w.pr{firsts} FROM hw_m AS w {join} "
            "JOIN hw_id AS d ON d.comp = w.comp WINDOW byrank AS (PARTITION BY w.comp "
            "ORDER BY w.pr ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)) AS x "
            "WHERE x.pr = 1"
        )
        return
    execute(f"{sp.temp.format('hw_mr')} SELECT w.comp, w.pr{picked} FROM hw_m AS w {join}", {})
    analyse(execute, sp, "hw_mr")
    levels = [f"(SELECT * FROM hw_mr WHERE pr = {k}) AS l{k}" for k in range(1, LEVELS + 1)]
    joined = levels[0] + "".join(
        f" LEFT JOIN {level} ON l{k}.comp = l1.comp" for k, level in enumerate(levels[1:], 2)
    )
    coalesced = "".join(
        f", coalesce({', '.join(f'l{k}.{n}' for k in range(1, LEVELS + 1))}) AS {n}" for n in names
    )
    put(
        f"SELECT d.id, d.size{coalesced} FROM hw_id AS d JOIN {joined} "
        f"ON l1.comp = d.comp WHERE d.size > 1 AND d.size <= {LEVELS}"
    )
    aggregated = "".join(
        f", {_first(sp, n, columns[c])} AS {n}" for n, c in zip(names, columns, strict=True)
    )
    put(
        f"SELECT d.id, d.size{aggregated} FROM hw_id AS d JOIN hw_mr AS r "
        f"ON r.comp = d.comp WHERE d.size > {LEVELS} GROUP BY d.id, d.size"
    )
    if direct is None:
        analyse(execute, sp, "hw_new")


def identity_join(s: str, sp: Spelling, alias: str) -> str:
    """Joins ``identities`` as ``i`` to the work table row `alias` (``n``, ``p``, ``s``):
    by the number where it is the row's id (`Spelling.row_id`), else by key."""
    if sp.row_id:
        return f"JOIN {s}.identities AS i ON i.{sp.row_id} = {alias}.n"
    return f"JOIN {s}.identities AS i ON i._pipeline_id = {alias}.p AND i._source_id = {alias}.s"


def _sink(
    execute: Execute, s: str, sp: Spelling, names: Sequence[str], direct: datetime | None
) -> Callable[[str], None]:
    """Writes the rows of a select of ``(id, size, columns...)``: the first makes
    ``hw_new``, the others add to it; or, with `direct`, each goes into ``profiles``."""
    cols = "".join(f", {n}" for n in names)
    if direct is not None:
        head = (
            f"INSERT INTO {s}.profiles (_profile_id, _updated_at, _identity_count{cols}) "
            f"SELECT CAST(v.id AS {sp.profile_key}), CAST({sp.ph('at')} AS {sp.timestamptz}), "
            f"v.size{''.join(f', v.{n}' for n in names)} FROM"
        )
        at = direct

        def insert(select: str) -> None:
            execute(f"{head} ({select}) AS v", {"at": at})

        return insert
    made: list[bool] = []

    def put(select: str) -> None:
        into = "INSERT INTO hw_new" if made else sp.temp.format("hw_new")
        execute(f"{into} SELECT v.id, v.size{cols} FROM ({select}) AS v", {})
        made.append(True)

    return put


def _ranked_bytes(execute: Execute, schema: str, sp: Spelling, names: Sequence[str]) -> int:
    """The bytes the valuing of the ranked members (``hw_m``) holds at once: `HELD` of
    their rows times the mean width of a sample of identities' values (text, headers)."""
    if not names:
        return 0
    width = " + ".join(
        f"{VALUE_BYTES} + coalesce({sp.text_bytes.format(f'CAST({n} AS {sp.text})')}, 0)"
        for n in names
    )
    sampled = execute(
        f"SELECT avg({width}) FROM (SELECT {', '.join(names)} FROM "
        f"{sql.quote(schema)}.identities LIMIT {SAMPLED}) AS i",
        {},
    )
    rows = execute("SELECT count(*) FROM hw_m", {})
    return int(int(rows[0][0]) * (ROW_BYTES + float(sampled[0][0] or 0)) * HELD)


def _first(sp: Spelling, name: str, ptype: PropertyType) -> str:
    """The first non-null value of column `name` of ``hw_mr`` (alias r) by rank."""
    col = f"r.{name}"
    # An array of arrays is no array on PostgreSQL: arrays travel as JSON text.
    value = sp.to_json.format(col) if ptype is T.ARRAY else col
    agg = f"(array_agg({value} ORDER BY r.pr) FILTER (WHERE {col} IS NOT NULL))[1]"
    return sp.array_from_json.format(agg) if ptype is T.ARRAY else agg


def analyse(execute: Execute, sp: Spelling, *tables: str) -> None:
    """Gather the statistics of work tables just made, where the engine needs them."""
    for statement in sp.analyze:
        execute(statement.format(", ".join(tables)), {})


def drop(execute: Execute, *tables: str) -> None:
    """Drop work tables (as soon as done with them: less to hold in memory or spill)."""
    for table in tables:
        execute(f"DROP TABLE IF EXISTS {table}", {})
