"""PostgreSQL column types (its `TypeMapper`), its spelling of identity resolution's
statements, and the COPY of a batch into the session's stage table."""

from __future__ import annotations

import dataclasses
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict

from headwater.adapters.warehouse import sql
from headwater.adapters.warehouse.rejects import RejectedData, Staged
from headwater.adapters.warehouse.spelling import Spelling
from headwater.kernel.model import PropertyType

T = PropertyType
TYPES = sql.TypeMapper(
    columns={
        T.STRING: "text",
        T.INTEGER: "bigint",
        T.FLOAT: "double precision",
        T.DECIMAL: "numeric",
        T.BOOLEAN: "boolean",
        T.DATETIME: "timestamptz",
        T.DATE: "date",
        T.JSON: "jsonb",
        T.ARRAY: "text[]",
    },
    text="text",
    integer="bigint",
    timestamptz="timestamptz",
    counter="integer",
    profile_key="text",
    # format_type()'s spelling where it differs from the type created.
    catalogue={"timestamp with time zone": T.DATETIME},
    casts={T.JSON: "jsonb"},  # JSON is staged as text
)
EXTRA_DDL = (
    # Warehouses made before identity resolution gave every identity a profile id.
    "ALTER TABLE {schema}.identities ALTER COLUMN _profile_id DROP NOT NULL",
    # Identity resolution's lookups (profile_store): by profile, by source id.
    "CREATE INDEX IF NOT EXISTS identities_profile ON {schema}.identities (_profile_id)",
    "CREATE INDEX IF NOT EXISTS identities_source ON {schema}.identities (_source_id)",
)
# Binary COPY types of the stage; JSON is staged as text and cast on merge.
COPY_TYPES = {
    T.STRING: "text",
    T.INTEGER: "int8",
    T.FLOAT: "float8",
    T.DECIMAL: "numeric",
    T.BOOLEAN: "bool",
    T.DATETIME: "timestamptz",
    T.DATE: "date",
    T.JSON: "text",
    T.ARRAY: "text[]",
}
STAGE = "pg_temp.hw_stage"


def describe(url: str) -> str:
    """host:port/db of a URL, for messages (never the password)."""
    try:
        info = conninfo_to_dict(url)
    except psycopg.Error:
        return "the configured server"
    return f"{info.get('host', 'localhost')}:{info.get('port', 5432)}/{info.get('dbname', '')}"


def create_stage(cur: psycopg.Cursor[Any], sig: tuple[tuple[str, PropertyType], ...]) -> None:
    """(Re)create the session's stage for these model columns; it empties on commit."""
    defs = "".join(f", {sql.quote(n)} {COPY_TYPES[t]}" for n, t in sig)
    cur.execute(f"DROP TABLE IF EXISTS {STAGE}")
    cur.execute(
        f"CREATE TEMP TABLE hw_stage (_source_id text, _source_updated_at timestamptz"
        f"{defs}) ON COMMIT DELETE ROWS"
    )


def copy_stage(cur: psycopg.Cursor[Any], staged: Staged, columns: dict[str, PropertyType]) -> None:
    """Binary COPY of the staged rows (column-wise preparation, then rows)."""
    rows = staged.rows
    names = list(columns)
    source_ids = [r.source_id for r in rows]
    data = [
        source_ids,
        [r.source_updated_at for r in rows],
        *(staged.values[n] for n in names),
    ]
    target = ", ".join(["_source_id", "_source_updated_at", *map(sql.quote, names)])
    with cur.copy(f"COPY {STAGE} ({target}) FROM STDIN (FORMAT BINARY)") as copy:
        copy.set_types(["text", "timestamptz", *(COPY_TYPES[columns[n]] for n in names)])
        for record in zip(*data, strict=True):
            try:
                copy.write_row(record)
            except (OverflowError, ValueError, TypeError, psycopg.DataError) as exc:
                raise RejectedData(
                    f"PostgreSQL cannot stage row {record[0]!r}: {_which(record, names, exc)}"
                ) from None


def _which(record: tuple[Any, ...], names: list[str], exc: Exception) -> str:
    """Name the column whose value could not be dumped (psycopg does not say)."""
    for name, value in zip(names, record[len(sql.STAGE_META) :], strict=True):
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 2**63:
            return f"column {name!r}: {value} is out of the bigint range ({exc})"
    return str(exc)


def on_postgres(sp: Spelling) -> Spelling:
    """PostgreSQL's spelling of identity resolution's statements: byte order, its ASCII
    test, work tables dropped at commit, indexed keys; for a rebuild, memory for its
    hashes and sorts, no JIT (it compiled each large statement anew: 0.1-0.3 s apiece,
    half of a rebuild of 60,000 identities), analysed work tables, unique keys added
    again after many writes (`identity_profiles`)."""
    return dataclasses.replace(
        sp,
        try_cast="CAST({0} AS {1})",
        to_json="CAST(to_jsonb({0}) AS text)",
        collate=' COLLATE "C"',
        ascii="octet_length({0}) = char_length({0})",
        text_bytes="octet_length({0})",
        temp="CREATE TEMP TABLE {0} ON COMMIT DROP AS",
        in_set="{0} = ANY(ARRAY({1}))",
        probe_setup="SELECT set_config('enable_seqscan', 'off', true), "
        "set_config('jit', 'off', true)",
        key_indexes=True,
        numbered="row_number() OVER ()",
        row_id=None,
        first_member='(array_agg({0} ORDER BY {1} COLLATE "C", {2} COLLATE "C"))[1]',
        rebuild_setup=(
            "SET LOCAL work_mem = '64MB'",
            "SET LOCAL maintenance_work_mem = '256MB'",
            "SET LOCAL jit = off",
        ),
        # Row counts are what the joins need: a sample of 3,000 rows, not 30,000.
        analyze=(
            "SET LOCAL default_statistics_target = 10",
            "ANALYZE {0}",
            "SET LOCAL default_statistics_target = DEFAULT",
        ),
        member_indexes=(("identities_profile", "_profile_id"), ("identities_source", "_source_id")),
        first_by=None,
        unique_constraints="SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = to_regclass(%(table)s) AND contype IN ('p', 'u') ORDER BY conname",
    )
