"""DuckDB warehouse: a file (or memory) database, bulk writes staged through Arrow."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import duckdb
import pyarrow as pa

from headwater.adapters.warehouse import duckdb_memory, ownership, profile_store, rejects, sql
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
    readable,
    registered,
    run,
)
from headwater.adapters.warehouse.duckdb_writes import (
    NotFresh,
    delete_where,
    insert_new,
    merge,
    upgrade,
)
from headwater.adapters.warehouse.profile_methods import ProfileMethods
from headwater.adapters.warehouse.rejects import DryRun, RejectedData, stage_values, write_isolating
from headwater.adapters.warehouse.staging import check_row_columns, latest_rows
from headwater.kernel.errors import NotFound
from headwater.kernel.model import Column, PropertyType
from headwater.kernel.records import IdentityRow
from headwater.kernel.state import PipelineState

T = PropertyType
R = TypeVar("R")
log = logging.getLogger(__name__)
_STAGE = "hw_stage"


class _WriteConflict(WarehouseError):
    """Another connection of this process changed the same row in a transaction still open."""


#: How long a claim waits for another connection's write in flight on the owner row.
CLAIM_WAIT_SECONDS = 30.0


def _named(name: str) -> str:
    return f"${name}"


def _statements(conn: duckdb.DuckDBPyConnection) -> ownership.Execute:
    return lambda query, params: conn.execute(query, params).fetchall()


_SPELLING = profile_store.Spelling(
    _named, "VARCHAR", "BIGINT", "UUID", CASTS, DIALECT.types, "TIMESTAMPTZ"
)


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
            upgrade(conn, self.schema)
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
                except NotFresh:  # rolled back; some identity (or profile) existed
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
                upsert = insert_new if fresh else merge
                with registered(conn, _STAGE, arrow_stage(staged, columns)):
                    result.inserted, result.updated = upsert(
                        conn,
                        self.schema,
                        _STAGE,
                        batch,
                        columns,
                        len(staged.rows),
                        now,
                        self._after_merge,
                    )
                if not fresh:  # a batch of only new identities suggests the next one is too
                    self._fresh[batch.pipeline_id] = result.updated == 0
            if dry_run:
                raise DryRun
            if batch.deletes:
                result.deleted = delete_where(
                    conn,
                    self.schema,
                    "_pipeline_id = $1 AND list_contains($2, _source_id)",
                    [batch.pipeline_id, list(dict.fromkeys(batch.deletes))],
                )
        return result

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
            return delete_where(
                conn,
                self.schema,
                "_pipeline_id = $1 AND _run_id <> $2 AND _source_id NOT IN "
                "(SELECT id FROM hw_keep)",
                [pipeline_id, run_id],
            )

    @memory_bounded
    def delete_pipeline(self, pipeline_id: str) -> int:
        with self._transaction("deleting a pipeline") as conn:
            ownership.forget(_statements(conn), self.schema, _named, pipeline_id)
            return delete_where(conn, self.schema, "_pipeline_id = $1", [pipeline_id])

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
        return readable(rows, columns)

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

    def _rebuild_memory(self) -> AbstractContextManager[None]:
        return self._memory.at_least(self._lock, self._conn, duckdb_memory.rebuild_mb(self.count()))

    @contextmanager
    def resolution_lock(self) -> Iterator[None]:
        # A DuckDB file is open to one process at a time and this connection is
        # serialised by `_lock`; holding it makes a resolution exclusive in the process
        # (its reads and apply re-enter the lock on the same thread).
        with self._lock:
            yield
