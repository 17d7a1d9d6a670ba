"""How a DuckDB write lands its rows: the two upserts of staged identities, and
deletes, each recording what it touched in ``pending_identities`` (`pending`).

All run inside the caller's transaction.  The upserts read the batch staged as relation
`stage` and return (identities inserted, identities updated).  Profiles are not touched
here: identity resolution (`services/identity`) reads the pending rows after the write.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import duckdb

from headwater.adapters.warehouse import pending, sql
from headwater.adapters.warehouse.contract import WriteBatch
from headwater.adapters.warehouse.duckdb_stage import CASTS, run
from headwater.kernel.model import PropertyType

#: Called inside the transaction right after the identity rows are written (tests use
#: it to act at that instant); ``None`` in production.
AfterMerge = Callable[[], None] | None
_PARAMS = ("$1", "$2", "$3", "$4")


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
    try:
        run(conn, insert, _params(batch, now))
    except duckdb.ConstraintException:
        raise NotFresh from None
    _pending(conn, schema, stage, batch, after_merge)
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
    """Upsert on the unique key."""
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
    _pending(conn, schema, stage, batch, after_merge)
    return inserted, total - inserted


def _pending(
    conn: duckdb.DuckDBPyConnection,
    schema: str,
    stage: str,
    batch: WriteBatch,
    after_merge: AfterMerge,
) -> None:
    if after_merge is not None:
        after_merge()
    run(conn, pending.from_rows(schema, stage, pending.new_batch(), "$1"), [batch.pipeline_id])


def delete_where(
    conn: duckdb.DuckDBPyConnection, schema: str, where: str, params: list[Any]
) -> int:
    """Delete matching identities, first recording them (and their profile ids) as
    pending: their profiles are resolution's to fix."""
    run(conn, pending.from_identities(schema, where, pending.new_batch()), params)
    gone = run(conn, f"DELETE FROM {sql.quote(schema)}.identities WHERE {where}", params)
    return int(gone[0][0]) if gone else 0


def upgrade(conn: duckdb.DuckDBPyConnection, schema: str) -> None:
    """Files made before identity resolution gave every identity a profile id at write
    time (``NOT NULL``); now a new identity has none until it is resolved."""
    found = run(
        conn,
        "SELECT is_nullable FROM information_schema.columns WHERE table_schema = $1 "
        "AND table_name = 'identities' AND column_name = '_profile_id'",
        [schema],
    )
    if found and found[0][0] == "NO":
        run(conn, f"ALTER TABLE {sql.quote(schema)}.identities ALTER _profile_id DROP NOT NULL")
