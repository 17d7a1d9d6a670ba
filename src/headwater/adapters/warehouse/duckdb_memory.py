"""DuckDB's memory bound: its unique indexes plus a headroom that grows when needed.

DuckDB keeps the unique indexes of a table in memory; everything else is cached or
spilled to disk.  A fixed memory limit would fail once the indexes outgrow it, so the
limit follows them: the index memory plus a headroom, set on open and every
`TUNE_EVERY` writes.  A transaction that runs out of memory doubles the headroom and is
redone (the warehouse asks `grow`), up to the cap (`MAX_HEADROOM_MB` by default).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import duckdb

#: The memory headroom never grows past this (unless a warehouse is given its own cap).
MAX_HEADROOM_MB = 2048
#: Writes between two settings of the limit (a write adds at most ~1 MB of index).
TUNE_EVERY = 16
#: The headroom of a full profile rebuild, which hashes and sorts the whole warehouse:
#: with the writes' headroom it spills at every step (and may run out and be redone);
#: this much, plus `REBUILD_BYTES` per identity for the work tables and the profiles'
#: index (which must stay in memory as it grows), keeps it from running out and being
#: redone from the start.
REBUILD_HEADROOM_MB = 96
#: The headroom of a resolution after a run (its joins hash the probed keys and scan
#: the tables; with the writes' 32 MB they ran out at a million identities and were
#: redone, a statement at a time).
RESOLUTION_HEADROOM_MB = 96
REBUILD_BYTES = 100


def rebuild_mb(identities: int) -> int:
    """The headroom of a full rebuild of this many identities."""
    return REBUILD_HEADROOM_MB + identities * REBUILD_BYTES // 2**20


log = logging.getLogger(__name__)

_FILE_LOCKS: dict[str, threading.RLock] = {}
_FILE_LOCKS_LOCK = threading.Lock()


def file_lock(path: str) -> threading.RLock:
    """One lock per DuckDB file (its resolved path) in this process, shared by every
    connection to it."""
    with _FILE_LOCKS_LOCK:
        return _FILE_LOCKS.setdefault(path, threading.RLock())


class MemoryBound:
    """The headroom of one DuckDB connection (``None``: DuckDB's default limit).

    Not thread-safe: the warehouse calls it under its connection lock.
    """

    def __init__(self, headroom_mb: int | None, cap_mb: int = MAX_HEADROOM_MB) -> None:
        self.headroom = headroom_mb
        self.cap = cap_mb
        self._writes = 0

    def tune(self, conn: duckdb.DuckDBPyConnection) -> None:
        """Set DuckDB's memory limit to its index memory plus the headroom.

        Called on open and every `TUNE_EVERY` writes (`wrote`).  DuckDB refuses a limit
        below what it cannot free right now; the headroom then grows until the limit is
        accepted (or stays as it was at the cap).
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

    def wrote(self, conn: duckdb.DuckDBPyConnection) -> None:
        """A write committed: every `TUNE_EVERY` writes the limit follows the indexes."""
        self._writes += 1
        if self._writes % TUNE_EVERY == 0:
            self.tune(conn)

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

    def raise_to(self, conn: duckdb.DuckDBPyConnection, mb: int) -> None:
        """A headroom of at least `mb` (up to the cap) for a step known to need it: a
        step that ran out would redo its whole transaction (`grow`)."""
        if self.headroom is None or self.headroom >= min(mb, self.cap):
            return
        self.headroom = min(mb, self.cap)
        self.tune(conn)

    def double(self) -> bool:
        """Double the headroom; False when it is unbounded or already at the cap."""
        if self.headroom is None or self.headroom >= self.cap:
            return False
        self.headroom = min(self.headroom * 2, self.cap)
        return True

    def grow(self, conn: duckdb.DuckDBPyConnection) -> bool:
        """A transaction ran out of memory (and was rolled back): double the headroom
        and say whether redoing it may help (False at the cap or when unbounded)."""
        if not self.double():
            return False
        log.info("DuckDB ran out of memory; headroom raised to %s MB", self.headroom)
        self.tune(conn)
        return True
