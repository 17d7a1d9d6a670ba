"""A token bucket shared by every thread that talks to one Stripe account."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class TokenBucket:
    """Allows `rate` acquisitions per second on average, bursts of at most `burst`.

    Each `acquire` reserves the next free slot under a lock and then sleeps outside
    it, so waiting threads queue up fairly instead of spinning.
    """

    def __init__(
        self,
        rate: float,
        burst: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be positive, got {rate!r}")
        if burst < 1:
            raise ValueError(f"burst must be at least 1, got {burst!r}")
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._tokens = burst
        self._updated = clock()

    def reserve(self) -> float:
        """Take one token and return how long the caller must wait before using it."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.rate)
            self._updated = now
            self._tokens -= 1.0
            # A negative balance is a queue of reservations: wait until it is repaid.
            return 0.0 if self._tokens >= 0 else -self._tokens / self.rate

    def next_free(self) -> float:
        """The clock time at which a request could next be sent without waiting."""
        with self._lock:
            now = self._clock()
            tokens = min(self.burst, self._tokens + (now - self._updated) * self.rate)
            return now if tokens >= 1 else now + (1 - tokens) / self.rate

    def not_before(self, when: float) -> None:
        """Empty the bucket so that the next request waits until clock time `when`.

        Hands a budget over to another bucket (in another process: `time.monotonic`
        is the same clock machine-wide), so that together they never exceed `rate`.
        """
        with self._lock:
            now = self._clock()
            self._tokens = min(self._tokens, 1 - max(0.0, when - now) * self.rate)
            self._updated = now

    def acquire(self) -> float:
        """Block until a request may be sent; return the time waited."""
        wait = self.reserve()
        if wait > 0:
            self._sleep(wait)
        return wait
