"""The receiver's look-up of a connection's endpoint, kept a moment in this process.

Every delivery is verified before it is rate limited (`limits`), and verifying needs
the connection's workspace and its endpoint (two key look-ups in the store): so a
flood of forged deliveries to a real connection id was two store reads per delivery.
What the look-up found (the workspace, when the secret was stored, and the secret
*encrypted*, decrypted again for each delivery: no plaintext secret is kept), or that
the id names no connection with a secret (a miss), is kept `LOOKUP_SECONDS`, and one
look-up of an id runs at a time: a flood reads the store about once a second per id,
whatever its rate.  What was found is kept for at most `MAX_LOOKUPS` ids, misses for
at most `MAX_MISSES` apart (each the least recently used forgotten): anyone can post to
made-up ids, and were misses kept with what was found, a flood to more ids than the
bound would push the real connections out and have every real delivery read the store.

Storing or removing a secret, or deleting the connection, in this process forgets the
id's look-up at once (`forget`); another process's change is seen within
`LOOKUP_SECONDS`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from headwater.services.app import App
from headwater.services.webhooks.split_lru import SplitLRU

#: How long a look-up is kept.  A secret stored, rolled or removed through another
#: serving process (or the CLI) judges deliveries here within this time, which costs
#: nothing: Stripe retries a refused delivery for days.
LOOKUP_SECONDS = 1.0
#: The most ids whose endpoint was found and is kept (as `RateLimiter`'s `max_keys`).
MAX_LOOKUPS = 10_000
#: The most ids kept as naming no connection with a secret, apart from those found so
#: that misses never push them out.  A miss spares a store read only to a flood that
#: repeats its made-up ids; one spread over more ids reads the store once per new id
#: whatever the bound.  As many as `MAX_LOOKUPS`: a miss costs no more memory.
MAX_MISSES = 10_000


@dataclass(frozen=True)
class Endpoint:
    """What verifying a delivery needs of the connection's endpoint."""

    workspace_id: str
    since: datetime
    secret_encrypted: str


Key = tuple[str, str]
#: Look-ups (until when, what was found) in least recently used order.


class Lookups:
    """Look-ups by key, each kept `seconds`: at most `max_keys` that found an endpoint
    and, apart, at most `max_misses` that found none (in each the oldest forgotten)."""

    def __init__(
        self,
        seconds: float = LOOKUP_SECONDS,
        max_keys: int = MAX_LOOKUPS,
        clock: Callable[[], float] = time.monotonic,
        max_misses: int = MAX_MISSES,
    ) -> None:
        self._seconds = seconds
        self._clock = clock
        # Found entries and misses (None) apart: a flood of misses forgets only misses.
        self._kept: SplitLRU[Key, tuple[float, Endpoint | None]] = SplitLRU(max_keys, max_misses)
        self._loading: dict[Key, threading.Lock] = {}
        self._forgotten = 0  # how many times `forget` ran: a look-up begun before is not kept
        self._lock = threading.Lock()

    def get(self, key: Key, load: Callable[[], Endpoint | None]) -> Endpoint | None:
        """The kept look-up of `key`, or `load`'s (one at a time per key)."""
        with self._lock:
            kept = self._fresh(key)
            if kept is not None:
                return kept[1]
            loading = self._loading.setdefault(key, threading.Lock())
        with loading:
            with self._lock:
                kept = self._fresh(key)
                if kept is not None:  # another thread looked it up meanwhile
                    return kept[1]
                began, forgotten = self._clock(), self._forgotten
            found, loaded = None, False
            try:
                found, loaded = load(), True
            finally:
                # Kept as the lock is let go: a thread coming between would load again.
                with self._lock:
                    self._loading.pop(key, None)
                    if loaded and forgotten == self._forgotten:
                        self._keep(key, began + self._seconds, found)
        return found

    def forget(self, key: Key) -> None:
        """Look `key` up again on its next use (its endpoint changed)."""
        with self._lock:
            self._kept.pop(key)
            self._forgotten += 1

    def _fresh(self, key: Key) -> tuple[float, Endpoint | None] | None:
        entry = self._kept.get(key)
        if entry is None or entry[0] <= self._clock():
            return None
        return entry

    def _keep(self, key: Key, until: float, found: Endpoint | None) -> None:
        self._kept.put(key, (until, found), known=found is not None)


#: This process's look-ups, of every store it opens (keyed by the store's URL too).
LOOKUPS = Lookups()


def key(app: App, connection_id: str) -> Key:
    return (app.engine.url.render_as_string(hide_password=True), connection_id)


def forget(app: App, connection_id: str) -> None:
    """The connection's endpoint changed: the next delivery looks it up again."""
    LOOKUPS.forget(key(app, connection_id))
