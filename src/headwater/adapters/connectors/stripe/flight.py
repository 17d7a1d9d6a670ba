"""The gate every request of a connection passes: a slot in flight, then a token.

`ConcurrencyController` is pure logic; this wraps it for threads.  A request first
takes a slot (`acquire` blocks while as many requests as the controller's limit are
held: waiting for a token or on the wire), then a token from the connection's
`RequestBudget` (the request budget, unchanged), and only then is it sent: `sent` starts
the controller's clock on it, so latency never includes the wait for a token.  `done`
reports the outcome and frees the slot before any retry is scheduled, so that a retry
waits for a slot like any other request.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from headwater.adapters.connectors.stripe.concurrency import (
    ConcurrencyController,
    ConcurrencySettings,
    Flight,
    Outcome,
)
from headwater.adapters.connectors.stripe.declaration import StripeSettings

__all__ = ["Cancelled", "Gate", "Outcome", "Turns", "gate_for"]

#: Requests in flight before any latency is known.  The token bucket spaces requests at
#: the budget, so the number in flight can only grow as fast as answers are slower than
#: that spacing; starting higher than 2 saves round trips of slow start at 1 s latency
#: and costs at most a few 429s once against a concurrency limit below it.
INITIAL_IN_FLIGHT = 8
#: Latency this many times the baseline means the server queues our requests.  Stripe's
#: latency has a long tail (a p99 of three times the median is common) and the first
#: answers of a read are the fastest of those sent, so the baseline starts low: at 2x,
#: a read at a 1 s median cut its limit on noise (measured: 25 in flight where 28 were
#: needed); at 3x, queueing still shows long before it costs much.
LATENCY_GROWTH = 3.0


class Cancelled(Exception):
    """Raised inside worker threads when the read they serve was stopped."""


@dataclass(order=True)
class _Waiter:
    """A request waiting its turn: first the highest priority, then the earliest."""

    rank: float
    arrival: int
    granted: bool = field(default=False, compare=False)
    woken: threading.Event = field(default_factory=threading.Event, compare=False)


class _Line:
    """Requests waiting their turn for something a lock guards (a slot, a send time),
    each woken only when given it (one wake-up per turn, not every waiter)."""

    def __init__(self, lock: threading.Condition) -> None:
        self._lock = lock
        self._heap: list[_Waiter] = []
        self._arrivals = itertools.count()
        self.given = 0  # turns given

    def __len__(self) -> int:
        return len(self._heap)

    def join(self, priority: float) -> _Waiter:  # under the lock
        waiter = _Waiter(-priority, next(self._arrivals))
        heapq.heappush(self._heap, waiter)
        return waiter

    def give(self) -> None:  # under the lock, with a turn to give
        waiter = heapq.heappop(self._heap)
        waiter.granted = True
        self.given += 1
        waiter.woken.set()

    def wait(
        self, me: _Waiter, stop: threading.Event | None, give_back: Callable[[], None]
    ) -> None:
        """Block until `me` is given its turn; if `stop` is set first, leave the line
        (or `give_back` a turn given meanwhile) and raise `Cancelled`."""
        while True:
            # The timeout only re-checks `stop` (set from elsewhere).
            me.woken.wait(0.5)
            with self._lock:
                stopped = stop is not None and stop.is_set()
                if me.granted and not stopped:
                    return
                if not stopped:
                    me.woken.clear()  # woken to see a stop that was not set
                    continue
                if me.granted:
                    give_back()
                else:
                    self._heap.remove(me)
                    heapq.heapify(self._heap)
                raise Cancelled

    def wake_all(self) -> None:  # under the lock
        for waiter in self._heap:
            waiter.woken.set()


class Gate:
    """Slots in flight for one connection, sized by an adaptive controller."""

    def __init__(
        self, settings: ConcurrencySettings, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.controller = ConcurrencyController(settings, clock)
        self._changed = threading.Condition()
        self._held = 0  # slots taken: waiting for a token or in flight
        #: Requests waiting for a slot, a heap in the order they get one: a freed slot
        #: is handed to the first (`_grant`), never taken by a request that came later
        #: (a window paged on took the slot its previous page freed before the woken
        #: waiter could: with a sandbox limit of 10, new windows waited 11-14 s for
        #: their first page, to end the read as its tail).
        self._line = _Line(self._changed)
        self.peak = 0  # the most slots ever held at once
        #: A lower limit set from outside the controller (`cpu.CpuCeiling`: the reading
        #: process's own CPU is the bottleneck), or None.
        self._ceiling: int | None = None

    def _limit(self) -> int:  # under the lock
        limit = self.controller.limit
        return limit if self._ceiling is None else min(limit, self._ceiling)

    @property
    def limit(self) -> int:
        with self._changed:
            return self._limit()

    def locked(self) -> threading.Condition:
        """The gate's lock, to read its controller consistently."""
        return self._changed

    def cap_at(self, ceiling: int | None) -> None:
        """Hold at most `ceiling` slots (None: only the controller's limit)."""
        with self._changed:
            raised = ceiling is None or (self._ceiling is not None and ceiling > self._ceiling)
            self._ceiling = ceiling
            if raised:
                self._grant()

    def wanted(self) -> int:
        """Requests in flight the read should plan for: the limit now, or the number
        the budget needs at the latency seen (the limit is on its way there), but after
        a refusal (429) one fewer than the controller's ceiling, a margin for latency's
        spread: windows beyond what Stripe serves at once only wait, and a read that
        opens them asks for more in flight than it allows (measured in-process at 300 ms
        with a sandbox limit of 10: `full._Run`'s tail rules without this made a read
        of 40,000 customers 17.87 -> 18.73 s; with it, 18.32 -> 18.07 s)."""
        with self._changed:
            controller = self.controller
            wanted = controller.limit
            if controller.mean_latency is not None:
                wanted = max(wanted, controller.target())
            ceiling = controller.ceiling
            if ceiling is not None:
                wanted = max(1, min(wanted, ceiling - 1))
            return wanted if self._ceiling is None else min(wanted, self._ceiling)

    @property
    def mean_latency(self) -> float | None:
        with self._changed:
            return self.controller.mean_latency

    @property
    def held(self) -> int:
        with self._changed:
            return self._held

    def acquire(self, stop: threading.Event | None = None, priority: float = 0.0) -> None:
        """Block until a slot is free and no waiting request of higher `priority`, or of
        the same that came before, wants it (raise `Cancelled` if `stop` is set
        meanwhile)."""
        with self._changed:
            me = self._line.join(priority)
            self._grant()
        self._line.wait(me, stop, self._give_back)

    def _give_back(self) -> None:  # under the lock
        self._held -= 1
        self._grant()

    def _grant(self) -> None:  # under the lock
        """Hand the free slots to the first waiting requests."""
        while self._line and self._held < self._limit():
            self._held += 1
            self.peak = max(self.peak, self._held)
            self._line.give()

    @property
    def waiting(self) -> int:
        """Requests waiting for a slot."""
        with self._changed:
            return len(self._line)

    @property
    def wakeups(self) -> int:
        """Slots given to requests that asked for one (each woken once)."""
        with self._changed:
            return self._line.given

    def sent(self) -> Flight:
        """The request holding a slot is being sent now."""
        with self._changed:
            return self.controller.started()

    def release(self) -> None:
        """Give a slot back unused (the request was never sent)."""
        with self._changed:
            self._give_back()

    def done(self, flight: Flight, outcome: Outcome) -> None:
        """The request sent as `flight` has its answer or its error; free its slot."""
        with self._changed:
            self.controller.finished(flight, outcome)
            self._give_back()

    def answered_elsewhere(self, latency: float) -> None:
        """See `ConcurrencyController.answered_elsewhere`; waiters may start at once."""
        with self._changed:
            self.controller.answered_elsewhere(latency)
            self._grant()

    def wake(self) -> None:
        """Wake every waiter (after `stop` was set) so that it sees the stop at once."""
        with self._changed:
            self._line.wake_all()


class Turns:
    """Which waiting request takes the request budget's next send time: the one of
    highest priority (first come, first served among equals), one at a time.

    A budget-bound read holds more requests than go out at once: each waits for its
    send time.  Taken in the order they came, every window of a read moves at the same
    pace and the one with most pages left ends last, alone, a chain of round trips
    after the budget is spent (at 300 ms its last answer came 0.3-1 s after the
    others').  Given to the window with most left, the others wait instead while the
    budget stays as full, and the windows end closer together.
    """

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._line = _Line(self._lock)
        self._busy = False  # a request holds the turn (waiting for its send time)

    @contextmanager
    def turn(self, priority: float = 0.0, stop: threading.Event | None = None) -> Iterator[None]:
        """Hold the turn: after every waiting request of higher priority, and those of
        the same priority that came before (raise `Cancelled` if `stop` is set first)."""
        with self._lock:
            me = self._line.join(priority)
            self._pass()
        self._line.wait(me, stop, self._free)
        try:
            yield
        finally:
            with self._lock:
                self._free()

    def _free(self) -> None:  # under the lock
        self._busy = False
        self._pass()

    def _pass(self) -> None:  # under the lock
        if not self._busy and self._line:
            self._busy = True
            self._line.give()


def gate_for(settings: StripeSettings) -> Gate:
    """The adaptive limit on requests in flight for one connection's reads."""
    cap = settings.workers
    return Gate(
        ConcurrencySettings(
            budget=settings.requests_per_second,
            cap=cap,
            initial=min(cap, INITIAL_IN_FLIGHT),
            latency_growth=LATENCY_GROWTH,
        )
    )
