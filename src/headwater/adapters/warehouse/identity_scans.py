"""An incremental resolution's lookups where every lookup is a scan (DuckDB).

DuckDB has no index for a probe of a thousand values: its ART index serves an ``IN``
list point by point, slower than a scan (docs/identity.md §8).  A scan costs what it
reads, so these lookups read narrow columns to find *which* rows they want, and only
then the wide rows of ``identities``, by ``rowid`` in the same statement: DuckDB turns
``rowid IN (...)`` into a fetch of those rows (at a million identities, 1,700 wide
rows in about 25 ms, against 90-130 ms for a join that scans every column of every
row).  A rowid is only ever used inside the statement that read it.

A neighbourhood round (`sharing`) first reads the narrow key table alone and drops the
identities the caller already holds (the frontier finds itself, and the profiles it was
in, in every round): the wide rows are read only for the others, often none.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

from headwater.adapters.warehouse import sql
from headwater.adapters.warehouse.ownership import Execute
from headwater.adapters.warehouse.profile_store import (
    IdentityRecord,
    Spelling,
    identity_select,
    records,
    unnest,
)
from headwater.kernel.model import PropertyType

Key = str | int


def with_members(
    execute: Execute,
    schema: str,
    sp: Spelling,
    columns: Mapping[str, PropertyType],
    keys: Collection[tuple[str, str]],
    former_profiles: Collection[str],
) -> list[IdentityRecord]:
    """`identity_keys.identities_with_members` on narrow columns: the rowids of the
    identities with these keys and of every member of their profiles (or of
    `former_profiles`), then their wide rows by rowid, in one statement."""
    s = sql.quote(schema)
    pipes, sources = zip(*set(keys), strict=True) if keys else ((), ())
    t = sp.text
    query = (
        f"WITH k AS (SELECT {unnest(sp, 'p', t)} AS p, {unnest(sp, 's', t)} AS s), "
        f"t AS (SELECT i.rowid AS r, i._profile_id AS id FROM {s}.identities AS i JOIN k "
        "ON i._pipeline_id = k.p AND i._source_id = k.s), "
        "pr AS (SELECT id FROM t WHERE id IS NOT NULL UNION SELECT "
        f"{sp.try_cast.format('x', sp.profile_key)} AS id FROM (SELECT {unnest(sp, 'f', t)} "
        "AS x) AS r), "
        "u AS (SELECT r FROM t UNION SELECT m.rowid AS r FROM "
        f"{s}.identities AS m WHERE m._profile_id IN (SELECT id FROM pr)) "
        f"{identity_select(schema, sp, list(columns))} WHERE i.rowid IN (SELECT r FROM u)"
    )
    params = {"p": list(pipes), "s": list(sources), "f": sorted(set(former_profiles))}
    return records(execute(query, params), columns)


def by_key(
    execute: Execute,
    schema: str,
    sp: Spelling,
    columns: Mapping[str, PropertyType],
    keys: Collection[tuple[str, str]],
) -> list[IdentityRecord]:
    """The identities with these keys: their rowids on the two key columns, then the
    wide rows by rowid (one statement)."""
    if not keys:
        return []
    s = sql.quote(schema)
    pipes, sources = zip(*set(keys), strict=True)
    query = (
        f"{identity_select(schema, sp, list(columns))} WHERE i.rowid IN (SELECT m.rowid "
        f"FROM {s}.identities AS m JOIN (SELECT {unnest(sp, 'p', sp.text)} AS p, "
        f"{unnest(sp, 's', sp.text)} AS s) AS k ON m._pipeline_id = k.p AND m._source_id = k.s)"
    )
    return records(execute(query, {"p": list(pipes), "s": list(sources)}), columns)


def sharing(
    execute: Execute,
    schema: str,
    sp: Spelling,
    columns: Mapping[str, PropertyType],
    probed: Sequence[tuple[str, str, Collection[Key]]],
    sources: Collection[tuple[str, str]],
    known: Collection[tuple[str, str]],
) -> list[IdentityRecord]:
    """`identity_keys.sharing` without an index: `probed` are (key column, its type,
    values) of the identifiers probed; identities whose key is in `known` are left out.

    One scan of the key table finds every candidate (a source id matched there may
    belong to another connection, and a key row may be stale for a pending identity,
    which is a seed, hence known: the keys and the connection are checked again here
    and on the rows read); the wide rows are read for the candidates not known."""
    s = sql.quote(schema)
    params: dict[str, Any] = {}
    wanted: list[str] = []
    picked = ""
    for j, (col, kind, values) in enumerate(probed):
        params[f"k{j}"] = list(values)
        wanted.append(f"x.{col} IN (SELECT {unnest(sp, f'k{j}', kind)})")
        picked += f", x.{col}"
    if sources:
        params["ss"] = sorted({source for _, source in sources})
        wanted.append(f"x._source_id IN (SELECT {unnest(sp, 'ss', sp.text)})")
    if not wanted:
        return []
    rows = execute(
        f"SELECT x._pipeline_id, x._source_id{picked} FROM {s}.identity_keys AS x "
        f"WHERE {' OR '.join(wanted)}",
        params,
    )
    sets = [set(values) for _, _, values in probed]
    skip = known if isinstance(known, set | frozenset) else set(known)
    keyed: set[tuple[str, str]] = set()
    others: set[tuple[str, str]] = set()
    for row in rows:
        key = (row[0], row[1])
        if key in skip:
            continue
        if any(row[2 + j] in values for j, values in enumerate(sets)):
            keyed.add(key)
        else:
            others.add(key)  # matched by its source id only: its connection decides
    found = by_key(execute, schema, sp, columns, keyed | others)
    pairs = set(sources)
    return [
        r
        for r in found
        if (r.pipeline_id, r.source_id) in keyed or (r.connection_id, r.source_id) in pairs
    ]
