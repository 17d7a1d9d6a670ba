"""DuckDB column types (its `TypeMapper`), and how a batch is staged (Arrow) and
statements are run."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

import duckdb
import pyarrow as pa

from headwater.adapters.warehouse import sql
from headwater.adapters.warehouse.rejects import RejectedData, Staged
from headwater.adapters.warehouse.staging import json_value
from headwater.kernel.model import PropertyType

T = PropertyType
TYPES = sql.TypeMapper(
    columns={
        T.STRING: "VARCHAR",
        T.INTEGER: "BIGINT",
        T.FLOAT: "DOUBLE",
        T.DECIMAL: "DECIMAL(38,9)",
        T.BOOLEAN: "BOOLEAN",
        T.DATETIME: "TIMESTAMPTZ",
        T.DATE: "DATE",
        T.JSON: "JSON",
        T.ARRAY: "VARCHAR[]",
    },
    text="VARCHAR",
    integer="BIGINT",
    timestamptz="TIMESTAMPTZ",
    counter="INTEGER",
    profile_key="UUID",
    profile_primary_key=False,
    uuid_bits=True,
    # information_schema's spelling where it differs from the type created.
    catalogue={"TIMESTAMP WITH TIME ZONE": T.DATETIME},
    # Decimals are staged as text so that DuckDB rounds them to scale 9.
    casts={T.DECIMAL: "DECIMAL(38,9)", T.JSON: "JSON"},
)
# How each type is staged in Arrow; decimals go as text so DuckDB rounds them to scale 9.
ARROW = {
    T.STRING: pa.string(),
    T.INTEGER: pa.int64(),
    T.FLOAT: pa.float64(),
    T.DECIMAL: pa.string(),
    T.BOOLEAN: pa.bool_(),
    T.DATETIME: pa.timestamp("us", tz="UTC"),
    T.DATE: pa.date32(),
    T.JSON: pa.string(),
    T.ARRAY: pa.list_(pa.string()),
}


def arrow_stage(staged: Staged, columns: dict[str, PropertyType]) -> pa.Table:
    rows = staged.rows
    source_ids = [r.source_id for r in rows]
    data: dict[str, pa.Array] = {
        "_source_id": pa.array(source_ids, pa.string()),
        "_source_updated_at": pa.array(
            [r.source_updated_at for r in rows], pa.timestamp("us", tz="UTC")
        ),
    }
    for name, ptype in columns.items():
        values = staged.values[name]
        if ptype is T.DECIMAL:
            values = [None if v is None else format(v, "f") for v in values]
        try:
            data[name] = pa.array(values, ARROW[ptype])
        except (pa.ArrowException, OverflowError, TypeError, ValueError) as exc:
            raise RejectedData(f"DuckDB cannot stage column {name!r}: {exc}") from None
    return pa.table(data)


def run(
    conn: duckdb.DuckDBPyConnection,
    query: str,
    params: list[Any] | dict[str, Any] | None = None,
) -> list[Any]:
    # Always drain the result: DuckDB refuses further work (even ROLLBACK) on a
    # connection that holds an unfinished result.
    return conn.execute(query, params or []).fetchall()


@contextmanager
def registered(conn: duckdb.DuckDBPyConnection, name: str, table: pa.Table) -> Iterator[None]:
    """Expose an Arrow table to SQL as `name` for the duration of the block."""
    conn.register(name, table)
    try:
        yield
    finally:
        # Inside an aborted transaction unregistering fails; the original error matters
        # more, and the next register() of the same name replaces the view anyway.
        with suppress(duckdb.Error):
            conn.unregister(name)


def readable(rows: list[dict[str, Any]], columns: dict[str, PropertyType]) -> list[dict[str, Any]]:
    """Rows as every engine returns them: JSON columns parsed, profile ids as text."""
    json_cols = [n for n, t in columns.items() if t is PropertyType.JSON]
    for row in rows:
        for name in json_cols:
            if name in row:
                row[name] = json_value(row[name])
        if isinstance(row.get("_profile_id"), uuid.UUID):
            row["_profile_id"] = str(row["_profile_id"])
    return rows
