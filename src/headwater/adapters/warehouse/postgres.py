"""PostgreSQL warehouse (psycopg 3): batches COPY into a temporary stage, then merge."""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar

import psycopg
import psycopg.errors
from psycopg.rows import dict_row

from headwater.adapters.warehouse import ownership, pending, profile_store, rejects, sql
from headwater.adapters.warehouse.contract import (
    META_COLUMNS,
    Capabilities,
    WarehouseError,
    WriteBatch,
    WriteResult,
)
from headwater.adapters.warehouse.postgres_stage import (
    DIALECT,
    FROM_SQL,
    STAGE,
    copy_stage,
    create_stage,
    describe,
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
    hide_password,
    latest_rows,
)
from headwater.kernel.errors import NotFound
from headwater.kernel.model import Column, PropertyType
from headwater.kernel.records import IdentityRow
from headwater.kernel.state import PipelineState

T = PropertyType
R = TypeVar("R")
# Placeholders of pipeline id, connection id, run id and import time (see `_params`).
_PARAMS = ("%(p)s", "%(c)s", "%(r)s", "%(n)s")


def _named(name: str) -> str:
    return f"%({name})s"


def _statements(cur: psycopg.Cursor[Any]) -> ownership.Execute:
    def execute(query: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        cur.execute(query, params)
        return list(cur.fetchall()) if cur.description else []

    return execute


_SPELLING = profile_store.on_postgres(
    profile_store.Spelling(
        _named,
        "text",
        "bigint",
        "text",
        {T.JSON: "jsonb"},
        DIALECT.types,
        array_from_json="CASE WHEN {0} IS NULL THEN NULL "
        "ELSE ARRAY(SELECT jsonb_array_elements_text(CAST({0} AS jsonb))) END",
    )
)


class _StaleColumns(WarehouseError):
    """A statement named a column that no longer exists (the model changed elsewhere)."""


class PostgresWarehouse(ProfileMethods):
    """The `Warehouse` on PostgreSQL; one autocommit connection, explicit transactions."""

    def __init__(self, url: str, *, schema: str = "headwater", connect_timeout: int = 10) -> None:
        self.schema = sql.check_schema(schema)
        self.capabilities = Capabilities("postgresql", "copy", True, self.schema)
        self._url = url
        self._timeout = connect_timeout
        self._lock = threading.RLock()
        self._conn: psycopg.Connection[Any] | None = None
        self._columns: dict[str, PropertyType] | None = None
        self._stage_sig: tuple[tuple[str, PropertyType], ...] | None = None
        # Per pipeline: whether the next batch is expected to hold only new identities.
        self._fresh: dict[str, bool] = {}
        # Test hook: called inside the write transaction right after the identity merge.
        self._after_merge: Callable[[], None] | None = None
        self._s = sql.quote(self.schema)
        self._connection()

    # -- plumbing --------------------------------------------------------------------

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._stage_sig = None  # temp tables die with their session
            try:
                self._conn = psycopg.connect(
                    self._url,
                    autocommit=True,
                    connect_timeout=self._timeout,
                    options="-c TimeZone=UTC",
                )
            except psycopg.Error as exc:
                reason = hide_password(str(exc).strip().splitlines()[0] if str(exc) else "")
                raise WarehouseError(
                    f"cannot connect to PostgreSQL at {describe(self._url)}: {reason}"
                ) from None
        return self._conn

    @contextmanager
    def _transaction(self, what: str) -> Iterator[psycopg.Cursor[Any]]:
        with self._lock:
            conn = self._connection()
            try:
                with conn.transaction(), conn.cursor() as cur:
                    yield cur
            except BaseException as exc:
                self._columns = None
                self._stage_sig = None
                if isinstance(exc, psycopg.errors.DataError | psycopg.errors.IntegrityError):
                    raise RejectedData(
                        rejects.message(f"PostgreSQL refused a value: {exc}")
                    ) from None
                if isinstance(exc, psycopg.errors.UndefinedColumn):
                    raise _StaleColumns(hide_password(f"PostgreSQL {what} failed: {exc}")) from None
                if isinstance(exc, psycopg.Error):
                    raise WarehouseError(
                        hide_password(f"PostgreSQL {what} failed: {exc}")
                    ) from None
                raise

    def _model_columns(self, cur: psycopg.Cursor[Any]) -> dict[str, PropertyType]:
        if self._columns is None:
            self._columns = {
                name: FROM_SQL.get(kind, T.STRING)
                for name, kind in self._table_columns(cur, "identities")
                if name not in META_COLUMNS
            }
        return self._columns

    def _table_columns(self, cur: psycopg.Cursor[Any], table: str) -> list[tuple[str, str]]:
        cur.execute(
            "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
            "WHERE a.attrelid = to_regclass(%s) AND a.attnum > 0 AND NOT a.attisdropped "
            "ORDER BY a.attnum",
            (f"{self._s}.{table}",),
        )
        return [(r[0], r[1]) for r in cur.fetchall()]

    # -- model changes ---------------------------------------------------------------

    def ensure_columns(self, columns: Sequence[Column]) -> None:
        for col in columns:
            sql.check_model_column(col.name)
        with self._transaction("creating tables") as cur:
            # Serialise concurrent creators: CREATE ... IF NOT EXISTS can still race.
            cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"headwater:{self.schema}",))
            for stmt in sql.create_tables(DIALECT, self.schema):
                cur.execute(stmt)
            for table in ("identities", "profiles"):
                have = {name for name, _ in self._table_columns(cur, table)}
                for col in columns:
                    if col.name not in have:
                        cur.execute(sql.add_column(DIALECT, self.schema, table, col))
            self._columns = None

    def rename_column(self, old: str, new: str) -> None:
        sql.check_model_column(old, "old")
        sql.check_model_column(new, "new")
        with self._transaction("renaming a column") as cur:
            for table in ("identities", "profiles"):
                have = {name for name, _ in self._table_columns(cur, table)}
                if old in have:
                    cur.execute(sql.rename_column(self.schema, table, old, new))
                elif new not in have:
                    raise NotFound(f"column {old!r} does not exist in {self.schema}.{table}")
            self._columns = None

    def drop_column(self, name: str) -> None:
        sql.check_model_column(name)
        with self._transaction("dropping a column") as cur:
            for table in ("identities", "profiles"):
                cur.execute(sql.drop_column(self.schema, table, name))
            self._columns = None

    # -- writes ----------------------------------------------------------------------

    def write(self, batch: WriteBatch) -> WriteResult:
        rows = latest_rows(batch.rows)

        def attempt(part: list[IdentityRow], dry_run: bool) -> WriteResult:
            return self._write(batch, part, dry_run)

        try:
            return write_isolating(rows, attempt)
        except _StaleColumns:
            # Another session changed the model since we cached it; the failed attempt
            # rolled back and dropped the cache, so one retry sees the new columns.
            return write_isolating(rows, attempt)

    def _write(self, batch: WriteBatch, rows: list[IdentityRow], dry_run: bool) -> WriteResult:
        result = WriteResult()
        with self._transaction("write") as cur:
            # First: the owner row stays locked until commit (a takeover waits for us).
            ownership.fence(
                _statements(cur), self.schema, _named, batch.pipeline_id, batch.run_id, batch.state
            )
            columns = self._model_columns(cur)
            check_row_columns(rows, columns)
            staged = stage_values(rows, columns, nul_forbidden=True)
            result.rejected = staged.rejected
            sig = tuple(columns.items())
            if staged.rows:
                if sig != self._stage_sig:
                    create_stage(cur, sig)
                copy_stage(cur, staged, columns)
                self._stage_sig = sig
                if dry_run or not self._insert_new(cur, batch, columns, result):
                    self._merge(cur, batch, columns, result)
            if dry_run:
                raise DryRun
            if batch.deletes:
                result.deleted = self._delete_where(
                    cur,
                    "_pipeline_id = %s AND _source_id = ANY(%s)",
                    (batch.pipeline_id, list(dict.fromkeys(batch.deletes))),
                )
        return result

    def _insert_new(
        self,
        cur: psycopg.Cursor[Any],
        batch: WriteBatch,
        columns: dict[str, PropertyType],
        result: WriteResult,
    ) -> bool:
        """Plain INSERTs when the batch is expected to hold only new identities.

        ON CONFLICT costs PostgreSQL about 1.6 times a plain insert, and a first import
        is all new rows.  The unique keys guard the guess: on a clash the savepoint is
        rolled back (the stage stays) and this returns False so the caller merges.
        """
        if not self._fresh.get(batch.pipeline_id, True):
            return False
        names = list(columns)
        casts = {n: "jsonb" for n, t in columns.items() if t is T.JSON}
        insert, _ = sql.identity_upsert(self.schema, STAGE, names, _PARAMS, casts)
        params = self._params(batch)
        try:
            with cur.connection.transaction():  # a savepoint
                cur.execute(insert, params)
                result.inserted = cur.rowcount
        except psycopg.errors.UniqueViolation:
            self._fresh[batch.pipeline_id] = False
            result.inserted = 0
            return False
        if self._after_merge is not None:
            self._after_merge()
        cur.execute(pending.from_rows(self.schema, STAGE, pending.new_batch(), "%(p)s"), params)
        return True

    def _params(self, batch: WriteBatch) -> dict[str, Any]:
        return {
            "p": batch.pipeline_id,
            "c": batch.connection_id,
            "r": batch.run_id,
            "n": datetime.now(UTC),
        }

    def _merge(
        self,
        cur: psycopg.Cursor[Any],
        batch: WriteBatch,
        columns: dict[str, PropertyType],
        result: WriteResult,
    ) -> None:
        names = list(columns)
        casts = {n: "jsonb" for n, t in columns.items() if t is T.JSON}
        record = pending.from_rows(self.schema, "up", pending.new_batch(), "%(p)s")
        merge = sql.merge_returning_counts(self.schema, STAGE, names, _PARAMS, casts, record)
        cur.execute(merge, self._params(batch))
        found = cur.fetchone()
        inserted, total = (int(found[0]), int(found[1])) if found else (0, 0)
        result.inserted, result.updated = inserted, total - inserted
        # A batch of only new identities suggests the next one is new too (an import).
        self._fresh[batch.pipeline_id] = result.updated == 0
        if self._after_merge is not None:
            self._after_merge()

    def _delete_where(self, cur: psycopg.Cursor[Any], where: str, params: tuple[Any, ...]) -> int:
        """Delete matching identities, recording them (and the profile ids they were in)
        as pending in the same statement: their profiles are resolution's to fix."""
        s, batch = self._s, pending.new_batch()
        cur.execute(
            f"WITH gone AS (DELETE FROM {s}.identities WHERE {where} "
            "RETURNING _pipeline_id, _source_id, _profile_id), "
            f"pend AS (INSERT INTO {s}.pending_identities (_batch, _pipeline_id, _source_id, "
            f"_profile_id) SELECT '{batch}', * FROM gone) SELECT count(*) FROM gone",
            params,
        )
        found = cur.fetchone()
        return int(found[0]) if found else 0

    def claim(self, pipeline_id: str, run_id: str) -> PipelineState | None:
        with self._transaction("claim") as cur:
            return ownership.claim(_statements(cur), self.schema, _named, pipeline_id, run_id)

    def pipeline_state(self, pipeline_id: str) -> ownership.OwnedState | None:
        with self._transaction("read") as cur:
            return ownership.read(_statements(cur), self.schema, _named, pipeline_id)

    def purge_unseen(
        self,
        pipeline_id: str,
        run_id: str,
        keep: Collection[str] = (),
        state: PipelineState | None = None,
    ) -> int:
        with self._transaction("purge") as cur:
            ownership.fence(_statements(cur), self.schema, _named, pipeline_id, run_id, state)
            # `<> ALL` over a bound array is hashed by PostgreSQL, so big keep-sets are fine.
            return self._delete_where(
                cur,
                "_pipeline_id = %s AND _run_id <> %s AND _source_id <> ALL(%s)",
                (pipeline_id, run_id, list(keep)),
            )

    def delete_pipeline(self, pipeline_id: str) -> int:
        with self._transaction("deleting a pipeline") as cur:
            ownership.forget(_statements(cur), self.schema, _named, pipeline_id)
            return self._delete_where(cur, "_pipeline_id = %s", (pipeline_id,))

    # -- reads -----------------------------------------------------------------------

    def identities(self, pipeline_id: str | None = None) -> list[dict[str, Any]]:
        where, params = ("WHERE _pipeline_id = %s", (pipeline_id,)) if pipeline_id else ("", ())
        return self._select(
            f"SELECT * FROM {self._s}.identities {where} ORDER BY _pipeline_id, _source_id",
            params,
        )

    def profiles(self) -> list[dict[str, Any]]:
        return self._select(f"SELECT * FROM {self._s}.profiles ORDER BY _profile_id", ())

    def _select(self, query: str, params: tuple[Any, ...]) -> list[dict[str, Any]]:
        with self._lock, self._transaction("read") as cur:
            cur.row_factory = dict_row
            cur.execute(query, params)
            return list(cur.fetchall())

    def count(self, pipeline_id: str | None = None) -> int:
        where, params = ("WHERE _pipeline_id = %s", (pipeline_id,)) if pipeline_id else ("", ())
        with self._transaction("count") as cur:
            cur.execute(f"SELECT count(*) FROM {self._s}.identities {where}", params)
            found = cur.fetchone()
        return int(found[0]) if found else 0

    def count_profiles(self) -> int:
        with self._transaction("count") as cur:
            cur.execute(f"SELECT count(*) FROM {self._s}.profiles")
            found = cur.fetchone()
        return int(found[0]) if found else 0

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    # -- identity resolution (methods in `profile_methods`) ----------------------------

    def _with_profile_args(self, what: str, fn: Callable[[profile_store.Args], R]) -> R:
        with self._transaction(what) as cur:
            return fn((_statements(cur), self.schema, _SPELLING, self._model_columns(cur)))

    @contextmanager
    def resolution_lock(self) -> Iterator[None]:
        # A session-level advisory lock on this connection (autocommit), held from the
        # first read of a resolution to its `apply_profiles`: one resolution at a time
        # per warehouse schema, across processes (docs/identity.md §7).
        key = f"headwater-profiles:{self.schema}"
        with self._transaction("taking the resolution lock") as cur:
            cur.execute("SELECT pg_advisory_lock(hashtext(%s))", (key,))
        try:
            yield
        finally:
            with self._transaction("releasing the resolution lock") as cur:
                cur.execute("SELECT pg_advisory_unlock(hashtext(%s))", (key,))
