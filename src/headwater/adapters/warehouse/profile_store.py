"""Identity resolution's reads and writes in the warehouse (docs/identity.md §8).

The statements are the same on every SQL engine; each adapter passes how it spells a
named parameter and how it runs a statement inside its open transaction (as for
`ownership`).  Everything here works on plain values (`IdentityRecord`,
`ProfileWrite`): the rules of identity resolution live in `services/identity`, which
adapts these functions to its `IdentityStore` contract.

Candidates are found set-based: one statement per probe compares the trimmed,
lower-cased identifier columns with the probed keys (arrays bound as one parameter),
so the engine does the join.  SQL's lower-casing may differ from Python's outside
ASCII, so both sides are lower-cased by the engine: the candidate set can only be
larger than the exact one, and the service keeps only the identities its own rules
link (a wider candidate set costs time, never a wrong profile).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from headwater.adapters.warehouse import pending, sql
from headwater.adapters.warehouse.ownership import Execute
from headwater.adapters.warehouse.spelling import Spelling
from headwater.adapters.warehouse.staging import json_text, json_value
from headwater.kernel.model import PropertyType

T = PropertyType
CHANGES = "profile_changes"


@dataclass(frozen=True)
class IdentityRecord:
    """One ``identities`` row as resolution reads it (profile id as text)."""

    pipeline_id: str
    source_id: str
    connection_id: str
    source_updated_at: datetime | None
    profile_id: str | None
    values: Mapping[str, Any]


@dataclass(frozen=True)
class ProfileRecord:
    """One ``profiles`` row."""

    id: str
    updated_at: datetime
    identity_count: int
    values: Mapping[str, Any]


@dataclass(frozen=True)
class ChangeRecord:
    """One ``profile_changes`` row (kind ``merge`` or ``split``)."""

    kind: str
    before: tuple[str, ...]
    after: tuple[str, ...]
    run_id: str
    at: datetime


@dataclass(frozen=True)
class KeyRows:
    """The ``identity_keys`` rows a resolution after a run rewrites: `removed` are the
    identities it started from (written or deleted since), `rows` the keys of those
    that exist, `integer` which identifiers are integers."""

    removed: Collection[tuple[str, str]]
    rows: Sequence[tuple[str, str, tuple[str | int | None, ...]]]
    integer: tuple[bool, ...]


@dataclass(frozen=True)
class ProfileWrite:
    """What one resolution writes, in one transaction."""

    upserts: Sequence[ProfileRecord] = ()
    removed: Collection[str] = ()
    #: (pipeline id, source id, new profile id) of identities whose profile changed.
    memberships: Sequence[tuple[str, str, str]] = ()
    changes: Sequence[ChangeRecord] = ()
    #: ``pending_identities`` batches this resolution read, removed with the write.
    resolved: Collection[str] = ()
    #: Key rows to rewrite (None: the warehouse keeps no key table yet).
    keys: KeyRows | None = None


#: What every function here takes first: (execute, schema, spelling, model columns).
Args = tuple[Execute, str, Spelling, Mapping[str, PropertyType]]


def identity_select(schema: str, sp: Spelling, names: Sequence[str]) -> str:
    cols = "".join(", i." + sql.quote(n) for n in names)
    return (
        f"SELECT i._pipeline_id, i._source_id, i._connection_id, i._source_updated_at, "
        f"CAST(i._profile_id AS {sp.text}){cols} FROM {sql.quote(schema)}.identities AS i"
    )


def records(
    rows: list[tuple[Any, ...]], columns: Mapping[str, PropertyType]
) -> list[IdentityRecord]:
    names = list(columns)
    out = []
    for r in rows:
        values = dict(zip(names, r[5:], strict=True))
        for n, t in columns.items():
            if t is T.JSON:
                values[n] = json_value(values[n])
        out.append(IdentityRecord(r[0], r[1], r[2], r[3], r[4], values))
    return out


def unnest(sp: Spelling, name: str, kind: str) -> str:
    return f"unnest(CAST({sp.ph(name)} AS {kind}[]))"


def identities_by_key(
    execute: Execute,
    schema: str,
    sp: Spelling,
    columns: Mapping[str, PropertyType],
    keys: Collection[tuple[str, str]],
) -> list[IdentityRecord]:
    """The identities with these (pipeline id, source id) keys."""
    if not keys:
        return []
    pipes, sources = zip(*set(keys), strict=True)
    query = (
        f"{identity_select(schema, sp, list(columns))} JOIN (SELECT {unnest(sp, 'p', sp.text)} "
        f"AS p, {unnest(sp, 's', sp.text)} AS s) AS k "
        "ON i._pipeline_id = k.p AND i._source_id = k.s"
    )
    return records(execute(query, {"p": list(pipes), "s": list(sources)}), columns)


def identities_in_profiles(
    execute: Execute,
    schema: str,
    sp: Spelling,
    columns: Mapping[str, PropertyType],
    profile_ids: Collection[str],
) -> list[IdentityRecord]:
    """Every identity whose current profile id is one of `profile_ids`."""
    if not profile_ids:
        return []
    query = (
        f"{identity_select(schema, sp, list(columns))} JOIN (SELECT DISTINCT "
        f"{sp.try_cast.format('x', sp.profile_key)} AS id FROM (SELECT "
        f"{unnest(sp, 'ids', sp.text)} AS x) AS r) AS k ON i._profile_id = k.id"
    )
    return records(execute(query, {"ids": list(set(profile_ids))}), columns)


def all_identities(
    execute: Execute, schema: str, sp: Spelling, columns: Mapping[str, PropertyType]
) -> list[IdentityRecord]:
    return records(execute(identity_select(schema, sp, list(columns)), {}), columns)


def profile_rows(
    execute: Execute,
    schema: str,
    sp: Spelling,
    columns: Mapping[str, PropertyType],
    profile_ids: Collection[str] | None,
) -> list[ProfileRecord]:
    """The profile rows with these ids (None: every profile)."""
    cols = "".join(", p." + sql.quote(n) for n in columns)
    query = (
        f"SELECT CAST(p._profile_id AS {sp.text}), p._updated_at, p._identity_count{cols} "
        f"FROM {sql.quote(schema)}.profiles AS p"
    )
    params: dict[str, Any] = {}
    if profile_ids is not None:
        if not profile_ids:
            return []
        query += (
            f" JOIN (SELECT DISTINCT {sp.try_cast.format('x', sp.profile_key)} AS id FROM (SELECT "
            f"{unnest(sp, 'ids', sp.text)} AS x) AS r) AS k ON p._profile_id = k.id"
        )
        params["ids"] = list(set(profile_ids))
    return [record_of(r, columns) for r in execute(query, params)]


def record_of(row: Sequence[Any], columns: Mapping[str, PropertyType]) -> ProfileRecord:
    """A row of (id text, updated at, count, columns...) as a `ProfileRecord`."""
    values = dict(zip(columns, row[3:], strict=True))
    for n, t in columns.items():
        if t is T.JSON:
            values[n] = json_value(values[n])
    return ProfileRecord(row[0], row[1], int(row[2]), values)


#: Elements per bound array.
_CHUNK = 50_000


def apply(
    execute: Execute,
    schema: str,
    sp: Spelling,
    columns: Mapping[str, PropertyType],
    write: ProfileWrite,
) -> None:
    """Write one resolution (the caller holds the transaction), a chunk of rows per
    statement: removed profiles, upserted profiles, memberships, logged changes, and
    the pending batches it resolved."""
    s = sql.quote(schema)
    # The removed profiles and the rows replaced by upserts go in one DELETE (one scan
    # of ``profiles`` on DuckDB); the upserts are then inserted.
    ids = sorted(set(write.removed) | {r.id for r in write.upserts})
    for start in range(0, len(ids), _CHUNK):
        execute(
            f"DELETE FROM {s}.profiles AS p USING (SELECT DISTINCT CAST(x AS {sp.profile_key}) "
            f"AS id FROM (SELECT {unnest(sp, 'ids', sp.text)} AS x) AS r) AS k "
            "WHERE p._profile_id = k.id",
            {"ids": ids[start : start + _CHUNK]},
        )
    rows = list(write.upserts)
    for start in range(0, len(rows), _CHUNK):
        _insert_profiles(execute, s, sp, columns, rows[start : start + _CHUNK])
    members = list(write.memberships)
    for start in range(0, len(members), _CHUNK):
        part = members[start : start + _CHUNK]
        execute(
            f"UPDATE {s}.identities AS i SET _profile_id = CAST(m.p AS {sp.profile_key}) "
            f"FROM (SELECT {unnest(sp, 'a', sp.text)} AS pipe, {unnest(sp, 'b', sp.text)} "
            f"AS src, {unnest(sp, 'c', sp.text)} AS p) AS m "
            "WHERE i._pipeline_id = m.pipe AND i._source_id = m.src",
            {"a": [m[0] for m in part], "b": [m[1] for m in part], "c": [m[2] for m in part]},
        )
    log_changes(execute, s, sp, list(write.changes))
    pending.clear(execute, schema, sp.ph, sp.text, write.resolved)


def log_changes(execute: Execute, s: str, sp: Spelling, changes: Sequence[ChangeRecord]) -> None:
    """Append the changes in one statement, leaving out those already logged (applying
    a plan twice must not log its changes twice)."""
    if not changes:
        return
    params = {
        "r": [c.run_id for c in changes],
        "a": [c.at for c in changes],
        "k": [c.kind for c in changes],
        "b": [orjson.dumps(list(c.before)).decode() for c in changes],
        "f": [orjson.dumps(list(c.after)).decode() for c in changes],
    }
    t = sp.text
    execute(
        f"INSERT INTO {s}.{CHANGES} (run_id, changed_at, kind, before_ids, after_ids) "
        "SELECT c.r, c.a, c.k, c.b, c.f FROM (SELECT "
        f"{unnest(sp, 'r', t)} AS r, {unnest(sp, 'a', sp.timestamptz)} AS a, "
        f"{unnest(sp, 'k', t)} AS k, {unnest(sp, 'b', t)} AS b, {unnest(sp, 'f', t)} AS f"
        f") AS c WHERE NOT EXISTS (SELECT 1 FROM {s}.{CHANGES} AS x WHERE x.run_id = c.r "
        "AND x.kind = c.k AND x.before_ids = c.b AND x.after_ids = c.f)",
        params,
    )


def _insert_profiles(
    execute: Execute,
    s: str,
    sp: Spelling,
    columns: Mapping[str, PropertyType],
    rows: Sequence[ProfileRecord],
) -> None:
    """Insert these profile rows (`apply` deleted any former row of their ids first:
    DuckDB's ON CONFLICT DO UPDATE costs a second per thousand rows against a million
    profiles; both engines allow a key deleted and inserted again in one transaction),
    each column bound as one array (a few parameters per statement, whatever the number
    of rows).

    JSON and array values travel as JSON text and are converted by the engine."""
    names = list(columns)
    params: dict[str, Any] = {
        "ids": [r.id for r in rows],
        "u": [r.updated_at for r in rows],
        "n": [r.identity_count for r in rows],
    }
    cells = [
        f"CAST(r.c_id AS {sp.profile_key})",
        "r.c_u",
        f"CAST(r.c_n AS {sp.integer})",
    ]
    arrays = [
        f"{unnest(sp, 'ids', sp.text)} AS c_id",
        f"{unnest(sp, 'u', sp.timestamptz)} AS c_u",
        f"{unnest(sp, 'n', sp.integer)} AS c_n",
    ]
    for c, name in enumerate(names):
        ptype = columns[name]
        values = [r.values.get(name) for r in rows]
        if ptype in (T.JSON, T.ARRAY):
            params[f"v{c}"] = [json_text(v) for v in values]
            arrays.append(f"{unnest(sp, f'v{c}', sp.text)} AS c{c}")
            cell = f"r.c{c}"
            cells.append(
                sp.array_from_json.format(cell)
                if ptype is T.ARRAY
                else f"CAST({cell} AS {sp.casts.get(ptype) or sp.types[ptype]})"
            )
        else:
            params[f"v{c}"] = values
            arrays.append(f"{unnest(sp, f'v{c}', sp.types[ptype])} AS c{c}")
            cells.append(f"r.c{c}")
    cols = "".join(", " + sql.quote(n) for n in names)
    execute(
        f"INSERT INTO {s}.profiles (_profile_id, _updated_at, _identity_count{cols}) "
        f"SELECT {', '.join(cells)} FROM (SELECT {', '.join(arrays)}) AS r",
        params,
    )


def read_pending(execute: Execute, schema: str, sp: Spelling) -> pending.Pending:
    return pending.read(execute, schema, sp.text)


def changes(
    execute: Execute, schema: str, sp: Spelling, involving: str | None = None
) -> list[ChangeRecord]:
    """Every logged merge and split, oldest first; with `involving`, those of that
    profile id, found in the warehouse (a rebuild may log hundreds of thousands)."""
    where, params = "", dict[str, Any]()
    if involving is not None:
        params["needle"] = orjson.dumps(involving).decode()  # quoted, as logged
        has = f"strpos(before_ids, {sp.ph('needle')}) > 0"
        where = f" WHERE {has} OR {has.replace('before_ids', 'after_ids')}"
    rows = execute(
        f"SELECT run_id, changed_at, kind, before_ids, after_ids FROM {sql.quote(schema)}."
        f"{CHANGES}{where} ORDER BY changed_at, run_id, kind, before_ids",
        params,
    )
    ids = orjson.loads
    found = (ChangeRecord(r[2], tuple(ids(r[3])), tuple(ids(r[4])), r[0], r[1]) for r in rows)
    return [c for c in found if involving is None or involving in (*c.before, *c.after)]
