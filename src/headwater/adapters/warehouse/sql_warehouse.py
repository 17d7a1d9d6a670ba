"""The skeleton every SQL warehouse shares; an engine fills in what differs.

Shared here: the transaction wrapper (one connection per object, serialised by a lock),
the column cache, model changes (`model_state`), ownership and saved state,
writes (speculative insert, then merge; refused rows isolated by `rejects`), deletes and
reads.  An engine subclass (``duckdb.py``, ``postgres.py``) supplies its connection, its
`TypeMapper`, one `map_error`, and the few statements it runs its own way (staging a
batch, the merge, deleting while recording pending identities), as dlt's
``SqlClientBase`` and ``TypeMapper`` do.

Concurrency: the lock is an RLock.  A call made on the thread that holds it inside an
open transaction (the write's `after_merge` hook reading the warehouse, say) joins that
transaction instead of starting one.

Errors are translated once, where a transaction fails: the engine's `map_error` turns
its driver's exception into `RejectedData` (a data error: terminal, never retried) or
`WarehouseError` (transient).  `_redo` says whether a failed transaction is worth
redoing from scratch (DuckDB out of memory, a conflicting write, a model another
session changed); nothing else is retried here.  The write path works with values:
`Refused` for a batch the engine refused, ``None`` for a speculative insert that met an
existing identity, ``commit=False`` for a trial that must roll back.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar, Generic, TypeVar

from headwater.adapters.warehouse import (
    model_columns,
    model_state,
    ownership,
    pending,
    profile_store,
    spelling,
    sql,
)
from headwater.adapters.warehouse.contract import (
    META_COLUMNS,
    Capabilities,
    WriteBatch,
    WriteResult,
)
from headwater.adapters.warehouse.model_state import ModelChange, ModelState
from headwater.adapters.warehouse.profile_methods import ProfileMethods
from headwater.adapters.warehouse.rejects import Refused, Staged, stage_values, write_isolating
from headwater.adapters.warehouse.staging import check_row_columns, latest_rows
from headwater.adapters.warehouse.transaction import Transactions, Tx
from headwater.kernel.model import Column, PropertyType
from headwater.kernel.records import IdentityRow
from headwater.kernel.state import PipelineState

C = TypeVar("C")
R = TypeVar("R")
Params = dict[str, Any]


def spelling_of(
    types: sql.TypeMapper, ph: ownership.Placeholder, **other: Any
) -> spelling.Spelling:
    """How `profile_store`'s statements spell an engine's placeholders and types."""
    return spelling.Spelling(
        ph,
        types.text,
        types.integer,
        types.profile_key,
        types.casts,
        types.columns,
        types.timestamptz,
        uuid_bits=types.uuid_bits,
        **other,
    )


@dataclass(frozen=True)
class Landing:
    """What the write statements need: the stage, the columns, the bound values."""

    stage: str
    names: list[str]
    casts: dict[str, str]
    params: Params
    count: int  # rows staged


class SQLWarehouse(ProfileMethods, Transactions[C], ABC, Generic[C]):
    """The `Warehouse` contract on a SQL engine; see contract.py for what each method
    promises.  ``C`` is the engine's handle to an open transaction."""

    engine: ClassVar[str]
    types: ClassVar[sql.TypeMapper]
    spelling: ClassVar[spelling.Spelling]
    #: Whether the engine cannot store NUL characters in text (PostgreSQL).
    nul_forbidden: ClassVar[bool] = False
    #: Whether a write gives a new identity its provisional profile id
    #: (`sql.identity_upsert`).  Not on PostgreSQL: there ``_profile_id`` is indexed, and
    #: a million random ids inserted into that index made the import three times slower
    #: while the rebuild's remaining update got no faster (docs/identity.md §11).
    provisional_ids: ClassVar[bool] = True
    #: The relation a batch is staged as, for the statements that read it.
    stage: ClassVar[str]
    #: How a read locks the `model_state` row against a concurrent change (`model_state`).
    model_lock: ClassVar[str] = ""

    def __init__(self, schema: str, after_merge: Callable[[], None] | None) -> None:
        """`after_merge`, when given, runs inside every write's transaction right after
        the identities were merged (and before deletes and commit): callers act at that
        instant, e.g. tests that inject a failure or a concurrent claim there."""
        super().__init__()
        self.schema = sql.check_schema(schema)
        self.capabilities = Capabilities(self.engine)
        self._s = sql.quote(self.schema)
        self._columns: dict[str, PropertyType] | None = None
        self._retyped: dict[str, str] = {}  # column -> why its values cannot be written
        # Per pipeline: whether the next batch is expected to hold only new identities.
        self._fresh: dict[str, bool] = {}
        self._after_merge = after_merge

    # -- what each engine supplies -----------------------------------------------------

    @staticmethod
    @abstractmethod
    def ph(name: str) -> str:
        """How the engine spells the named parameter `name`."""

    @abstractmethod
    def _execute(self, cur: C) -> ownership.Execute:
        """Run statements with named parameters in the open transaction."""

    @abstractmethod
    def _table_columns(self, cur: C, table: str) -> list[tuple[str, str]]:
        """(name, catalogue type) of a table's columns, in order."""

    @abstractmethod
    def _create_tables(self, cur: C) -> None:
        """Create the schema and tables if missing (and upgrade older ones)."""

    @abstractmethod
    def _staged(
        self, cur: C, staged: Staged, columns: dict[str, PropertyType]
    ) -> AbstractContextManager[None]:
        """Stage the batch as relation `stage` for the duration of the block."""

    @abstractmethod
    def _insert(self, cur: C, statement: str, params: Params) -> bool:
        """Run a plain INSERT; False when it met a unique key (then the transaction can
        only be rolled back)."""

    @abstractmethod
    def _merge(self, cur: C, landing: Landing) -> int:
        """Upsert the staged rows and record them as pending; how many were new."""

    @abstractmethod
    def _delete_where(self, cur: C, where: str, params: Params) -> int:
        """Delete matching identities, recording them (with their profile ids) as
        pending in the same transaction; how many were deleted."""

    @abstractmethod
    def _fetch(self, cur: C, query: str, params: Params) -> list[dict[str, Any]]:
        """Rows as dicts, as every engine returns them (JSON parsed, ids as text)."""

    # -- the column cache --------------------------------------------------------------

    def _model_columns(self, cur: C) -> dict[str, PropertyType]:
        if self._columns is None:
            self._columns = {
                name: self.types.from_column(kind)
                for name, kind in self._table_columns(cur, "identities")
                if name not in META_COLUMNS
            }
        return self._columns

    def _forget_schema(self) -> None:
        # A failure may come from a schema changed elsewhere: read it again next time.
        self._columns = None

    # -- model changes -----------------------------------------------------------------

    def ensure_columns(self, columns: Sequence[Column]) -> ModelState:
        for col in columns:
            sql.check_model_column(col.name)

        def body(tx: Tx[C], alter: bool) -> model_columns.Ensured | None:
            self._create_tables(tx.cur)
            return model_columns.ensure(self._tables(tx), columns, alter=alter)

        done = self._run("reading the tables", lambda tx: body(tx, False))
        if done is None:  # columns to add
            with self._altering():
                done = self._run("creating tables", lambda tx: body(tx, True))
        assert done is not None  # only a look that would alter gives up
        return self._ensured(done)

    def change_model(self, change: ModelChange) -> ModelState:
        model_columns.check_names(change)

        def body(tx: Tx[C]) -> model_columns.Ensured:
            self._create_tables(tx.cur)
            return model_columns.change(self._tables(tx), change)

        with self._altering():
            return self._ensured(self._run("changing the Customer Model's columns", body))

    def _tables(self, tx: Tx[C]) -> model_columns.Tables:
        def columns_of(table: str) -> list[tuple[str, str]]:
            return self._table_columns(tx.cur, table)

        execute, lock = self._execute(tx.cur), self.model_lock
        return model_columns.Tables(execute, columns_of, self.types, self.schema, self.ph, lock)

    def _ensured(self, done: model_columns.Ensured) -> ModelState:
        if done.retyped is not None:
            self._retyped = done.retyped
        self._columns = None
        return done.state

    def _altering(self) -> AbstractContextManager[None]:
        """Held around a transaction that alters tables (DuckDB: `duckdb_guard`)."""
        return nullcontext()

    # -- ownership ---------------------------------------------------------------------

    def claim(self, pipeline_id: str, run_id: str) -> PipelineState | None:
        ph, execute = self.ph, self._execute
        return self._run(
            "claim",
            lambda tx: ownership.claim(execute(tx.cur), self.schema, ph, pipeline_id, run_id),
        )

    def bind_workspace(self, workspace_id: str, *, take: bool = False) -> str | None:
        ph, execute, schema = self.ph, self._execute, self.schema
        return self._run(
            "binding to a workspace",
            lambda tx: ownership.bind_workspace(execute(tx.cur), schema, ph, workspace_id, take),
        )

    def pipeline_state(self, pipeline_id: str) -> ownership.OwnedState | None:
        return self._run(
            "read",
            lambda tx: ownership.read(self._execute(tx.cur), self.schema, self.ph, pipeline_id),
        )

    def _fence(self, tx: Tx[C], pipeline_id: str, run_id: str, state: PipelineState | None) -> None:
        # First in every owned transaction (see `ownership`).
        ownership.fence(self._execute(tx.cur), self.schema, self.ph, pipeline_id, run_id, state)

    # -- writes ------------------------------------------------------------------------

    def write(self, batch: WriteBatch) -> WriteResult:
        def attempt(rows: list[IdentityRow], commit: bool) -> WriteResult | Refused:
            return self._write_rows(batch, rows, commit)

        return write_isolating(latest_rows(batch.rows), attempt)

    def _write_rows(
        self, batch: WriteBatch, rows: list[IdentityRow], commit: bool
    ) -> WriteResult | Refused:
        """One transaction writing `rows` (rolled back unless `commit`).  A batch expected
        to hold only new identities is first tried with plain INSERTs (ON CONFLICT costs
        PostgreSQL about 1.6 times a plain insert and DuckDB about 3 times, and a first
        import is all new rows); the unique key guards the guess: on a clash that
        transaction rolls back and the batch is merged instead."""
        if commit and self._fresh.get(batch.pipeline_id, True):
            done = self._attempt("write", lambda tx: self._write_tx(tx, batch, rows, True, True))
            if done is not None:
                return done
            self._fresh[batch.pipeline_id] = False
        written = self._attempt("write", lambda tx: self._write_tx(tx, batch, rows, False, commit))
        assert written is not None  # only a speculative insert gives up
        return written

    def _write_tx(
        self, tx: Tx[C], batch: WriteBatch, rows: list[IdentityRow], fresh: bool, commit: bool
    ) -> WriteResult | None:
        self._fence(tx, batch.pipeline_id, batch.run_id, batch.state)
        if rows and batch.model is not None:
            model_state.check(self._execute(tx.cur), self.schema, batch.model, self.model_lock)
        columns = self._model_columns(tx.cur)
        check_row_columns(rows, columns)
        staged = stage_values(rows, columns, self.nul_forbidden, self._retyped)
        result = WriteResult(rejected=staged.rejected)
        if staged.rows:
            with self._staged(tx.cur, staged, columns):
                landing = self._landing(batch, columns, len(staged.rows))
                counts = self._land(tx, landing, fresh)
            if counts is None:  # not all new after all
                tx.discard()
                return None
            result.inserted, result.updated = counts
            if not fresh:  # a batch of only new identities suggests the next one is too
                self._fresh[batch.pipeline_id] = result.updated == 0
            if self._after_merge is not None:
                self._after_merge()
        if not commit:
            tx.discard()
            return result
        if batch.deletes:
            result.deleted = self._delete_where(
                tx.cur,
                f"_pipeline_id = {self.ph('p')} AND _source_id = ANY({self.ph('ids')})",
                {"p": batch.pipeline_id, "ids": list(dict.fromkeys(batch.deletes))},
            )
        return result

    def _landing(self, batch: WriteBatch, columns: dict[str, PropertyType], count: int) -> Landing:
        # Named parameters of an identity write: pipeline, connection, run, import time.
        params: Params = {"p": batch.pipeline_id, "c": batch.connection_id, "r": batch.run_id}
        params["n"] = datetime.now(UTC)
        casts = self.types.staged_casts(columns)
        return Landing(self.stage, list(columns), casts, params, count)

    def _land(self, tx: Tx[C], landing: Landing, fresh: bool) -> tuple[int, int] | None:
        """(inserted, updated), or None when a speculative insert met an identity."""
        if not fresh:
            inserted = self._merge(tx.cur, landing)
            return inserted, landing.count - inserted
        placeholders = (self.ph("p"), self.ph("c"), self.ph("r"), self.ph("n"))
        insert, _ = sql.identity_upsert(
            self.schema,
            self.stage,
            landing.names,
            placeholders,
            landing.casts,
            self.types.profile_key if self.provisional_ids else None,
            self.types.uuid_bits,
        )
        if not self._insert(tx.cur, insert, landing.params):
            return None
        self._execute(tx.cur)(
            pending.from_rows(self.schema, self.stage, pending.new_batch(), self.ph("p")),
            {"p": landing.params["p"]},
        )
        return landing.count, 0

    def purge_unseen(
        self,
        pipeline_id: str,
        run_id: str,
        keep: Collection[str] = (),
        state: PipelineState | None = None,
    ) -> int:
        def body(tx: Tx[C]) -> int:
            self._fence(tx, pipeline_id, run_id, state)
            # `<> ALL` over a bound array is hashed by both engines: big keep-sets are fine.
            return self._delete_where(
                tx.cur,
                f"_pipeline_id = {self.ph('p')} AND _run_id <> {self.ph('r')} "
                f"AND _source_id <> ALL({self.ph('keep')})",
                {"p": pipeline_id, "r": run_id, "keep": list(keep)},
            )

        return self._run("purge", body)

    def delete_pipeline(self, pipeline_id: str) -> int:
        def body(tx: Tx[C]) -> int:
            ownership.forget(self._execute(tx.cur), self.schema, self.ph, pipeline_id)
            return self._delete_where(tx.cur, f"_pipeline_id = {self.ph('p')}", {"p": pipeline_id})

        return self._run("deleting a pipeline", body)

    # -- reads -------------------------------------------------------------------------

    def _of_pipeline(self, pipeline_id: str | None) -> tuple[str, Params]:
        if pipeline_id is None:
            return "", {}
        return f"WHERE _pipeline_id = {self.ph('p')}", {"p": pipeline_id}

    def identities(self, pipeline_id: str | None = None) -> list[dict[str, Any]]:
        where, params = self._of_pipeline(pipeline_id)
        query = f"SELECT * FROM {self._s}.identities {where} ORDER BY _pipeline_id, _source_id"
        return self._run("read", lambda tx: self._fetch(tx.cur, query, params))

    def profiles(self) -> list[dict[str, Any]]:
        query = f"SELECT * FROM {self._s}.profiles ORDER BY _profile_id"
        return self._run("read", lambda tx: self._fetch(tx.cur, query, {}))

    def count(self, pipeline_id: str | None = None) -> int:
        where, params = self._of_pipeline(pipeline_id)
        return self._count(f"SELECT count(*) FROM {self._s}.identities {where}", params)

    def count_profiles(self) -> int:
        return self._count(f"SELECT count(*) FROM {self._s}.profiles", {})

    def _count(self, query: str, params: Params) -> int:
        found = self._run("count", lambda tx: self._execute(tx.cur)(query, params))
        return int(found[0][0]) if found else 0

    # -- identity resolution (methods in `profile_methods`) ----------------------------

    def _with_profile_args(self, what: str, fn: Callable[[profile_store.Args], R]) -> R:
        return self._run(
            what,
            lambda tx: fn(
                (self._execute(tx.cur), self.schema, self.spelling, self._model_columns(tx.cur))
            ),
        )
