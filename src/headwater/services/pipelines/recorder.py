"""Live run bookkeeping: counters and per-record errors, flushed to the store often.

Only the engine's thread uses a `Recorder` (the writer hands its results back to that
thread, see `writer.py`), so it needs no lock.  Progress updates are best effort: a
locked or unreachable store delays them (errors are kept for the next update), it never
fails the run; the run's ending is recorded by the engine, which retries it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable

from sqlalchemy import Engine

from headwater.adapters.store import progress, runs
from headwater.adapters.store.database import describe_error
from headwater.kernel.records import Counters, RecordError, Step

log = logging.getLogger(__name__)

Progress = Callable[[Counters], None]

#: After a progress update failed, the next is not tried before this many seconds.
BACKOFF_AFTER_FAILURE = 5.0


class Recorder:
    """Counts and errors of one run, used from the engine's thread only."""

    def __init__(
        self,
        engine: Engine,
        run_id: str,
        on_progress: Progress | None,
        every: float = 0.5,
        stored: Iterable[RecordError] = (),
        owner: str | None = None,
    ) -> None:
        """`stored`: the errors an earlier attempt of the run stored (it resumes after
        the service put it back in the queue and reads those records again): counted
        again when they recur, stored once.  `owner`: the claim the run holds; once it
        lost it (closed as lost), nothing more is stored."""
        self.engine = engine
        self.run_id = run_id
        self.owner = owner
        self.counters = Counters()
        self._on_progress = on_progress
        self._every = every
        self._pending: list[RecordError] = []
        self._stored = {(e.source_id, e.step, e.message) for e in stored}
        self._kept = len(self._stored)  # errors stored or pending, at most MAX_STORED_ERRORS
        self._next = 0.0
        self.skipped_updates = 0

    def error(self, source_id: str | None, step: Step, message: str) -> None:
        self.counters.fail(step)
        if (source_id, step, message) in self._stored:
            return
        if self._kept < progress.MAX_STORED_ERRORS:
            self._kept += 1
            self._pending.append(RecordError(source_id, step, message))

    def flush(self, force: bool = False) -> bool:
        """Write counters and new errors to the store, at most every `every` seconds
        unless forced; True when written.  A failure is logged and skipped."""
        now = time.monotonic()
        if not force and now < self._next:
            return False
        if self._on_progress is not None:
            self._on_progress(self.counters)
        try:
            held = runs.record_progress(
                self.engine, self.run_id, self.counters.as_dict(), self._pending, self.owner
            )
        except Exception as exc:  # best effort: the next update carries everything
            self.skipped_updates += 1
            self._next = now + BACKOFF_AFTER_FAILURE
            log.warning("run %s: progress update skipped (%s)", self.run_id, describe_error(exc))
            return False
        if not held:  # closed as lost: it keeps what it was closed with
            log.warning(
                "run %s: progress not stored (the run is no longer this one's)", self.run_id
            )
            self._next = now + self._every
            return False
        self._pending = []
        self._next = now + self._every
        return True

    def store_errors(self) -> None:
        """Store the errors no progress update stored yet; raises when the store fails
        (the run's ending retries it: unlike progress, the errors must not be lost)."""
        if self._pending:
            runs.add_errors(self.engine, self.run_id, self._pending, self.owner)
            self._pending = []
