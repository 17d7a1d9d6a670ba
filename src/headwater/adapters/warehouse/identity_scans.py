"""An incremental resolution's lookups where every lookup is a scan (DuckDB).

DuckDB has no index for a probe of a thousand values: its ART index serves an ``IN``
list point by point, slower than a scan (docs/identity.md §8).  A scan costs what it
reads, so these lookups read narrow columns to find *which* rows they want, and only
then the wide rows of ``identities``, by ``rowid`` in the same statement: DuckDB turns
``rowid IN (...)`` into a fetch of those rows (at a million identities, 1,700 wide
rows in about 25 ms, against 90-130 ms for a join that scans every column of every
row; it still reads most blocks of every column, since 1,700 rows spread over most
of them).  A rowid is only used inside the transaction that read it.

A neighbourhood round (`sharing`) first reads the narrow key table alone and drops the
identities the caller already holds (the frontier finds itself, and the profiles it was
in, in every round): the wide rows are read only for the others, often none.

The key table is probed by hashes: besides the keys, each row holds the engine's
``hash`` of its source id (``_hs``) and of each key (``_h1 .. _hn``, null for a null
key), 64-bit integers that DuckDB scans and matches faster than the compressed
strings (at a million identities, after a run's writes, a round's probe
of every identifier and the source ids, to the candidates' keys, took 55-100 ms on
the strings, 35-50 ms on the hashes).  A hash only narrows: the keys and source ids of
the rows it finds are compared exactly (here, and by the service on the rows read), so
a collision costs a row, never a wrong match.  The hashes are compared only with hashes
of the same engine: the fingerprint of a key table records the engine's hash of
`CANARY` (`layout`), and a table hashed otherwise (another DuckDB version, or a table
made before the hashes) is no current table, so the next resolution rebuilds it.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

from headwater.adapters.warehouse import sql
from headwater.adapters.warehouse.ownership import Execute
from headwater.adapters.warehouse.profile_store import (
    IdentityRecord,
    identity_select,
    records,
    unnest,
)
from headwater.adapters.warehouse.spelling import Spelling
from headwater.kernel.model import PropertyType

Key = str | int
#: Hashed into the fingerprint of a key table with hashes (`layout`).
CANARY = "headwater identity keys"


def layout(execute: Execute) -> str:
    """What the fingerprint of a hashed key table carries besides its settings'."""
    found = execute(f"SELECT CAST(hash('{CANARY}') AS VARCHAR)", {})
    return f" hash:{found[0][0]}"


def hash_column(position: int) -> str:
    """The key table's hash of the key of the identifier at `position` (0-based)."""
    return f"_h{position + 1}"


def hashes(source: str, keys: Sequence[str]) -> list[tuple[str, str]]:
    """(expression, key table column) of the hashes of the source id `source` and of
    each key in `keys` (SQL expressions)."""
    out = [(f"hash({source})", "_hs")]
    for j, key in enumerate(keys):
        out.append((f"CASE WHEN {key} IS NULL THEN NULL ELSE hash({key}) END", hash_column(j)))
    return out


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
    probed: Sequence[tuple[str, str, str, Collection[Key]]],
    sources: Collection[tuple[str, str]],
    known: Collection[tuple[str, str]],
) -> list[IdentityRecord]:
    """`identity_keys.sharing` without an index: `probed` are (key column, hash column,
    type, values) of the identifiers probed; identities whose key is in `known` are
    left out.

    One scan of the key table's hashes finds every candidate, and the (pipeline id,
    source id) of each: those known are dropped before their keys are read (the
    frontier matches itself: most of them).  The keys and source ids of the others are
    compared exactly (a source id may belong to another connection: that is checked on
    the rows read; a key row may be stale for a pending identity, which is a seed,
    hence known); then their wide rows are read.  The key table's rowids are used only
    inside this transaction (the caller's: one `_with_profile_args`)."""
    s = sql.quote(schema)
    params: dict[str, Any] = {}
    wanted: list[str] = []
    picked = ""
    for j, (col, hashed, kind, values) in enumerate(probed):
        params[f"k{j}"] = list(values)
        wanted.append(f"{hashed} IN (SELECT hash({unnest(sp, f'k{j}', kind)}))")
        picked += f", x.{col}"
    source_ids = {source for _, source in sources}
    if sources:
        params["ss"] = sorted(source_ids)
        wanted.append(f"_hs IN (SELECT hash({unnest(sp, 'ss', sp.text)}))")
    if not wanted:
        return []
    # One scan per hash column, each matched alone (a semi-join, which DuckDB pushes
    # into the scan as a filter: only that column is read), then the rows by rowid.
    rowids = " UNION ALL ".join(f"SELECT rowid FROM {s}.identity_keys WHERE {w}" for w in wanted)
    matched = execute(
        f"SELECT x.rowid, x._pipeline_id, x._source_id FROM {s}.identity_keys AS x "
        f"WHERE x.rowid IN ({rowids})",
        params,
    )
    skip = known if isinstance(known, set | frozenset) else set(known)
    unknown = [r[0] for r in matched if (r[1], r[2]) not in skip]
    if not unknown:
        return []
    rows = execute(
        f"SELECT x._pipeline_id, x._source_id{picked} FROM {s}.identity_keys AS x "
        f"WHERE x.rowid IN (SELECT unnest(CAST({sp.ph('r')} AS {sp.integer}[])))",
        {"r": unknown},
    )
    sets = [set(values) for _, _, _, values in probed]
    keyed: set[tuple[str, str]] = set()
    others: set[tuple[str, str]] = set()
    for row in rows:
        key = (row[0], row[1])
        if any(row[2 + j] in values for j, values in enumerate(sets)):
            keyed.add(key)
        elif row[1] in source_ids:
            others.add(key)  # matched by its source id only: its connection decides
    found = by_key(execute, schema, sp, columns, keyed | others)
    pairs = set(sources)
    return [
        r
        for r in found
        if (r.pipeline_id, r.source_id) in keyed or (r.connection_id, r.source_id) in pairs
    ]
