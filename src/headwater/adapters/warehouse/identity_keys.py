"""``identity_keys``: every identity's normalised identifier keys, as indexed columns.

One row per identity: ``_pipeline_id, _source_id, _k1 .. _kn`` (identifier order;
``BIGINT`` for an integer identifier), null when the value is empty or blocked.  The
keys are exactly `services/identity.normalise`'s: a full rebuild computes them in SQL
(`key_expr`) for ASCII values, where the engine's trimming and lower-casing equal
Python's, and hands every non-ASCII value to Python (`KeyRule.normalise`), where they
may differ; a resolution after a run writes the keys of the identities it read, from
Python.  ``identity_keys_settings`` holds the fingerprint of the settings the keys were
computed with: a warehouse whose fingerprint differs (identifiers or blocked values
changed) is rebuilt before it is resolved incrementally.

Rows of identities written since the last resolution may be stale (they are pending,
so the next resolution starts from them and rewrites their keys); rows of deleted
identities are dropped by that resolution; lookups join ``identities``, so neither is
ever returned.  The lookups of a resolution after a run live here too: where it starts
(`identities_with_members`) and each neighbourhood round (`sharing`); on DuckDB, where
every lookup is a scan, they are shaped in `identity_scans`, and its key table holds the
engine's hashes of the source id and the keys besides (``_hs``, ``_h1 .. _hn``).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from headwater.adapters.warehouse import identity_scans, sql
from headwater.adapters.warehouse.ownership import Execute
from headwater.adapters.warehouse.profile_store import (
    IdentityRecord,
    KeyRows,
    T,
    identity_select,
    records,
    unnest,
)
from headwater.adapters.warehouse.spelling import Spelling
from headwater.kernel.model import PropertyType

KEYS = "identity_keys"
KEYS_SETTINGS = "identity_keys_settings"
#: The characters `normalise` trims (a fixed set, so SQL trims exactly the same).
TRIM = " \t\n\r\v\f"
#: PostgreSQL indexes a text key by its first `PREFIX` characters: a b-tree entry holds
#: at most 2,704 bytes, and 512 characters are at most 2,048 in UTF-8 (one customer's
#: longer key, indexed whole, failed every resolution and rebuild after it).
PREFIX = 512
#: What an indexed key table's fingerprint carries besides its settings': a table
#: indexed on the whole keys serves no probe by prefix, so it is no current table.
INDEXED = f" prefix:{PREFIX}"

Key = str | int


@dataclass(frozen=True)
class KeyRule:
    """How one identifier's key is computed (built by `services/identity` from its
    settings; the adapter knows no rule of its own)."""

    column: str
    integer: bool
    #: Normalised blocked values (exact).
    blocked: tuple[Key, ...]
    #: Blocked wildcard values as LIKE patterns (``\\`` escapes ``%``, ``_``, ``\\``).
    patterns: tuple[str, ...]
    #: Python's rule, for the values SQL cannot normalise exactly (non-ASCII).
    normalise: Callable[[Any], Key | None]


@dataclass(frozen=True)
class KeySpec:
    """The ordered rules and the fingerprint of the settings they come from."""

    rules: tuple[KeyRule, ...]
    fingerprint: str

    def column_types(self, sp: Spelling) -> list[str]:
        return [sp.integer if r.integer else sp.text for r in self.rules]


def key_column(position: int) -> str:
    """The key table's column of the identifier at `position` (0-based)."""
    return f"_k{position + 1}"


def key_expr(
    rule: KeyRule, col: str, sp: Spelling, params: dict[str, Any], tag: str
) -> tuple[list[str], str]:
    """SQL for `rule`'s key of the value `col`, in two parts: items of an inner select
    (named `tag` ...) and the key over them (null for a non-ASCII string: Python's job,
    `non_ascii`); the engine then trims and lower-cases each value once.  Adds its
    parameters to `params` under names starting with `tag`."""
    v = f"{tag}v"
    if rule.integer:
        if not rule.blocked:
            return [f"{col} AS {v}"], v
        params[f"{tag}b"] = [int(b) for b in rule.blocked]
        blocked = f"{v} IN (SELECT {unnest(sp, f'{tag}b', sp.integer)})"
        return [f"{col} AS {v}"], f"CASE WHEN {blocked} THEN NULL ELSE {v} END"
    params["trim"] = TRIM
    inner = [
        f"{sp.ascii.format(col)} AS {tag}a",
        f"lower(trim({col}, {sp.ph('trim')}){sp.collate}) AS {v}",
    ]
    keep = [f"{tag}a", f"{v} <> ''"]
    if rule.blocked:
        params[f"{tag}b"] = [str(b) for b in rule.blocked]
        keep.append(f"NOT ({v} IN (SELECT {unnest(sp, f'{tag}b', sp.text)}))")
    for j, pattern in enumerate(rule.patterns):
        params[f"{tag}p{j}"] = pattern
        keep.append(f"NOT ({v} LIKE {sp.ph(f'{tag}p{j}')} ESCAPE '\\')")
    return inner, f"CASE WHEN {' AND '.join(keep)} THEN {v} END"


def non_ascii(spec: KeySpec, sp: Spelling, alias: str) -> str | None:
    """A condition true for rows holding a non-ASCII value of some string identifier."""
    parts = [
        f"NOT ({sp.ascii.format(f'{alias}.{sql.quote(r.column)}')})"
        for r in spec.rules
        if not r.integer
    ]
    return " OR ".join(parts) if parts else None


def fingerprint(execute: Execute, schema: str, sp: Spelling) -> str | None:
    """The fingerprint the key table was built with (None: no key table yet, or one
    whose layout is not the engine's: `identity_scans.layout`)."""
    found = execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = "
        f"{literal(schema)} AND table_name = '{KEYS_SETTINGS}'",
        {},
    )
    if not found or not found[0][0]:
        return None
    rows = execute(f"SELECT fingerprint FROM {sql.quote(schema)}.{KEYS_SETTINGS}", {})
    if not rows:
        return None
    stored = str(rows[0][0])
    suffix = INDEXED if sp.key_indexes else identity_scans.layout(execute)
    return stored.removesuffix(suffix) if stored.endswith(suffix) else None


def replace_table(execute: Execute, schema: str, sp: Spelling, spec: KeySpec, source: str) -> None:
    """Replace the key table by `source` (``p, s, k1..kn``) and record the fingerprint
    (without indexes, with the hashes of `identity_scans`)."""
    s = sql.quote(schema)
    width = range(len(spec.rules))
    selected = ", ".join(f"k{j + 1} AS {key_column(j)}" for j in width)
    marked = spec.fingerprint
    if not sp.key_indexes:
        hashed = identity_scans.hashes("s", [f"k{j + 1}" for j in width])
        selected += "".join(f", {expr} AS {col}" for expr, col in hashed)
        marked += identity_scans.layout(execute)
    else:
        marked += INDEXED
    execute(f"DROP TABLE IF EXISTS {s}.{KEYS}", {})
    execute(
        f"CREATE TABLE {s}.{KEYS} AS SELECT p AS _pipeline_id, s AS _source_id, {selected} "
        f"FROM {source}",
        {},
    )
    if sp.key_indexes:
        execute(f"CREATE UNIQUE INDEX ON {s}.{KEYS} (_pipeline_id, _source_id)", {})
        for j, rule in enumerate(spec.rules):
            col = key_column(j)
            indexed = col if rule.integer else f"left({col}, {PREFIX})"
            execute(f"CREATE INDEX ON {s}.{KEYS} (({indexed})) WHERE {col} IS NOT NULL", {})
        # Without statistics the planner takes a probe to match most of the table and
        # scans `identities` whole (0.3 s instead of a few ms at 100,000).
        execute(f"ANALYZE {s}.{KEYS}", {})
    execute(f"DROP TABLE IF EXISTS {s}.{KEYS_SETTINGS}", {})
    execute(f"CREATE TABLE {s}.{KEYS_SETTINGS} (fingerprint {sp.text} NOT NULL)", {})
    execute(
        f"INSERT INTO {s}.{KEYS_SETTINGS} (fingerprint) VALUES ({sp.ph('f')})",
        {"f": marked},
    )


def identities_with_members(
    execute: Execute,
    schema: str,
    sp: Spelling,
    columns: Mapping[str, PropertyType],
    keys: Collection[tuple[str, str]],
    former_profiles: Collection[str],
) -> list[IdentityRecord]:
    """The identities with these (pipeline id, source id) keys, and every identity of
    the profiles they are in or of `former_profiles`: where an incremental resolution
    starts, in one statement (one read of the wide rows; the keys of the members are
    found on the narrow columns first)."""
    if not keys and not former_profiles:
        return []
    if not sp.key_indexes:  # every lookup a scan: narrow columns first (DuckDB)
        return identity_scans.with_members(execute, schema, sp, columns, keys, former_profiles)
    s = sql.quote(schema)
    pipes, sources = zip(*set(keys), strict=True) if keys else ((), ())
    t = sp.text
    profile = sp.try_cast.format("x", sp.profile_key)
    query = (
        f"WITH k AS (SELECT {unnest(sp, 'p', t)} AS p, {unnest(sp, 's', t)} AS s), "
        f"pr AS (SELECT i._profile_id AS id FROM {s}.identities AS i JOIN k "
        "ON i._pipeline_id = k.p AND i._source_id = k.s WHERE i._profile_id IS NOT NULL "
        f"UNION SELECT {profile} AS id FROM (SELECT {unnest(sp, 'f', t)} AS x) AS r), "
        "u AS (SELECT p, s FROM k UNION SELECT m._pipeline_id, m._source_id "
        f"FROM {s}.identities AS m WHERE {sp.in_set.format('m._profile_id', 'SELECT id FROM pr')})"
        f" {identity_select(schema, sp, list(columns))} JOIN u "
        "ON i._pipeline_id = u.p AND i._source_id = u.s"
    )
    params = {"p": list(pipes), "s": list(sources), "f": sorted(set(former_profiles))}
    if sp.probe_setup:
        execute(sp.probe_setup, {})
    return records(execute(query, params), columns)


def sharing(
    execute: Execute,
    schema: str,
    sp: Spelling,
    columns: Mapping[str, PropertyType],
    keys: Sequence[Collection[Key]],
    integer: Sequence[bool],
    sources: Collection[tuple[str, str]],
    known: Collection[tuple[str, str]] = (),
) -> list[IdentityRecord]:
    """Identities whose key of identifier j is among `keys[j]` (by the key table), or
    whose (connection id, source id) is in `sources`; those with a key in `known` may
    be left out.

    With indexes (PostgreSQL) each part is an index probe per value (the values bound
    as an array in ``= ANY``, which the planner serves from the index whatever its row
    estimates), sources probed on ``identities`` by its ``_source_id`` index, in one
    statement.  Without (DuckDB, which joins by hashing and scans): the narrow key
    table first, then the wide rows of the candidates not `known`
    (`identity_scans.sharing`)."""
    if not sp.key_indexes:
        probed_keys = [
            (
                key_column(j),
                identity_scans.hash_column(j),
                sp.integer if integer[j] else sp.text,
                values,
            )
            for j, values in enumerate(keys)
            if values
        ]
        return identity_scans.sharing(execute, schema, sp, columns, probed_keys, sources, known)
    s = sql.quote(schema)
    params: dict[str, Any] = {}
    probed: list[str] = []  # conditions on the key table, each served by its index
    for j, values in enumerate(keys):
        if not values:
            continue
        col, kind = f"x.{key_column(j)}", sp.integer if integer[j] else sp.text
        params[f"k{j}"] = list(values)
        matched = f"{col} IS NOT NULL AND {col} = ANY(CAST({sp.ph(f'k{j}')} AS {kind}[]))"
        if not integer[j]:  # the index holds prefixes (`PREFIX`)
            params[f"x{j}"] = sorted({str(v)[:PREFIX] for v in values})
            matched += f" AND left({col}, {PREFIX}) = ANY(CAST({sp.ph(f'x{j}')} AS {kind}[]))"
        probed.append(matched)
    if sources:
        conns, ids = zip(*set(sources), strict=True)
        params.update(sc=list(conns), ss=list(ids))
    if not params:
        return []
    select = identity_select(schema, sp, list(columns))
    found = [
        f"SELECT x._pipeline_id AS p, x._source_id AS s FROM {s}.{KEYS} AS x WHERE {matched}"
        for matched in probed
    ]
    if sources:
        found.append(
            f"SELECT x._pipeline_id AS p, x._source_id AS s FROM {s}.identities AS x "
            f"WHERE x._source_id = ANY(CAST({sp.ph('ss')} AS {sp.text}[])) "
            f"AND (x._connection_id, x._source_id) IN (SELECT {unnest(sp, 'sc', sp.text)}, "
            f"{unnest(sp, 'ss', sp.text)})"
        )
    query = (
        f"{select} JOIN ({' UNION '.join(found)}) AS k "
        "ON i._pipeline_id = k.p AND i._source_id = k.s"
    )
    if sp.probe_setup:
        execute(sp.probe_setup, {})
    return records(execute(query, params), columns)


def write_rows(execute: Execute, schema: str, sp: Spelling, write: KeyRows) -> None:
    """Replace the key rows of `write.removed` by `write.rows` (inside the caller's
    transaction: the resolution's apply)."""
    s = sql.quote(schema)
    if write.removed:
        pipes, ids = zip(*set(write.removed), strict=True)
        execute(
            f"DELETE FROM {s}.{KEYS} AS x USING (SELECT {unnest(sp, 'p', sp.text)} AS p, "
            f"{unnest(sp, 's', sp.text)} AS s) AS r "
            "WHERE x._pipeline_id = r.p AND x._source_id = r.s",
            {"p": list(pipes), "s": list(ids)},
        )
    if not write.rows:
        return
    params: dict[str, Any] = {
        "p": [r[0] for r in write.rows],
        "s": [r[1] for r in write.rows],
    }
    arrays = [f"{unnest(sp, 'p', sp.text)} AS p", f"{unnest(sp, 's', sp.text)} AS s"]
    for j, integer in enumerate(write.integer):
        params[f"k{j}"] = [r[2][j] for r in write.rows]
        arrays.append(f"{unnest(sp, f'k{j}', sp.integer if integer else sp.text)} AS k{j}")
    width = range(len(write.integer))
    cols = "".join(f", {key_column(j)}" for j in width)
    picked = "".join(f", r.k{j}" for j in width)
    if not sp.key_indexes:
        hashed = identity_scans.hashes("r.s", [f"r.k{j}" for j in width])
        cols += "".join(f", {col}" for _, col in hashed)
        picked += "".join(f", {expr}" for expr, _ in hashed)
    execute(
        f"INSERT INTO {s}.{KEYS} (_pipeline_id, _source_id{cols}) "
        f"SELECT r.p, r.s{picked} FROM (SELECT {', '.join(arrays)}) AS r",
        params,
    )


def literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def loosely_sharing(
    execute: Execute,
    schema: str,
    sp: Spelling,
    columns: Mapping[str, PropertyType],
    keys: Mapping[str, Collection[Any]],
    sources: Collection[tuple[str, str]],
) -> list[IdentityRecord]:
    """Identities whose trimmed, lower-cased identifier column is among `keys[column]`
    (lower-cased by the engine too), or whose (connection id, source id) is in
    `sources`: the lookup before a key table exists (a scan per identifier).  The
    engine's lower-casing may differ from Python's outside ASCII, so this finds a
    superset; resolution keeps only the identities its rules link."""
    select = identity_select(schema, sp, list(columns))
    parts: list[str] = []
    params: dict[str, Any] = {}
    for n, (column, values) in enumerate(sorted(keys.items())):
        if not values or column not in columns:
            continue
        name = f"k{n}"
        col = f"i.{sql.quote(column)}"
        if columns[column] is T.INTEGER:
            parts.append(f"{select} WHERE {col} IN (SELECT {unnest(sp, name, sp.integer)})")
            params[name] = [int(v) for v in values]
        else:
            trimmed = f"lower(trim({col}, {sp.ph('trim')}))"
            parts.append(
                f"{select} WHERE {trimmed} IN (SELECT lower(k) FROM "
                f"(SELECT {unnest(sp, name, sp.text)} AS k) AS probe)"
            )
            params[name] = [str(v) for v in values]
            params["trim"] = TRIM
    if sources:
        conns, ids = zip(*set(sources), strict=True)
        parts.append(
            f"{select} WHERE (i._connection_id, i._source_id) IN "
            f"(SELECT {unnest(sp, 'sc', sp.text)}, {unnest(sp, 'ss', sp.text)})"
        )
        params.update(sc=list(conns), ss=list(ids))
    if not parts:
        return []
    return records(execute(" UNION ".join(parts), params), columns)
