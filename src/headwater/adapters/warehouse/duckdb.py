"""DuckDB warehouse: a file (or memory) database, bulk writes staged through Arrow."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import duckdb
import pyarrow as pa

from headwater.adapters.warehouse import ownership, profile_store, rejects, sql
from headwater.adapters.warehouse.contract import (
    META_COLUMNS,
    Capabilities,
    WarehouseError,
    WriteBatch,
    WriteResult,
)
from headwater.adapters.warehouse.duckdb_memory import MemoryBound, OutOfMemory, memory_bounded
from headwater.adapters.warehouse.duckdb_stage import (
    CASTS,
    DIALECT,
    FROM_SQL,
    arrow_stage,
    registered,
    run,
)
from headwater.adapters.warehouse.profile_methods import ProfileMethods
from headwater.adapters.warehouse.rejects import (
    DryRun,
    RejectedData,
    stage_values,
    write_isolating,
)
from headwater.adapters.warehouse.staging import (
    check_row_columns,
    json_value,
    latest_rows,
)
from headwater.kernel.errors import NotFound
from headwater.kernel.model import Column, PropertyType
from headwater.kernel.records import IdentityRow
from headwater.kernel.state import PipelineState

T = PropertyType
P = ParamSpec("P")
R = TypeVar("R")
log = logging.getLogger(__name__)
_STAGE = "hw_stage"
_IDS = "hw_ids"


class _WriteConflict(WarehouseError):
    """Another connection of this process changed the same row in a transaction still open."""


#: How long a claim waits for another connection's write in flight on the owner row.
CLAIM_WAIT_SECONDS = 30.0


class _NotFresh(Exception):
    """A batch written as all-new met an existing row (internal; the batch is redone)."""


def _named(name: str) -> str:
    return f"${name}"


def _statements(conn: duckdb.DuckDBPyConnection) -> ownership.Execute:
    return lambda query, params: conn.execute(query, params).fetchall()


_SPELLING = profile_store.Spelling(_named, "VARCHAR", "BIGINT", "UUID", CASTS)


class DuckDBWarehouse(ProfileMethods):
    """The `Warehouse` on DuckDB; one connection, serialised by a lock."""

    def __init__(
        self,
        path: str | Path = ":memory:",
        *,
        schema: str = "headwater",
        checkpoint_mb: int = 512,
        memory_headroom_mb: int | None = 32,
    ) -> None:
        """Open (or create) the database at `path`.

        `memory_headroom_mb` bounds DuckDB's memory to its unique indexes (which must
        stay in memory, about 50 bytes per identity with UUID profile keys) plus this
        headroom; the rest is cached or spilled to disk (measured: importing 1M
        identities peaks near 370 MB RSS for the whole importing process).  A write that
        runs out of memory doubles the headroom and is redone (up to
        `MAX_HEADROOM_MB`), so a wide Customer Model costs memory, never a failed run.
        ``None`` leaves DuckDB's default (80% of RAM).
        """
        self.schema = sql.check_schema(schema)
        self.capabilities = Capabilities("duckdb", "arrow", True, self.schema)
        self._lock = threading.RLock()
        self._depth = 0
        self._columns: dict[str, PropertyType] | None = None
        # Per pipeline: whether the next batch is expected to hold only new identities.
        self._fresh: dict[str, bool] = {}
        # Test hook: called inside the write transaction right after the identity merge.
        self._after_merge: Callable[[], None] | None = None
        target = str(path)
        try:
            if target != ":memory:":
                Path(target).parent.mkdir(parents=True, exist_ok=True)
            self._conn = duckdb.connect(target)
            self._conn.execute("SET TimeZone = 'UTC'")
            # DuckDB checkpoints (rewriting the unique indexes) whenever the WAL passes
            # 16 MB, i.e. every few batches; at scale that halves write throughput.
            # A larger WAL is still durable: it is replayed on open.
            self._conn.execute(f"SET checkpoint_threshold = '{int(checkpoint_mb)}MB'")
        except (duckdb.Error, OSError) as exc:
            hint = ""
            if "Conflicting lock" in str(exc):
                hint = (
                    " (a DuckDB file is open to one process at a time; a pipeline run may "
                    "be writing to it: try again when the run has ended)"
                )
            raise WarehouseError(f"cannot open DuckDB database {target!r}: {exc}{hint}") from None
        self._s = sql.quote(self.schema)
        self._memory = MemoryBound(memory_headroom_mb)
        self._writes = 0
        self._tune_memory()

    def _tune_memory(self) -> None:
        with self._lock:
            self._memory.tune(self._conn)

    def _grow_headroom(self, detail: str) -> None:
        with self._lock:
            self._memory.grow(self._conn, detail)

    # -- plumbing --------------------------------------------------------------------

    @contextmanager
    def _transaction(self, what: str) -> Iterator[duckdb.DuckDBPyConnection]:
        with self._lock:
            conn = self._conn
            if self._depth:  # nested use (same thread, lock held) joins the open transaction
                yield conn
                return
            conn.begin()
            self._depth += 1
            try:
                yield conn
                conn.commit()
            except BaseException as exc:
                with suppress(duckdb.Error):  # a failed COMMIT has already ended it
                    conn.rollback()
                self._columns = None  # the failure may come from a schema changed elsewhere
                if isinstance(exc, duckdb.OutOfMemoryException):
                    raise OutOfMemory(str(exc).splitlines()[0]) from None
                if isinstance(exc, duckdb.DataError | duckdb.IntegrityError):
                    reason = rejects.message(f"DuckDB refused a value: {exc}")
                    raise RejectedData(reason) from None
                if isinstance(exc, duckdb.TransactionException):
                    raise _WriteConflict(f"DuckDB {what} failed: {exc}") from None
                if isinstance(exc, duckdb.Error):
                    raise WarehouseError(f"DuckDB {what} failed: {exc}") from None
                raise
            finally:
                self._depth = 0

    def _model_columns(self, conn: duckdb.DuckDBPyConnection) -> dict[str, PropertyType]:
        if self._columns is None:
            found = run(
                conn,
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = $1 AND table_name = 'identities' ORDER BY ordinal_position",
                [self.schema],
            )
            self._columns = {
                name: FROM_SQL.get(kind, T.STRING)
                for name, kind in found
                if name not in META_COLUMNS
            }
        return self._columns

    # -- model changes ---------------------------------------------------------------

    @memory_bounded
    def ensure_columns(self, columns: Sequence[Column]) -> None:
        for col in columns:
            sql.check_model_column(col.name)
        with self._transaction("creating tables") as conn:
            for stmt in sql.create_tables(DIALECT, self.schema):
                run(conn, stmt)
            self._columns = None
            have = self._model_columns(conn)
            profile_cols = set(self._table_columns(conn, "profiles"))
            for col in columns:
                if col.name not in have:
                    run(conn, sql.add_column(DIALECT, self.schema, "identities", col))
                if col.name not in profile_cols:
                    run(conn, sql.add_column(DIALECT, self.schema, "profiles", col))
            self._columns = None

    def _table_columns(self, conn: duckdb.DuckDBPyConnection, table: str) -> list[str]:
        rows = run(
            conn,
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = $1 AND table_name = $2",
            [self.schema, table],
        )
        return [r[0] for r in rows]

    @memory_bounded
    def rename_column(self, old: str, new: str) -> None:
        sql.check_model_column(old, "old")
        sql.check_model_column(new, "new")
        with self._transaction("renaming a column") as conn:
            for table in ("identities", "profiles"):
                have = self._table_columns(conn, table)
                if old in have:
                    run(conn, sql.rename_column(self.schema, table, old, new))
                elif new not in have:
                    raise NotFound(f"column {old!r} does not exist in {self.schema}.{table}")
            self._columns = None

    @memory_bounded
    def drop_column(self, name: str) -> None:
        sql.check_model_column(name)
        with self._transaction("dropping a column") as conn:
            for table in ("identities", "profiles"):
                run(conn, sql.drop_column(self.schema, table, name))
            self._columns = None

    # -- writes ----------------------------------------------------------------------

    @memory_bounded
    def write(self, batch: WriteBatch) -> WriteResult:
        def attempt(part: list[IdentityRow], dry_run: bool) -> WriteResult:
            if not dry_run and self._fresh.get(batch.pipeline_id, True):
                try:
                    return self._write(batch, part, dry_run, fresh=True)
                except _NotFresh:  # rolled back; some identity (or profile) existed
                    self._fresh[batch.pipeline_id] = False
            return self._write(batch, part, dry_run, fresh=False)

        result = write_isolating(latest_rows(batch.rows), attempt)
        self._writes += 1
        if self._writes % 16 == 0:
            self._tune_memory()
        return result

    def _write(
        self, batch: WriteBatch, rows: list[IdentityRow], dry_run: bool, *, fresh: bool
    ) -> WriteResult:
        result = WriteResult()
        now = datetime.now(UTC)
        with self._transaction("write") as conn:
            self._fence(conn, batch.pipeline_id, batch.run_id, batch.state)
            columns = self._model_columns(conn)
            check_row_columns(rows, columns)
            staged = stage_values(rows, columns, nul_forbidden=False)
            result.rejected = staged.rejected
            if staged.rows:
                with registered(conn, _STAGE, arrow_stage(staged, columns, batch.pipeline_id)):
                    merge = self._insert_new if fresh else self._merge
                    merge(conn, batch, len(staged.rows), columns, now, result)
            if dry_run:
                raise DryRun
            if batch.deletes:
                result.deleted = self._delete_where(
                    conn,
                    "_pipeline_id = $1 AND list_contains($2, _source_id)",
                    [batch.pipeline_id, list(dict.fromkeys(batch.deletes))],
                )
        return result

    def _insert_new(
        self,
        conn: duckdb.DuckDBPyConnection,
        batch: WriteBatch,
        total: int,
        columns: dict[str, PropertyType],
        now: datetime,
        result: WriteResult,
    ) -> None:
        """Plain INSERTs, for batches expected to hold only new identities.

        DuckDB's ON CONFLICT costs about three times a plain insert into an indexed
        table, and a first import is all new rows.  The unique keys still guard the
        guess: a clash raises `_NotFresh`, and `write` redoes the batch as a merge.
        """
        names = list(columns)
        casts = {n: CASTS[t] for n, t in columns.items() if t in CASTS}
        insert, _ = sql.identity_upsert(self.schema, _STAGE, names, ("$1", "$2", "$3", "$4"), casts)
        profiles = sql.profile_upsert(self.schema, _STAGE, names, "$1", casts, on_conflict=False)
        try:
            run(conn, insert, [batch.pipeline_id, batch.connection_id, batch.run_id, now])
            if self._after_merge is not None:
                self._after_merge()
            run(conn, profiles, [now])
        except duckdb.ConstraintException:
            raise _NotFresh from None
        result.inserted = total

    def _merge(
        self,
        conn: duckdb.DuckDBPyConnection,
        batch: WriteBatch,
        total: int,
        columns: dict[str, PropertyType],
        now: datetime,
        result: WriteResult,
    ) -> None:
        names = list(columns)
        casts = {n: CASTS[t] for n, t in columns.items() if t in CASTS}
        insert, update_tail = sql.identity_upsert(
            self.schema, _STAGE, names, ("$1", "$2", "$3", "$4"), casts
        )
        params: list[Any] = [batch.pipeline_id, batch.connection_id, batch.run_id, now]
        # DuckDB cannot say whether an upsert inserted or updated.  Every write to this
        # database goes through this connection (DuckDB locks the file to one process)
        # and the transaction sees only its own changes, so the growth of the table is
        # the number of new identities; count(*) of a table is cheap in DuckDB.
        count = f"SELECT count(*) FROM {self._s}.identities"
        before = int(run(conn, count)[0][0])
        run(conn, insert + update_tail, params)
        result.inserted = int(run(conn, count)[0][0]) - before
        result.updated = total - result.inserted
        # A batch of only new identities suggests the next one is new too (an import).
        self._fresh[batch.pipeline_id] = result.updated == 0
        if self._after_merge is not None:
            self._after_merge()
        run(conn, sql.profile_upsert(self.schema, _STAGE, names, "$1", casts), [now])

    def _delete_where(self, conn: duckdb.DuckDBPyConnection, where: str, params: list[Any]) -> int:
        """Delete matching identities, then the profiles no identity references any more."""
        gone = run(
            conn,
            f"DELETE FROM {self._s}.identities WHERE {where} "
            "RETURNING CAST(_profile_id AS VARCHAR)",
            params,
        )
        if gone:
            ids = pa.table({"id": pa.array([g[0] for g in gone], pa.string())})
            with registered(conn, _IDS, ids):
                run(
                    conn,
                    f"DELETE FROM {self._s}.profiles AS p WHERE CAST(p._profile_id AS VARCHAR) IN "
                    f"(SELECT id FROM {_IDS}) AND NOT EXISTS (SELECT 1 FROM "
                    f"{self._s}.identities AS i WHERE i._profile_id = p._profile_id)",
                )
        return len(gone)

    def _fence(
        self,
        conn: duckdb.DuckDBPyConnection,
        pipeline_id: str,
        run_id: str,
        state: PipelineState | None,
    ) -> None:
        ownership.fence(_statements(conn), self.schema, _named, pipeline_id, run_id, state)

    @memory_bounded
    def claim(self, pipeline_id: str, run_id: str) -> PipelineState | None:
        # DuckDB does not wait for a row lock: a claim that meets the old owner's write
        # in flight (two runs in one process) conflicts.  Wait for that write to end.
        deadline = time.monotonic() + CLAIM_WAIT_SECONDS
        while True:
            try:
                with self._transaction("claim") as conn:
                    return ownership.claim(
                        _statements(conn), self.schema, _named, pipeline_id, run_id
                    )
            except _WriteConflict:
                if time.monotonic() > deadline:
                    raise
            time.sleep(0.05)

    @memory_bounded
    def pipeline_state(self, pipeline_id: str) -> ownership.OwnedState | None:
        with self._transaction("read") as conn:
            return ownership.read(_statements(conn), self.schema, _named, pipeline_id)

    @memory_bounded
    def purge_unseen(
        self,
        pipeline_id: str,
        run_id: str,
        keep: Collection[str] = (),
        state: PipelineState | None = None,
    ) -> int:
        keep_ids = pa.table({"id": pa.array(list(keep), pa.string())})
        with self._transaction("purge") as conn, registered(conn, "hw_keep", keep_ids):
            self._fence(conn, pipeline_id, run_id, state)
            return self._delete_where(
                conn,
                "_pipeline_id = $1 AND _run_id <> $2 AND _source_id NOT IN "
                "(SELECT id FROM hw_keep)",
                [pipeline_id, run_id],
            )

    @memory_bounded
    def delete_pipeline(self, pipeline_id: str) -> int:
        with self._transaction("deleting a pipeline") as conn:
            ownership.forget(_statements(conn), self.schema, _named, pipeline_id)
            return self._delete_where(conn, "_pipeline_id = $1", [pipeline_id])

    # -- reads -----------------------------------------------------------------------

    @memory_bounded
    def identities(self, pipeline_id: str | None = None) -> list[dict[str, Any]]:
        where, params = ("WHERE _pipeline_id = $1", [pipeline_id]) if pipeline_id else ("", [])
        return self._select(
            f"SELECT * FROM {self._s}.identities {where} ORDER BY _pipeline_id, _source_id",
            params,
        )

    @memory_bounded
    def profiles(self) -> list[dict[str, Any]]:
        return self._select(f"SELECT * FROM {self._s}.profiles ORDER BY _profile_id", [])

    def _select(self, query: str, params: list[Any]) -> list[dict[str, Any]]:
        with self._transaction("read") as conn:
            columns = self._model_columns(conn)
            cur = conn.execute(query, params)
            names = [d[0] for d in cur.description or ()]
            rows = [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
        json_cols = [n for n, t in columns.items() if t is T.JSON]
        for row in rows:
            for name in json_cols:
                if name in row:
                    row[name] = json_value(row[name])
            if isinstance(row.get("_profile_id"), uuid.UUID):
                row["_profile_id"] = str(row["_profile_id"])
        return rows

    @memory_bounded
    def count(self, pipeline_id: str | None = None) -> int:
        where, params = ("WHERE _pipeline_id = $1", [pipeline_id]) if pipeline_id else ("", [])
        with self._transaction("count") as conn:
            found = run(conn, f"SELECT count(*) FROM {self._s}.identities {where}", params)
        return int(found[0][0])

    @memory_bounded
    def count_profiles(self) -> int:
        with self._transaction("count") as conn:
            found = run(conn, f"SELECT count(*) FROM {self._s}.profiles")
        return int(found[0][0])

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # -- identity resolution (methods in `profile_methods`) ----------------------------

    @memory_bounded
    def _with_profile_args(self, what: str, fn: Callable[[profile_store.Args], R]) -> R:
        with self._transaction(what) as conn:
            return fn((_statements(conn), self.schema, _SPELLING, self._model_columns(conn)))

    @contextmanager
    def resolution_lock(self) -> Iterator[None]:
        # A DuckDB file is open to one process at a time and this connection is
        # serialised by `_lock`; holding it makes a resolution exclusive in the process
        # (its reads and apply re-enter the lock on the same thread).
        with self._lock:
            yield
