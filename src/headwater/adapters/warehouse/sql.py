"""SQL pieces shared by the SQL engines; each engine supplies a small `Dialect`.

Only what differs between engines lives in a `Dialect` (type names, extra DDL), so a
new engine (Snowflake, BigQuery, ClickHouse) adds one dialect and one adapter module.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from headwater.kernel.errors import InvalidInput
from headwater.kernel.model import Column, PropertyType

_SCHEMA_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")

#: Meta columns of the staging relation; the batch-wide values (pipeline, connection,
#: run, import time) are bound as parameters instead of being repeated per row.
STAGE_META = ("_source_id", "_source_updated_at")


@dataclass(frozen=True)
class Dialect:
    """The per-engine differences of the shared DDL."""

    types: Mapping[PropertyType, str]  # Customer Model type -> column type
    text: str  # type of ids and other text meta columns
    timestamptz: str
    integer: str
    extra_ddl: Sequence[str] = ()  # formatted with schema=quoted schema
    #: Type of ``_profile_id``.  Profile ids are UUIDs; a native UUID key is 16 bytes
    #: instead of 36 characters, which halves the unique index where it must stay in
    #: memory (DuckDB).  Readers always get the id back as text.
    profile_key: str = ""


def quote(name: str) -> str:
    """Quote an identifier (doubling embedded quotes), valid on every SQL engine we use."""
    return '"' + name.replace('"', '""') + '"'


def check_schema(name: str) -> str:
    if not _SCHEMA_NAME.match(name):
        raise InvalidInput(
            f"schema name {name!r} must be letters, digits and '_' (at most 63), "
            "not starting with a digit",
            "schema",
        )
    return name


def check_model_column(name: str, where: str = "column") -> None:
    """Model columns are never meta columns: a leading '_' is reserved for those."""
    if not name or name.startswith("_") or len(name) > 63:
        raise InvalidInput(
            f"{name!r} is not a Customer Model column (a leading '_' is reserved)", where
        )


def create_tables(d: Dialect, schema: str) -> list[str]:
    """Statements creating the schema and its tables (idempotent)."""
    s, t, ts = quote(schema), d.text, d.timestamptz
    key = d.profile_key or t
    return [
        f"CREATE SCHEMA IF NOT EXISTS {s}",
        f"CREATE TABLE IF NOT EXISTS {s}.identities ("
        f"_pipeline_id {t} NOT NULL, _connection_id {t} NOT NULL, _source_id {t} NOT NULL, "
        f"_source_updated_at {ts}, _run_id {t} NOT NULL, _imported_at {ts} NOT NULL, "
        f"_profile_id {key}, UNIQUE (_pipeline_id, _source_id))",
        f"CREATE TABLE IF NOT EXISTS {s}.profiles ("
        f"_profile_id {key} PRIMARY KEY, _updated_at {ts} NOT NULL, "
        f"_identity_count {d.integer} NOT NULL)",
        # The owner run and saved state of each pipeline (see `ownership`).
        f"CREATE TABLE IF NOT EXISTS {s}.pipeline_state (pipeline_id {t} PRIMARY KEY, "
        f"owner_run_id {t} NOT NULL, state {t}, claimed_at {ts} NOT NULL, "
        f"updated_at {ts} NOT NULL)",
        # Identity resolution's log of merges and splits (profile ids as JSON arrays).
        f"CREATE TABLE IF NOT EXISTS {s}.profile_changes (run_id {t} NOT NULL, "
        f"changed_at {ts} NOT NULL, kind {t} NOT NULL, before_ids {t} NOT NULL, "
        f"after_ids {t} NOT NULL)",
        # Identities written or deleted since the last resolution (`pending`).
        f"CREATE TABLE IF NOT EXISTS {s}.pending_identities (_batch {t} NOT NULL, "
        f"_pipeline_id {t} NOT NULL, _source_id {t} NOT NULL, _profile_id {key})",
        *(ddl.format(schema=s) for ddl in d.extra_ddl),
    ]


def add_column(d: Dialect, schema: str, table: str, col: Column) -> str:
    return f"ALTER TABLE {quote(schema)}.{table} ADD COLUMN {quote(col.name)} {d.types[col.type]}"


def rename_column(schema: str, table: str, old: str, new: str) -> str:
    return f"ALTER TABLE {quote(schema)}.{table} RENAME COLUMN {quote(old)} TO {quote(new)}"


def drop_column(schema: str, table: str, name: str) -> str:
    return f"ALTER TABLE {quote(schema)}.{table} DROP COLUMN IF EXISTS {quote(name)}"


def identity_upsert(
    schema: str,
    stage: str,
    names: Sequence[str],
    params: tuple[str, str, str, str],
    casts: Mapping[str, str],
) -> tuple[str, str]:
    """The INSERT ... SELECT from the stage, and its ON CONFLICT DO UPDATE tail.

    `params` are the placeholders for pipeline id, connection id, run id and import
    time; `casts` maps a model column to the type its staged value is cast to.  The
    profile id is not written: a new identity has none until identity resolution
    (`services/identity`) gives it one, and an update keeps the one it has.
    """
    p_pipe, p_conn, p_run, p_now = params
    cols = [quote(n) for n in names]
    values = _staged_values(names, casts)
    insert = (
        f"INSERT INTO {quote(schema)}.identities (_pipeline_id, _connection_id, _source_id, "
        f"_source_updated_at, _run_id, _imported_at{''.join(', ' + c for c in cols)}) "
        f"SELECT {p_pipe}, {p_conn}, s._source_id, s._source_updated_at, {p_run}, {p_now}"
        f"{''.join(', ' + v for v in values)} FROM {stage} AS s"
    )
    updated = ["_connection_id", "_source_updated_at", "_run_id", "_imported_at", *cols]
    tail = " ON CONFLICT (_pipeline_id, _source_id) DO UPDATE SET " + ", ".join(
        f"{c} = excluded.{c}" for c in updated
    )
    return insert, tail


def _staged_values(names: Sequence[str], casts: Mapping[str, str]) -> list[str]:
    return [f"CAST(s.{quote(n)} AS {casts[n]})" if n in casts else f"s.{quote(n)}" for n in names]


def merge_returning_counts(
    schema: str,
    stage: str,
    names: Sequence[str],
    params: tuple[str, str, str, str],
    casts: Mapping[str, str],
    pending: str,
) -> str:
    """One statement (PostgreSQL) merging identities and recording them as pending.

    It returns one row: (identities inserted, identities written).  ``xmax = 0`` holds
    only for a freshly inserted row version, which tells inserts from updates.
    `pending` is the INSERT of `pending.from_rows` reading relation ``up``.
    """
    insert, tail = identity_upsert(schema, stage, names, params, casts)
    return (
        f"WITH up AS ({insert}{tail} RETURNING _source_id, (xmax = 0) AS _ins), "
        f"pend AS ({pending}) SELECT count(*) FILTER (WHERE _ins), count(*) FROM up"
    )
