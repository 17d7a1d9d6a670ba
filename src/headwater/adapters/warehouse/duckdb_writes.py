"""How a DuckDB write lands its rows: the two upserts of staged identities (and their
profiles), and deletes.

All run inside the caller's transaction.  The upserts read the batch staged as relation
`stage` and return (identities inserted, identities updated).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import duckdb
import pyarrow as pa

from headwater.adapters.warehouse import sql
from headwater.adapters.warehouse.contract import WriteBatch
from headwater.adapters.warehouse.duckdb_stage import CASTS, registered, run
from headwater.kernel.model import PropertyType

#: Called inside the transaction right after the identity rows are written (tests use
#: it to act at that instant); ``None`` in production.
AfterMerge = Callable[[], None] | None
_PARAMS = ("$1", "$2", "$3", "$4")
_IDS = "hw_ids"


class NotFresh(Exception):
    """A batch written as all-new met an existing row (internal; the batch is redone)."""


def _casts(columns: dict[str, PropertyType]) -> dict[str, str]:
    return {n: CASTS[t] for n, t in columns.items() if t in CASTS}


def _params(batch: WriteBatch, now: datetime) -> list[Any]:
    return [batch.pipeline_id, batch.connection_id, batch.run_id, now]


def insert_new(
    conn: duckdb.DuckDBPyConnection,
    schema: str,
    stage: str,
    batch: WriteBatch,
    columns: dict[str, PropertyType],
    total: int,
    now: datetime,
    after_merge: AfterMerge,
) -> tuple[int, int]:
    """Plain INSERTs, for batches expected to hold only new identities.

    DuckDB's ON CONFLICT costs about three times a plain insert into an indexed
    table, and a first import is all new rows.  The unique keys still guard the
    guess: a clash raises `NotFresh`, and the caller redoes the batch with `merge`.
    """
    names, casts = list(columns), _casts(columns)
    insert, _ = sql.identity_upsert(schema, stage, names, _PARAMS, casts)
    profiles = sql.profile_upsert(schema, stage, names, "$1", casts, on_conflict=False)
    try:
        run(conn, insert, _params(batch, now))
        if after_merge is not None:
            after_merge()
        run(conn, profiles, [now])
    except duckdb.ConstraintException:
        raise NotFresh from None
    return total, 0


def merge(
    conn: duckdb.DuckDBPyConnection,
    schema: str,
    stage: str,
    batch: WriteBatch,
    columns: dict[str, PropertyType],
    total: int,
    now: datetime,
    after_merge: AfterMerge,
) -> tuple[int, int]:
    """Upsert on the unique key, then the profiles whose values changed."""
    names, casts = list(columns), _casts(columns)
    insert, update_tail = sql.identity_upsert(schema, stage, names, _PARAMS, casts)
    # DuckDB cannot say whether an upsert inserted or updated.  Every write to this
    # database goes through one connection (DuckDB locks the file to one process)
    # and the transaction sees only its own changes, so the growth of the table is
    # the number of new identities; count(*) of a table is cheap in DuckDB.
    count = f"SELECT count(*) FROM {sql.quote(schema)}.identities"
    before = int(run(conn, count)[0][0])
    run(conn, insert + update_tail, _params(batch, now))
    inserted = int(run(conn, count)[0][0]) - before
    if after_merge is not None:
        after_merge()
    run(conn, sql.profile_upsert(schema, stage, names, "$1", casts), [now])
    return inserted, total - inserted


def delete_where(
    conn: duckdb.DuckDBPyConnection, schema: str, where: str, params: list[Any]
) -> int:
    """Delete matching identities, then the profiles no identity references any more."""
    s = sql.quote(schema)
    gone = run(
        conn,
        f"DELETE FROM {s}.identities WHERE {where} RETURNING CAST(_profile_id AS VARCHAR)",
        params,
    )
    if gone:
        ids = pa.table({"id": pa.array([g[0] for g in gone], pa.string())})
        with registered(conn, _IDS, ids):
            run(
                conn,
                f"DELETE FROM {s}.profiles AS p WHERE CAST(p._profile_id AS VARCHAR) IN "
                f"(SELECT id FROM {_IDS}) AND NOT EXISTS (SELECT 1 FROM "
                f"{s}.identities AS i WHERE i._profile_id = p._profile_id)",
            )
    return len(gone)
