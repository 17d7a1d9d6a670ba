"""DuckDB warehouse: a file (or memory) database, bulk writes staged through Arrow.

What DuckDB does its own way, on top of the shared `SQLWarehouse`: one connection per
file and process, Arrow staging, a merge that counts new rows by the table's growth,
a memory limit that follows the unique indexes (`duckdb_memory`), and write conflicts
between two connections of one process (a claim meeting a write in flight), which
DuckDB reports instead of waiting: the transaction is redone until the other ends.
Tables are altered apart from every other transaction on the file (`duckdb_guard`).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from pathlib import Path
from typing import Any

import duckdb

from headwater.adapters.warehouse import ownership, rejects, sql
from headwater.adapters.warehouse.contract import WarehouseError, WriteBatch, WriteResult
from headwater.adapters.warehouse.duckdb_guard import schema_guard
from headwater.adapters.warehouse.duckdb_memory import (
    MAX_HEADROOM_MB,
    RESOLUTION_HEADROOM_MB,
    MemoryBound,
    file_lock,
    rebuild_mb,
)
from headwater.adapters.warehouse.duckdb_stage import TYPES, arrow_stage, readable, registered, run
from headwater.adapters.warehouse.duckdb_writes import delete_where, merge, upgrade
from headwater.adapters.warehouse.identity_values import Reserve
from headwater.adapters.warehouse.rejects import RejectedData, Staged
from headwater.adapters.warehouse.sql_warehouse import Landing, Params, SQLWarehouse, spelling_of
from headwater.kernel.errors import HeadwaterError
from headwater.kernel.model import PropertyType

Conn = duckdb.DuckDBPyConnection
#: How long a transaction that conflicts with another connection's write in flight
#: is redone (every `CONFLICT_PAUSE` seconds) before the conflict is an error.
CLAIM_WAIT_SECONDS = 30.0
CONFLICT_PAUSE = 0.05
#: How DuckDB's buffer manager says it ran out of memory ("... (9.4 MiB/9.5 MiB used)").
#: Inside COMMIT this comes as a `TransactionException` ("Failed to commit: failed to
#: pin block of size 256.0 KiB (...)"), not as an `OutOfMemoryException`.
_NO_MEMORY = re.compile(
    r"Failed to commit: (could not allocate|failed to (allocate|pin)) .*"
    r"\([\d.]+ \w+/[\d.]+ \w+ used\)"
)


def out_of_memory(exc: Exception) -> bool:
    """Whether DuckDB failed for want of memory (the transaction was rolled back)."""
    if isinstance(exc, duckdb.OutOfMemoryException):
        return True
    return isinstance(exc, duckdb.TransactionException) and bool(_NO_MEMORY.search(str(exc)))


def _named(name: str) -> str:
    return f"${name}"


class DuckDBWarehouse(SQLWarehouse[Conn]):
    """The `Warehouse` on DuckDB; one connection, serialised by a lock."""

    engine = "duckdb"
    types = TYPES
    spelling = spelling_of(TYPES, _named)
    stage = "hw_stage"
    ph = staticmethod(_named)

    def __init__(
        self,
        path: str | Path = ":memory:",
        *,
        schema: str = "headwater",
        checkpoint_mb: int = 512,
        memory_headroom_mb: int | None = 32,
        max_headroom_mb: int = MAX_HEADROOM_MB,
        after_merge: Callable[[], None] | None = None,
    ) -> None:
        """Open (or create) the database at `path`.

        `memory_headroom_mb` bounds DuckDB's memory to its unique indexes (which must
        stay in memory, about 50 bytes per identity with UUID profile keys) plus this
        headroom; the rest is cached or spilled to disk (measured: importing 1M
        identities peaks near 370 MB RSS for the whole importing process).  A
        transaction that runs out of memory doubles the headroom and is redone (up to
        `max_headroom_mb`), so a wide Customer Model costs memory, never a failed run.
        ``None`` leaves DuckDB's default (80% of RAM).  `after_merge`: see
        `SQLWarehouse`.
        """
        super().__init__(schema, after_merge)
        target = str(path)
        # What `file_lock` knows the database by (each in-memory one is its own).
        self._path = f":memory:{id(self)}" if target == ":memory:" else str(Path(target).resolve())
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
        self._memory = MemoryBound(memory_headroom_mb, max_headroom_mb)
        self._guard = schema_guard(self._path)
        self._guarded = False  # whether the open transaction holds it (shared)
        self._rebuild_headroom = 0  # set by `_rebuild_memory`
        with self._lock:
            self._memory.tune(self._conn)

    # -- transactions and errors -------------------------------------------------------

    def _begin(self) -> Conn:
        # Shared from BEGIN to the end: no table is altered under it (`duckdb_guard`).
        self._guard.acquire_shared()
        self._guarded = True
        try:
            self._conn.begin()
        except BaseException:
            self._unguard()
            raise
        return self._conn

    def _end(self, cur: Conn, commit: bool) -> None:
        try:
            if commit:
                cur.commit()
            else:
                cur.rollback()
        finally:
            self._unguard()

    def _abandon(self, cur: Conn) -> None:
        with suppress(duckdb.Error):  # a failed COMMIT has already ended it
            cur.rollback()
        self._unguard()

    def _unguard(self) -> None:
        if self._guarded:
            self._guarded = False
            self._guard.release_shared()

    def _altering(self) -> AbstractContextManager[None]:
        return self._guard.exclusive()

    def map_error(self, exc: Exception, what: str) -> HeadwaterError | None:
        if out_of_memory(exc):
            return WarehouseError(f"DuckDB ran out of memory: {str(exc).splitlines()[0]}")
        if isinstance(exc, duckdb.DataError | duckdb.IntegrityError):
            return RejectedData(rejects.message(f"DuckDB refused a value: {exc}"))
        if isinstance(exc, duckdb.Error):
            return WarehouseError(f"DuckDB {what} failed: {exc}")
        return None

    def _redo(self, exc: Exception, attempt: int) -> bool:
        if out_of_memory(exc):
            with self._lock:
                return self._memory.grow(self._conn)
        if isinstance(exc, duckdb.TransactionException) and "conflict" in str(exc).lower():
            # Another connection of this process changed the same row in a transaction
            # still open (DuckDB does not wait for row locks): wait for it to end.
            if attempt * CONFLICT_PAUSE >= CLAIM_WAIT_SECONDS:
                return False
            time.sleep(CONFLICT_PAUSE)
            return True
        return False

    # -- statements --------------------------------------------------------------------

    def _execute(self, cur: Conn) -> ownership.Execute:
        return lambda query, params: run(cur, query, params)

    def _table_columns(self, cur: Conn, table: str) -> list[tuple[str, str]]:
        rows = run(
            cur,
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position",
            [self.schema, table],
        )
        return [(r[0], r[1]) for r in rows]

    def _create_tables(self, cur: Conn) -> None:
        for statement in sql.create_tables(TYPES, self.schema):
            run(cur, statement)
        upgrade(cur, self.schema)

    @contextmanager
    def _staged(
        self, cur: Conn, staged: Staged, columns: dict[str, PropertyType]
    ) -> Iterator[None]:
        with registered(cur, self.stage, arrow_stage(staged, columns)):
            yield

    def _insert(self, cur: Conn, statement: str, params: Params) -> bool:
        try:
            run(cur, statement, params)
        except duckdb.ConstraintException:
            return False
        return True

    def _merge(self, cur: Conn, landing: Landing) -> int:
        return merge(cur, self.schema, landing)

    def _delete_where(self, cur: Conn, where: str, params: Params) -> int:
        return delete_where(cur, self.schema, where, params)

    def _fetch(self, cur: Conn, query: str, params: Params) -> list[dict[str, Any]]:
        columns = self._model_columns(cur)
        found = cur.execute(query, params)
        names = [d[0] for d in found.description or ()]
        rows = [dict(zip(names, row, strict=True)) for row in found.fetchall()]
        return readable(rows, columns)

    # -- what only DuckDB does ---------------------------------------------------------

    def write(self, batch: WriteBatch) -> WriteResult:
        result = super().write(batch)
        with self._lock:
            self._memory.wrote(self._conn)
        return result

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def _interrupt_engine(self) -> None:
        with suppress(duckdb.Error):  # closed meanwhile: nothing is under way
            self._conn.interrupt()

    def _rebuild_memory(self) -> AbstractContextManager[None]:
        # A full profile rebuild hashes and sorts the whole warehouse: more headroom.
        # It reads every identity: from the file, checkpointed first, rather than from
        # the write-ahead log's rows held in memory (less memory, faster scans).
        with self._lock:
            self._conn.execute("CHECKPOINT")
        self._rebuild_headroom = rebuild_mb(self.count())
        return self._memory.at_least(self._lock, self._conn, self._rebuild_headroom)

    def _rebuild_reserve(self) -> Reserve:
        def reserve(nbytes: int) -> None:
            # Inside `_rebuild_memory`'s `at_least`, which restores the headroom after.
            with self._lock:
                self._memory.raise_to(self._conn, self._rebuild_headroom + nbytes // 2**20)

        return reserve

    @contextmanager
    def resolution_lock(self) -> Iterator[None]:
        # A DuckDB file is open to one process at a time, but to every warehouse object
        # of that process (each run, the API, the console opens its own): the file's
        # lock in this process (`file_lock`) makes a resolution exclusive.  Its joins
        # get their own headroom: the writes' ran out and redid statements after a run.
        lock = file_lock(self._path)
        while not lock.acquire(timeout=0.1):  # another resolution's: `interrupt` ends it
            self._check_interrupted()
        try:
            with self._memory.at_least(self._lock, self._conn, RESOLUTION_HEADROOM_MB):
                yield
        finally:
            lock.release()
