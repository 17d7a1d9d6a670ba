"""Counting refused deliveries, so a connection's webhook status shows them (how many
since the secret was stored, the latest one's time and reason) without a refusal
costing a write in the store.

A refusal is cheap on purpose (`limits`: anyone who knows a receiver URL can send
forged deliveries, and a flood of them must cost little), so it is counted in this
process's memory and the counts are written at most once per `interval` (one second):
the first refusal after a quiet spell starts a timer, and when it fires every
connection's count is added to the store in one transaction (`store.add_refusals`);
refusals counted meanwhile start the next timer once that write is done.
A flood of any size thus costs one store write a second per serving process, and the
status (API, CLI, console) lags the deliveries by at most that second.  The CLI reads
the store, not the server's memory, which is why the counts go there at all.

Only refusals to a connection with a stored secret are counted (an unknown id has no
status to show them on, and probing many ids must not grow this process's memory:
what is kept is one entry per endpoint).  A tally is tied to the secret it was judged
with (the endpoint's `created_at`), so counts judged before a new secret was stored
never land on the new one.

Concurrency: `add` is called from the API's request threads; the writes happen on a
`threading.Timer` thread of this object (one at a time), and on `close`, which the
serving process calls when it stops, so the last second's counts are not lost.  A
write that fails (the store unreachable) is logged and its counts kept for the next.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from headwater.adapters.store import webhooks as store

log = logging.getLogger(__name__)

#: At most one write of the counts per this many seconds.
FLUSH_SECONDS = 1.0


class RefusalCounter:
    """Refused deliveries per endpoint, kept in memory and written every `interval`."""

    def __init__(self, engine: Engine, interval: float = FLUSH_SECONDS) -> None:
        self._engine = engine
        self._interval = interval
        self._pending: dict[tuple[str, datetime], store.Refusals] = {}
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None
        self._closed = False

    def add(self, connection_id: str, since: datetime, reason: str, at: datetime) -> None:
        """Count one delivery to `connection_id` refused at `at` for `reason`, judged
        with the secret stored at `since`."""
        with self._lock:
            self._merge(store.Refusals(connection_id, since, 1, at, reason))
            self._schedule()

    def flush(self) -> None:
        """Write what is counted now (the timer does it; `close` too)."""
        with self._lock:
            taken = list(self._pending.values())
            self._pending.clear()
        if not taken:
            return
        try:
            store.add_refusals(self._engine, taken)
        except SQLAlchemyError:  # the store is down: keep the counts for the next write
            log.warning("could not record %d refused webhook deliveries", len(taken), exc_info=True)
            with self._lock:
                for tally in taken:
                    self._merge(tally)
                self._schedule()

    def close(self) -> None:
        """Stop the timer and write what is left (the serving process stops)."""
        with self._lock:
            self._closed = True
            timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()
        self.flush()

    def _schedule(self) -> None:
        """Under the lock: start the timer unless one runs (or the counter closed)."""
        if self._timer is None and not self._closed:
            self._timer = threading.Timer(self._interval, self._on_timer)
            self._timer.daemon = True
            self._timer.start()

    def _on_timer(self) -> None:
        # The next timer starts once this write is done: writes are `interval` apart
        # however long one takes (a store under load).
        self.flush()
        with self._lock:
            self._timer = None
            if self._pending:
                self._schedule()

    def _merge(self, tally: store.Refusals) -> None:
        """Under the lock: add `tally` to what is pending for its endpoint (the latest
        refusal's time and reason win)."""
        key = (tally.connection_id, tally.since)
        found = self._pending.get(key)
        if found is None:
            self._pending[key] = tally
            return
        newer = found if found.last_at > tally.last_at else tally
        count = found.count + tally.count
        self._pending[key] = store.Refusals(
            tally.connection_id, tally.since, count, newer.last_at, newer.last_reason
        )
