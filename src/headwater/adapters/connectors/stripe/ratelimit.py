"""A connection's request budget, shared by every thread (and handed between processes).

Stripe counts requests per second.  A budget of `rate` requests/s is kept as a sliding
window: at most `rate` requests in any one second (for a rate that is not a whole
number, at most ``floor(rate)`` in any ``floor(rate) / rate`` seconds; under 1/s, one
per ``1 / rate`` seconds).  A token bucket refilling one token every ``1 / rate``
seconds keeps that too, but it spends nothing of the seconds a read spends waiting
(for its first page, its last answers): those slots are gone.  A window lets the
requests that could not go while nothing was ready go later in the same second, so a
read's `n` requests take ``n / rate`` seconds, not ``n / rate`` plus every wait; to keep
bursts gentle, two requests are never closer than half the average spacing.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable

#: Two requests are never closer than this share of the average spacing ``1 / rate``.
CLOSEST = 0.5


class RequestBudget:
    """Hands out send times: each `acquire` blocks until its request may go.

    Each `reserve` takes the next free send time under a lock and the caller sleeps
    outside it, so waiting threads queue up fairly instead of spinning.
    """

    def __init__(
        self,
        rate: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not (math.isfinite(rate) and rate > 0):
            raise ValueError(f"rate must be positive, got {rate!r}")
        self.rate = rate
        #: At most `count` requests in any `span` seconds (one second for whole rates).
        self.count = max(1, math.floor(rate))
        self.span = self.count / rate
        self.closest = CLOSEST / rate
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._sent: deque[float] = deque(maxlen=self.count)  # the last send times

    def _free(self, now: float) -> float:
        """The first time from `now` at which one more request keeps the window."""
        sent = self._sent
        if not sent:
            return now
        free = max(now, sent[-1] + self.closest)
        if len(sent) == self.count:
            free = max(free, sent[0] + self.span)
        return free

    def reserve(self) -> float:
        """Take the next send time; return how long the caller must wait for it."""
        with self._lock:
            now = self._clock()
            at = self._free(now)
            self._sent.append(at)
            return at - now

    def history(self) -> list[float]:
        """The send times that still bound the next ones (`time.monotonic`, the same
        clock machine-wide), to hand the budget over to another process (`adopt`)."""
        with self._lock:
            return list(self._sent)

    def adopt(self, sent: Iterable[float]) -> None:
        """Count requests sent elsewhere on the same budget (another process's
        `history`), so that together the two never exceed `rate`."""
        with self._lock:
            merged = sorted({*self._sent, *(float(at) for at in sent)})
            self._sent = deque(merged[-self.count :], maxlen=self.count)

    def acquire(self) -> float:
        """Block until a request may be sent; return the time waited."""
        wait = self.reserve()
        if wait > 0:
            self._sleep(wait)
        return wait
