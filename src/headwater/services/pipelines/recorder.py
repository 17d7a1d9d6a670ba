"""Live run bookkeeping: counters and per-record errors, flushed to the store often."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from sqlalchemy import Engine

from headwater.adapters.store import runs
from headwater.kernel.records import Counters, RecordError, Step

Progress = Callable[[Counters], None]


class Recorder:
    """Counts and errors of one run; safe to use from the reader and writer threads."""

    def __init__(
        self, engine: Engine, run_id: str, on_progress: Progress | None, every: float = 0.5
    ) -> None:
        self.engine = engine
        self.run_id = run_id
        self.counters = Counters()
        self._on_progress = on_progress
        self._every = every
        self._pending: list[RecordError] = []
        self._stored = 0
        self._lock = threading.Lock()
        self._last = 0.0

    def error(self, source_id: str | None, step: Step, message: str) -> None:
        with self._lock:
            self.counters.fail(step)
            if self._stored + len(self._pending) < runs.MAX_STORED_ERRORS:
                self._pending.append(RecordError(source_id, step, message))

    def flush(self, force: bool = False) -> None:
        """Write counters (and the heartbeat) and new errors to the store, at most every
        `every` seconds unless forced."""
        now = time.monotonic()
        if not force and now - self._last < self._every:
            return
        self._last = now
        with self._lock:
            pending, self._pending = self._pending, []
            self._stored += len(pending)
            counters = self.counters.as_dict()
        runs.add_errors(self.engine, self.run_id, pending)
        runs.update_run(self.engine, self.run_id, counters=counters)
        if self._on_progress is not None:
            self._on_progress(self.counters)
