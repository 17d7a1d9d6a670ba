"""PostgreSQL warehouse (psycopg 3): batches COPY into a temporary stage, then merge.

What PostgreSQL does its own way, on top of the shared `SQLWarehouse`: a connection
that reconnects when it broke, a session stage table kept while the model columns stay
the same, a merge that tells inserts from updates and records pending identities in one
statement, deletes that record them in the same statement, and a model changed by
another session (a cached column that no longer exists), after which the transaction is
redone once with the columns read again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Any

import orjson
import psycopg
import psycopg.errors
from psycopg.rows import dict_row
from psycopg.types.json import set_json_loads

from headwater.adapters.warehouse import ownership, pending, rejects, sql
from headwater.adapters.warehouse.contract import WarehouseError
from headwater.adapters.warehouse.postgres_stage import (
    EXTRA_DDL,
    STAGE,
    TYPES,
    copy_stage,
    create_stage,
    describe,
    on_postgres,
)
from headwater.adapters.warehouse.rejects import RejectedData, Staged
from headwater.adapters.warehouse.sql_warehouse import Landing, Params, SQLWarehouse, spelling_of
from headwater.adapters.warehouse.staging import hide_password
from headwater.kernel.errors import HeadwaterError
from headwater.kernel.model import PropertyType

Cursor = psycopg.Cursor[Any]


def _named(name: str) -> str:
    return f"%({name})s"


class PostgresWarehouse(SQLWarehouse[Cursor]):
    """The `Warehouse` on PostgreSQL; one autocommit connection, explicit transactions."""

    engine = "postgresql"
    types = TYPES
    spelling = on_postgres(
        spelling_of(
            TYPES,
            _named,
            array_from_json="CASE WHEN {0} IS NULL THEN NULL "
            "ELSE ARRAY(SELECT jsonb_array_elements_text(CAST({0} AS jsonb))) END",
        )
    )
    nul_forbidden = True
    model_lock = " FOR SHARE"  # a write waits for a model change under way, and it for them
    provisional_ids = False  # see `SQLWarehouse.provisional_ids`
    stage = STAGE
    ph = staticmethod(_named)

    def __init__(
        self,
        url: str,
        *,
        schema: str = "headwater",
        connect_timeout: int = 10,
        after_merge: Callable[[], None] | None = None,
    ) -> None:
        """Connect to `url` (`after_merge`: see `SQLWarehouse`)."""
        super().__init__(schema, after_merge)
        self._url = url
        self._timeout = connect_timeout
        self._conn: psycopg.Connection[Any] | None = None
        self._stage_sig: tuple[tuple[str, PropertyType], ...] | None = None
        self._connection()

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
                # jsonb keeps numbers as numeric and writes 1e300 out digit by digit;
                # json.loads made that a 301-digit int no JSON encoder of ours takes,
                # orjson reads a number past 64 bits as the float DuckDB reads back.
                set_json_loads(orjson.loads, self._conn)
            except psycopg.Error as exc:
                reason = hide_password(str(exc).strip().splitlines()[0] if str(exc) else "")
                raise WarehouseError(
                    f"cannot connect to PostgreSQL at {describe(self._url)}: {reason}"
                ) from None
        return self._conn

    # -- transactions and errors -------------------------------------------------------

    def _begin(self) -> Cursor:
        cur = self._connection().cursor()
        cur.execute("BEGIN")
        return cur

    def _end(self, cur: Cursor, commit: bool) -> None:
        cur.execute("COMMIT" if commit else "ROLLBACK")
        cur.close()

    def _interrupt_engine(self) -> None:
        conn = self._conn
        if conn is not None and not conn.closed:
            with suppress(psycopg.Error):  # closed or broken meanwhile: nothing to end
                conn.cancel_safe(timeout=5)

    def _abandon(self, cur: Cursor) -> None:
        with suppress(psycopg.Error):  # a broken connection is replaced on next use
            cur.execute("ROLLBACK")
            cur.close()

    def _forget_schema(self) -> None:
        super()._forget_schema()
        self._stage_sig = None

    def map_error(self, exc: Exception, what: str) -> HeadwaterError | None:
        if isinstance(exc, psycopg.errors.DataError | psycopg.errors.IntegrityError):
            return RejectedData(rejects.message(f"PostgreSQL refused a value: {exc}"))
        if isinstance(exc, psycopg.Error):
            return WarehouseError(hide_password(f"PostgreSQL {what} failed: {exc}"))
        return None

    def _redo(self, exc: Exception, attempt: int) -> bool:
        # A statement named a column that no longer exists: another session changed the
        # model since we cached it.  The failure dropped the cache; once more reads it.
        return isinstance(exc, psycopg.errors.UndefinedColumn) and attempt == 0

    # -- statements --------------------------------------------------------------------

    def _execute(self, cur: Cursor) -> ownership.Execute:
        def execute(query: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
            cur.execute(query, params)
            return list(cur.fetchall()) if cur.description else []

        return execute

    def _table_columns(self, cur: Cursor, table: str) -> list[tuple[str, str]]:
        cur.execute(
            "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
            "WHERE a.attrelid = to_regclass(%s) AND a.attnum > 0 AND NOT a.attisdropped "
            "ORDER BY a.attnum",
            (f"{self._s}.{table}",),
        )
        return [(r[0], r[1]) for r in cur.fetchall()]

    def _create_tables(self, cur: Cursor) -> None:
        # Serialise concurrent creators: CREATE ... IF NOT EXISTS can still race.
        cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"headwater:{self.schema}",))
        for statement in sql.create_tables(TYPES, self.schema, EXTRA_DDL):
            cur.execute(statement)

    @contextmanager
    def _staged(
        self, cur: Cursor, staged: Staged, columns: dict[str, PropertyType]
    ) -> Iterator[None]:
        sig = tuple(columns.items())
        if sig != self._stage_sig:
            create_stage(cur, sig)
        copy_stage(cur, staged, columns)
        self._stage_sig = sig  # the stage empties on commit (and on rollback)
        yield

    def _insert(self, cur: Cursor, statement: str, params: Params) -> bool:
        try:
            cur.execute(statement, params)
        except psycopg.errors.UniqueViolation:
            return False
        return True

    def _merge(self, cur: Cursor, landing: Landing) -> int:
        record = pending.from_rows(self.schema, "up", pending.new_batch(), _named("p"))
        placeholders = (_named("p"), _named("c"), _named("r"), _named("n"))
        statement = sql.merge_returning_counts(
            self.schema,
            STAGE,
            landing.names,
            placeholders,
            landing.casts,
            record,
            TYPES.profile_key,
        )
        cur.execute(statement, landing.params)
        found = cur.fetchone()
        return int(found[0]) if found else 0

    def _delete_where(self, cur: Cursor, where: str, params: Params) -> int:
        batch = pending.new_batch()
        cur.execute(
            f"WITH gone AS (DELETE FROM {self._s}.identities WHERE {where} "
            "RETURNING _pipeline_id, _source_id, _profile_id), "
            f"pend AS (INSERT INTO {self._s}.pending_identities (_batch, _pipeline_id, "
            f"_source_id, _profile_id) SELECT '{batch}', * FROM gone) SELECT count(*) FROM gone",
            params,
        )
        found = cur.fetchone()
        return int(found[0]) if found else 0

    def _fetch(self, cur: Cursor, query: str, params: Params) -> list[dict[str, Any]]:
        with cur.connection.cursor(row_factory=dict_row) as rows:
            rows.execute(query, params)
            return list(rows.fetchall())

    # -- what only PostgreSQL does -----------------------------------------------------

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    @contextmanager
    def resolution_lock(self) -> Iterator[None]:
        # A session-level advisory lock on this connection (autocommit), held from the
        # first read of a resolution to its `apply_profiles`: one resolution at a time
        # per warehouse schema, across processes (docs/identity.md §7).
        key = f"headwater-profiles:{self.schema}"
        self._run("taking the resolution lock", lambda tx: self._lock_statement(tx.cur, key))
        try:
            yield
        finally:
            self._run(
                "releasing the resolution lock",
                lambda tx: self._lock_statement(tx.cur, key, release=True),
            )

    @staticmethod
    def _lock_statement(cur: Cursor, key: str, release: bool = False) -> None:
        fn = "pg_advisory_unlock" if release else "pg_advisory_lock"
        cur.execute(f"SELECT {fn}(hashtext(%s))", (key,))
