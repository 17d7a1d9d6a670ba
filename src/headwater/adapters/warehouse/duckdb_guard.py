"""Table changes apart from every other transaction on one DuckDB file, in this process.

DuckDB does not wait for locks.  A transaction that wrote rows and commits after another
connection altered the same table (a Customer Model change) fails its commit, and
DuckDB 1.x can then fail to revert it ("database has been invalidated", every later
statement refused until the file is reopened).  So, per file, the statements that alter
tables (`DuckDBWarehouse.ensure_columns`, `change_model`) hold the file's guard
exclusively, and every other transaction holds it shared from its BEGIN to its end.

Concurrency boundary: the guard is shared by every connection to the file in this
process (one process holds a DuckDB file).  A waiting exclusive holder keeps new
shared holders out, so a model change is not starved by a stream of writes; a thread
already holding the guard (shared or exclusive) may take it shared again (nested
transactions on another connection never wait for themselves).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class SchemaGuard:
    """A shared/exclusive lock; see the module docstring."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._shared: dict[int, int] = {}  # thread id -> how many times it holds it
        self._owner: int | None = None  # the thread holding it exclusively
        self._depth = 0
        self._queued = 0  # threads waiting to hold it exclusively

    def acquire_shared(self) -> None:
        me = threading.get_ident()
        with self._cond:
            if self._owner != me and me not in self._shared:
                while self._owner is not None or self._queued:
                    self._cond.wait()
            self._shared[me] = self._shared.get(me, 0) + 1

    def release_shared(self) -> None:
        me = threading.get_ident()
        with self._cond:
            left = self._shared[me] - 1
            if left:
                self._shared[me] = left
            else:
                del self._shared[me]
                self._cond.notify_all()

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        me = threading.get_ident()
        with self._cond:
            if self._owner != me:
                self._queued += 1
                try:
                    while self._owner is not None or any(t != me for t in self._shared):
                        self._cond.wait()
                finally:
                    self._queued -= 1
                self._owner = me
            self._depth += 1
        try:
            yield
        finally:
            with self._cond:
                self._depth -= 1
                if not self._depth:
                    self._owner = None
                    self._cond.notify_all()


_GUARDS: dict[str, SchemaGuard] = {}
_GUARDS_LOCK = threading.Lock()


def schema_guard(path: str) -> SchemaGuard:
    """The guard of one DuckDB file (its resolved path) in this process."""
    with _GUARDS_LOCK:
        return _GUARDS.setdefault(path, SchemaGuard())
