"""SQL pieces shared by the SQL engines; each engine supplies its `TypeMapper`.

The statements here are the same on every engine we use; what differs is the column
types (`TypeMapper`) and, in the engine's module, how it stages, merges and deletes.
A new engine (Snowflake, BigQuery, ClickHouse) adds one type mapper and one adapter.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from headwater.kernel.errors import InvalidInput
from headwater.kernel.model import Column, PropertyType

T = PropertyType
_SCHEMA_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")

#: Meta columns of the staging relation; the batch-wide values (pipeline, connection,
#: run, import time) are bound as parameters instead of being repeated per row.
STAGE_META = ("_source_id", "_source_updated_at")


@dataclass(frozen=True)
class TypeMapper:
    """One engine's column types, both ways (as dlt's ``TypeMapper``): the column type
    it creates for each Customer Model type, the model type of a column it reads back
    from its catalogue, the types of the meta columns, and the casts of staged values.
    """

    columns: Mapping[PropertyType, str]  # Customer Model type -> column type
    text: str  # type of ids and other text meta columns
    integer: str  # 64-bit integer
    timestamptz: str
    counter: str  # type of ``_identity_count``
    #: Type of ``_profile_id``.  Profile ids are UUIDs; a native UUID key is 16 bytes
    #: instead of 36 characters, which halves the unique index where it must stay in
    #: memory (DuckDB).  Readers always get the id back as text.
    profile_key: str
    #: Whether ``profiles`` has a primary key.  DuckDB's is an in-memory index that only
    #: a single-id lookup uses, and its upkeep was a third of writing a million new
    #: profiles; identity resolution writes each id once (its tests check it).
    profile_primary_key: bool = True
    #: Whether 128-bit unsigned integers cast to UUIDs (`uuid_bits`; DuckDB).
    uuid_bits: bool = False
    #: The catalogue's spelling of a column type where it differs from `columns`.
    catalogue: Mapping[str, PropertyType] = field(default_factory=dict)
    #: Model types staged in another type (JSON as text...) and cast when merged.
    casts: Mapping[PropertyType, str] = field(default_factory=dict)

    def to_column(self, ptype: PropertyType) -> str:
        return self.columns[ptype]

    def from_column(self, column_type: str) -> PropertyType:
        """The model type of a column read back (text for a type we never create)."""
        found = self.catalogue.get(column_type)
        if found is not None:
            return found
        return next((t for t, name in self.columns.items() if name == column_type), T.STRING)

    def staged_casts(self, columns: Mapping[str, PropertyType]) -> dict[str, str]:
        """Model column -> the type its staged value is cast to on merge."""
        return {n: self.casts[t] for n, t in columns.items() if t in self.casts}


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
        why = "longer than 63 characters" if len(name) > 63 else "a leading '_' is reserved"
        raise InvalidInput(f"{name!r} is not a Customer Model column ({why})", where)


def create_tables(d: TypeMapper, schema: str, extra: Sequence[str] = ()) -> list[str]:
    """Statements creating the schema and its tables (idempotent); `extra` statements
    are formatted with ``schema=`` the quoted schema."""
    s, t, ts = quote(schema), d.text, d.timestamptz
    key = d.profile_key
    return [
        f"CREATE SCHEMA IF NOT EXISTS {s}",
        f"CREATE TABLE IF NOT EXISTS {s}.identities ("
        f"_pipeline_id {t} NOT NULL, _connection_id {t} NOT NULL, _source_id {t} NOT NULL, "
        f"_source_updated_at {ts}, _run_id {t} NOT NULL, _imported_at {ts} NOT NULL, "
        f"_profile_id {key}, UNIQUE (_pipeline_id, _source_id))",
        f"CREATE TABLE IF NOT EXISTS {s}.profiles ("
        f"_profile_id {key} {'PRIMARY KEY' if d.profile_primary_key else 'NOT NULL'}, "
        f"_updated_at {ts} NOT NULL, "
        f"_identity_count {d.counter} NOT NULL)",
        # The owner run and saved state of each pipeline (see `ownership`).
        f"CREATE TABLE IF NOT EXISTS {s}.pipeline_state (pipeline_id {t} PRIMARY KEY, "
        f"owner_run_id {t} NOT NULL, state {t}, claimed_at {ts} NOT NULL, "
        f"updated_at {ts} NOT NULL)",
        # Identity resolution's log of merges and splits (profile ids as JSON arrays).
        f"CREATE TABLE IF NOT EXISTS {s}.profile_changes (run_id {t} NOT NULL, "
        f"changed_at {ts} NOT NULL, kind {t} NOT NULL, before_ids {t} NOT NULL, "
        f"after_ids {t} NOT NULL)",
        # Which Customer Model the tables are at (`model_state`; one row, keyed 1).
        f"CREATE TABLE IF NOT EXISTS {s}.model_state (id INTEGER PRIMARY KEY, "
        f"generation BIGINT NOT NULL, outdated {t} NOT NULL, changed_at {ts} NOT NULL)",
        # Whose customers these are (`ownership.bind_workspace`).
        f"CREATE TABLE IF NOT EXISTS {s}.workspace (workspace_id {t} NOT NULL)",
        # Identities written or deleted since the last resolution (`pending`).
        f"CREATE TABLE IF NOT EXISTS {s}.pending_identities (_batch {t} NOT NULL, "
        f"_pipeline_id {t} NOT NULL, _source_id {t} NOT NULL, _profile_id {key})",
        *(ddl.format(schema=s) for ddl in extra),
    ]


def add_column(d: TypeMapper, schema: str, table: str, col: Column) -> str:
    column = f"{quote(col.name)} {d.to_column(col.type)}"
    return f"ALTER TABLE {quote(schema)}.{table} ADD COLUMN {column}"


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
    key: str | None,
    bits: bool = False,
) -> tuple[str, str]:
    """The INSERT ... SELECT from the stage, and its ON CONFLICT DO UPDATE tail.

    `params` are the placeholders for pipeline id, connection id, run id and import
    time; `casts` maps a model column to the type its staged value is cast to; `key`
    is the type of ``_profile_id``, or None to leave it null (`bits`: the engine's
    `TypeMapper.uuid_bits`, its type then a UUID).  With a type, a new
    identity gets a *provisional* profile id: the id identity resolution gives a new
    profile whose smallest identity it is when this run resolves
    (``ids.new_profile_id`` of the run id and its own key), so the resolution after
    this run leaves it as it is in most cases instead of rewriting every new identity.
    It names no row of ``profiles`` until a resolution makes it one, and resolution
    takes an id naming no profile for "no former profile"
    (docs/identity.md §7).  An update keeps the profile id it has.
    """
    p_pipe, p_conn, p_run, p_now = params
    cols = [quote(n) for n in names]
    values = _staged_values(names, casts)
    source = f"FROM {stage} AS s"
    inserted, staged = cols, values
    if key is not None:  # the insert alone: an update keeps its profile id
        inserted = ["_profile_id", *cols]
        made = uuid_value("s._hw_pid", key, bits)
        staged = [made, *values]
        hashed = profile_md5(p_run, p_pipe, "t._source_id")
        # OFFSET 0: PostgreSQL would otherwise inline the hash into each of its 7 uses.
        source = f"FROM (SELECT t.*, {hashed} AS _hw_pid FROM {stage} AS t OFFSET 0) AS s"
    insert = (
        f"INSERT INTO {quote(schema)}.identities (_pipeline_id, _connection_id, _source_id, "
        f"_source_updated_at, _run_id, _imported_at{''.join(', ' + c for c in inserted)}) "
        f"SELECT {p_pipe}, {p_conn}, s._source_id, s._source_updated_at, {p_run}, {p_now}"
        f"{''.join(', ' + v for v in staged)} {source}"
    )
    updated = ["_connection_id", "_run_id", "_imported_at", *cols]
    # The source time never moves back: a change read again (the next incremental run
    # reads the changes of the seconds before a full read, stamped with their event
    # times, earlier than the full read's) keeps the later stamp; the values are the
    # newest either way.  Profile values order identities by this time.
    was, new = "identities._source_updated_at", "excluded._source_updated_at"
    later = f"greatest(coalesce({was}, {new}), coalesce({new}, {was}))"
    tail = " ON CONFLICT (_pipeline_id, _source_id) DO UPDATE SET " + ", ".join(
        [f"_source_updated_at = {later}", *(f"{c} = excluded.{c}" for c in updated)]
    )
    return insert, tail


#: Prefix of the name hashed into a new profile id (see `ids.new_profile_id`).
PROFILE_ID_PREFIX = "headwater-profile"


def profile_md5(run_id: str, pipeline: str, source: str) -> str:
    """SQL for the MD5 (hexadecimal) a new profile id is made of (`run_id`, `pipeline`,
    `source` are SQL expressions): of the run id and an identity key (a new profile's
    smallest), the very name ``ids.new_profile_id`` hashes; `uuid_layout` writes it out."""
    return (
        f"md5('{PROFILE_ID_PREFIX}' || chr(31) || {run_id} || chr(31) || {pipeline} "
        f"|| chr(31) || {source})"
    )


def uuid_layout(h: str, bits: bool = False) -> str:
    """SQL writing the hexadecimal MD5 `h` (a column: it is read seven times) as the
    text of a UUID of version 3 layout, as ``ids.new_profile_id`` does.  With `bits`
    (`TypeMapper.uuid_bits`) the version and variant are set on the number instead."""
    if bits:
        return f"CAST({uuid_bits(h)} AS VARCHAR)"
    return (
        f"(substr({h}, 1, 8) || '-' || substr({h}, 9, 4) || '-3' || substr({h}, 14, 3) || "
        f"'-' || translate(substr({h}, 17, 1), '0123456789abcdef', '89ab89ab89ab89ab') || "
        f"substr({h}, 18, 3) || '-' || substr({h}, 21, 12))"
    )


def uuid_value(h: str, key: str, bits: bool = False) -> str:
    """SQL of the profile id (of type `key`, the engine's UUID) made of the hexadecimal
    MD5 `h`, as `uuid_layout` writes it (with `bits`, on the number: `uuid_bits`)."""
    return uuid_bits(h) if bits else f"CAST({uuid_layout(h)} AS {key})"


def uuid_bits(h: str) -> str:
    """A UUID (DuckDB's type) of the hexadecimal MD5 `h`, its version nibble set to 3 and
    its variant bits to ``10``, as `uuid_layout` writes them: on the 128-bit number
    (read from the hex, whose first byte is the UUID's first), three times faster than
    cutting and joining the text (730,000 ids: 0.3 s against 0.9 s)."""
    n = f"CAST('0x' || {h} AS UHUGEINT)"
    one = "CAST({0} AS UHUGEINT) << {1}"
    cleared = f"{n} & ~({one.format(15, 76)}) & ~({one.format(3, 62)})"
    return f"CAST(({cleared}) | ({one.format(3, 76)}) | ({one.format(2, 62)}) AS UUID)"


def _staged_values(names: Sequence[str], casts: Mapping[str, str]) -> list[str]:
    return [f"CAST(s.{quote(n)} AS {casts[n]})" if n in casts else f"s.{quote(n)}" for n in names]


def merge_returning_counts(
    schema: str,
    stage: str,
    names: Sequence[str],
    params: tuple[str, str, str, str],
    casts: Mapping[str, str],
    pending: str,
    key: str | None,
) -> str:
    """One statement (PostgreSQL) merging identities and recording them as pending.

    It returns one row: (identities inserted, identities written).  ``xmax = 0`` holds
    only for a freshly inserted row version, which tells inserts from updates.
    `pending` is the INSERT of `pending.from_rows` reading relation ``up``.
    """
    insert, tail = identity_upsert(schema, stage, names, params, casts, key)
    return (
        f"WITH up AS ({insert}{tail} RETURNING _source_id, (xmax = 0) AS _ins), "
        f"pend AS ({pending}) SELECT count(*) FILTER (WHERE _ins), count(*) FROM up"
    )
