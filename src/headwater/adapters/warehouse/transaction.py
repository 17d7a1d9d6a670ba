"""Transactions of a SQL warehouse: one at a time per connection, errors mapped once.

`Transactions.run(what, body)` runs ``body(tx)`` in one transaction and commits it, or
rolls it back when the body called ``tx.discard()`` (a trial write, a speculative insert
that met an existing row).  When the body fails, the transaction is rolled back and the
engine's exception is translated by the engine's `map_error` into the error taxonomy of
`kernel.errors`: `RejectedData` (the engine refused a value: terminal, a data error) or
`WarehouseError` (transient).  `attempt` returns a refusal as a `Refused` value instead,
for the write path that isolates refused rows.  The engine's `_redo` may ask for the
failed transaction to be redone from scratch (it was rolled back, so that is safe).

Concurrency: one lock per connection (an RLock).  A call made inside an open transaction
on the thread that holds the lock joins that transaction; its failure is the outer
transaction's.
"""

from __future__ import annotations

import threading
import time
from abc import abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from headwater.adapters.warehouse.contract import WarehouseError
from headwater.adapters.warehouse.rejects import Refused, RejectedData
from headwater.kernel.errors import HeadwaterError

C = TypeVar("C")
#: How long `Transactions.interrupt` keeps ending the statements under way.
INTERRUPT_SECONDS = 10.0
R = TypeVar("R")


@dataclass
class Tx(Generic[C]):
    """An open transaction: the engine's handle and whether it is to be committed."""

    cur: C
    keep: bool = True

    def discard(self) -> None:
        """End this transaction with a rollback instead of a commit."""
        self.keep = False


@dataclass(frozen=True)
class _Failed:
    cause: Exception  # what the driver raised
    error: HeadwaterError  # what it means


class Transactions(Generic[C]):
    """Mixed into a SQL warehouse; the engine supplies the abstract methods."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._open: Tx[C] | None = None
        self._interrupted = threading.Event()

    def interrupt(self) -> None:
        """`Warehouse.interrupt`: every transaction from now on fails, and the engine
        ends the statement under way (`_interrupt_engine`, from this thread), again
        while one holds the connection (a statement sent just as the first request
        found none under way is ended too), for up to `INTERRUPT_SECONDS`."""
        self._interrupted.set()
        deadline = time.monotonic() + INTERRUPT_SECONDS
        while True:
            self._interrupt_engine()
            if self._lock.acquire(timeout=0.2):
                self._lock.release()  # no statement under way: later ones fail
                return
            if time.monotonic() > deadline:
                return

    def _check_interrupted(self) -> None:
        if self._interrupted.is_set():
            raise WarehouseError("the warehouse work was interrupted: its run was asked to stop")

    @abstractmethod
    def _interrupt_engine(self) -> None:
        """End the statement under way on the connection, if any (from any thread)."""

    @abstractmethod
    def _begin(self) -> C:
        """Start a transaction (connecting first if needed); its handle."""

    @abstractmethod
    def _end(self, cur: C, commit: bool) -> None:
        """Commit or roll back the open transaction."""

    @abstractmethod
    def _abandon(self, cur: C) -> None:
        """Roll back after a failure; never raises (a broken connection is let go)."""

    @abstractmethod
    def map_error(self, exc: Exception, what: str) -> HeadwaterError | None:
        """The engine's exception as `RejectedData` or `WarehouseError` (None: not the
        engine's, raised as it is).  `what` names the operation for the message."""

    @abstractmethod
    def _redo(self, exc: Exception, attempt: int) -> bool:
        """Whether to redo a transaction that failed with `exc` (attempt 0, 1...); it
        was rolled back.  False makes the mapped error the operation's."""

    def _forget_schema(self) -> None:
        """Drop what was cached about the schema after a rollback: the transaction may
        have changed it (now undone), or failed because another session changed it."""

    def _run(self, what: str, body: Callable[[Tx[C]], R]) -> R:
        """`body` in one transaction; raises `RejectedData` when the engine refused data."""
        done = self._attempt(what, body)
        if isinstance(done, Refused):
            raise RejectedData(done.reason)
        return done

    def _attempt(self, what: str, body: Callable[[Tx[C]], R]) -> R | Refused:
        """`body` in one transaction; a refusal of the engine comes back as `Refused`."""
        attempt = 0
        while True:
            with self._lock:
                if self._open is not None:  # nested: part of the caller's transaction
                    return body(self._open)
                done = self._once(what, body)
            if not isinstance(done, _Failed):
                return done
            if isinstance(done.error, RejectedData):
                return Refused(done.error.message)
            if not self._redo(done.cause, attempt):
                raise done.error from None
            attempt += 1

    def _once(self, what: str, body: Callable[[Tx[C]], R]) -> R | _Failed:
        try:
            self._check_interrupted()
            tx = Tx(self._begin())
        except Exception as exc:
            return self._failed(exc, what)
        self._open = tx
        try:
            value = body(tx)
            self._end(tx.cur, tx.keep)
            if not tx.keep:
                self._forget_schema()
        except Exception as exc:
            self._abandon(tx.cur)
            self._forget_schema()
            return self._failed(exc, what)
        except BaseException:
            self._abandon(tx.cur)
            raise
        finally:
            self._open = None
        return value

    def _failed(self, exc: Exception, what: str) -> _Failed:
        if isinstance(exc, RejectedData):  # raised while staging: the batch's values
            return _Failed(exc, exc)
        error = None if isinstance(exc, HeadwaterError) else self.map_error(exc, what)
        if error is None:
            raise exc
        return _Failed(exc, error)
