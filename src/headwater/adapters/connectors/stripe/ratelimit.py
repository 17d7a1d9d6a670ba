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

A budget `shared` through a file is the budget of every process that names that file:
the send times live in it, read and written under an exclusive ``flock`` at each
`reserve` (`time.monotonic` is one clock machine-wide), so two runs of one connection
at once, and their reading processes, keep its rate together instead of each at the
full rate (tens of microseconds a request: nothing against Stripe's round trips).
"""

from __future__ import annotations

import fcntl
import math
import os
import struct
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from pathlib import Path

#: Two requests are never closer than this share of the average spacing ``1 / rate``.
CLOSEST = 0.5
#: A shared budget's file: count and next slot, then `count` send times.
_HEADER = struct.Struct("<qq")
_SLOT = struct.Struct("<d")
_NEVER = _SLOT.pack(-1e300)


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
        shared: str | None = None,
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
        self._shared = shared
        self._fd: int | None = None

    def _free(self, now: float, newest: float, oldest: float) -> float:
        """The first time from `now` at which one more request keeps the window, after
        the `newest` send time and the `oldest` of the last `count` (-inf: none)."""
        return max(now, newest + self.closest, oldest + self.span)

    def reserve(self) -> float:
        """Take the next send time; return how long the caller must wait for it."""
        with self._lock:
            if self._shared is None:
                sent, never = self._sent, -math.inf
                oldest = sent[0] if len(sent) == self.count else never
                now = self._clock()
                at = self._free(now, sent[-1] if sent else never, oldest)
                sent.append(at)
                return at - now
            fd = self._file()
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                return self._reserve_shared(fd)
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)

    def _reserve_shared(self, fd: int) -> float:
        """`reserve` on the file's ring of the last `count` send times (a header of
        count and next slot, then the slots; send times only grow, so the next slot
        holds the oldest): a few bytes read and written, whatever the rate."""
        header = os.pread(fd, _HEADER.size, 0)
        count, slot = _HEADER.unpack(header) if len(header) == _HEADER.size else (0, 0)
        if count != self.count or os.fstat(fd).st_size != _HEADER.size + 8 * count:
            count, slot = self.count, 0  # new, or made for another rate: start afresh
            os.ftruncate(fd, 0)
            os.pwrite(fd, _HEADER.pack(count, 0) + _NEVER * count, 0)
        (newest,) = _SLOT.unpack(os.pread(fd, 8, _HEADER.size + 8 * ((slot - 1) % count)))
        (oldest,) = _SLOT.unpack(os.pread(fd, 8, _HEADER.size + 8 * slot))
        now = self._clock()
        at = self._free(now, newest, oldest)
        os.pwrite(fd, _SLOT.pack(at), _HEADER.size + 8 * slot)
        os.pwrite(fd, _HEADER.pack(count, (slot + 1) % count), 0)
        return at - now

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

    def _file(self) -> int:
        if self._fd is None:
            assert self._shared is not None
            Path(self._shared).parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self._shared, os.O_RDWR | os.O_CREAT, 0o600)
        return self._fd

    def history(self) -> list[float]:
        """The send times that still bound the next ones (`time.monotonic`, the same
        clock machine-wide), to hand the budget over to another process (`adopt`);
        none when shared (the file holds them)."""
        with self._lock:
            return list(self._sent)

    def adopt(self, sent: Iterable[float]) -> None:
        """Count requests sent elsewhere on the same budget (another process's
        `history`), so that together the two never exceed `rate`."""
        if self._shared is not None:
            return  # they are in the file already
        with self._lock:
            merged = sorted({*self._sent, *(float(at) for at in sent)})
            self._sent = deque(merged[-self.count :], maxlen=self.count)

    def acquire(self) -> float:
        """Block until a request may be sent; return the time waited."""
        wait = self.reserve()
        if wait > 0:
            self._sleep(wait)
        return wait
