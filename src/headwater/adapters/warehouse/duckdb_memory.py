"""DuckDB's memory bound: its unique indexes plus a headroom that grows when needed.

DuckDB keeps the unique indexes of a table in memory; everything else is cached or
spilled to disk.  A fixed memory limit would fail once the indexes outgrow it, so the
limit follows them: the index memory plus a headroom.  A write that runs out of memory
doubles the headroom and is redone (`memory_bounded`), up to `MAX_HEADROOM_MB`.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

import duckdb

from headwater.adapters.warehouse.contract import WarehouseError

#: The memory headroom never grows past this.
MAX_HEADROOM_MB = 2048
#: The headroom of a full profile rebuild, which hashes and sorts the whole warehouse:
#: with the writes' headroom it spills at every step (and may run out and be redone);
#: this much, plus `REBUILD_BYTES` per identity for the work tables and the profiles'
#: index (which must stay in memory as it grows), keeps it from running out and being
#: redone from the start.
REBUILD_HEADROOM_MB = 96
REBUILD_BYTES = 160


def rebuild_mb(identities: int) -> int:
    """The headroom of a full rebuild of this many identities."""
    return REBUILD_HEADROOM_MB + identities * REBUILD_BYTES // 2**20


P = ParamSpec("P")
R = TypeVar("R")
log = logging.getLogger(__name__)


class OutOfMemory(Exception):
    """DuckDB hit its memory limit; the transaction was rolled back (internal)."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class _Grows(Protocol):
    def _grow_headroom(self, detail: str) -> None: ...


G = TypeVar("G", bound=_Grows)


def memory_bounded(method: Callable[Concatenate[G, P], R]) -> Callable[Concatenate[G, P], R]:
    """Redo a public operation whose transaction ran out of memory, with more headroom.

    The failed transaction was rolled back, so redoing it is safe; only the outermost
    transaction turns DuckDB's error into `OutOfMemory`, so nested calls never retry
    inside a failed transaction.
    """

    def bounded(self: G, /, *args: P.args, **kwargs: P.kwargs) -> R:
        while True:
            try:
                return method(self, *args, **kwargs)
            except OutOfMemory as exc:
                self._grow_headroom(exc.detail)

    functools.update_wrapper(bounded, method)
    return bounded


class MemoryBound:
    """The headroom of one DuckDB connection (``None``: DuckDB's default limit).

    Not thread-safe: the warehouse calls it under its connection lock.
    """

    def __init__(self, headroom_mb: int | None) -> None:
        self.headroom = headroom_mb

    def tune(self, conn: duckdb.DuckDBPyConnection) -> None:
        """Set DuckDB's memory limit to its index memory plus the headroom.

        Called on open and every few writes (a write adds at most ~1 MB of index).
        DuckDB refuses a limit below what it cannot free right now; the headroom then
        grows until the limit is accepted (or stays as it was at the cap).
        """
        if self.headroom is None:
            return
        found = conn.execute(
            "SELECT coalesce(sum(memory_usage_bytes), 0) FROM duckdb_memory() "
            "WHERE tag = 'ART_INDEX'"
        ).fetchall()
        indexes_mb = int(found[0][0] * 1.1) // 2**20
        while True:
            try:
                conn.execute(f"SET memory_limit = '{indexes_mb + self.headroom}MB'")
                return
            except duckdb.OutOfMemoryException:
                if not self.double():
                    return  # at the cap: keep the limit in force

    @contextmanager
    def at_least(
        self, lock: AbstractContextManager[Any], conn: duckdb.DuckDBPyConnection, mb: int
    ) -> Iterator[None]:
        """A headroom of at least `mb` for what runs inside (then the one before)."""
        with lock:
            before = self.headroom
            if before is not None and before < mb:
                self.headroom = mb
                self.tune(conn)
            try:
                yield
            finally:
                self.headroom = before
                self.tune(conn)

    def double(self) -> bool:
        """Double the headroom; False when it is unbounded or already at the cap."""
        if self.headroom is None or self.headroom >= MAX_HEADROOM_MB:
            return False
        self.headroom = min(self.headroom * 2, MAX_HEADROOM_MB)
        return True

    def grow(self, conn: duckdb.DuckDBPyConnection, detail: str) -> None:
        """A transaction ran out of memory: double the headroom, or fail at the cap."""
        if not self.double():
            raise WarehouseError(f"DuckDB ran out of memory: {detail}")
        log.info("DuckDB ran out of memory; headroom raised to %s MB", self.headroom)
        self.tune(conn)
