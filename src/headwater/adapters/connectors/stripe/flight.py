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

import threading
import time
from collections.abc import Callable

from headwater.adapters.connectors.stripe.concurrency import (
    ConcurrencyController,
    ConcurrencySettings,
    Flight,
    Outcome,
)
from headwater.adapters.connectors.stripe.declaration import StripeSettings

__all__ = ["Cancelled", "Gate", "Outcome", "gate_for"]

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


class Gate:
    """Slots in flight for one connection, sized by an adaptive controller."""

    def __init__(
        self, settings: ConcurrencySettings, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.controller = ConcurrencyController(settings, clock)
        self._changed = threading.Condition()
        self._held = 0  # slots taken: waiting for a token or in flight
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
                self._changed.notify(max(0, self._limit() - self._held))

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

    def acquire(self, stop: threading.Event | None = None) -> None:
        """Block until a slot is free (raise `Cancelled` if `stop` is set meanwhile)."""
        with self._changed:
            while self._held >= self._limit():
                if stop is not None and stop.is_set():
                    raise Cancelled
                # Woken by `done`; the timeout only re-checks `stop` (set from elsewhere).
                self._changed.wait(0.5)
            if stop is not None and stop.is_set():
                raise Cancelled
            self._held += 1
            self.peak = max(self.peak, self._held)

    def sent(self) -> Flight:
        """The request holding a slot is being sent now."""
        with self._changed:
            return self.controller.started()

    def release(self) -> None:
        """Give a slot back unused (the request was never sent)."""
        with self._changed:
            self._held -= 1
            self._changed.notify()

    def done(self, flight: Flight, outcome: Outcome) -> None:
        """The request sent as `flight` has its answer or its error; free its slot."""
        with self._changed:
            self.controller.finished(flight, outcome)
            self._held -= 1
            # One waiter per free slot: waking them all would have all but those take
            # the lock only to wait again (at 20 in flight, a thundering herd a page).
            self._changed.notify(max(0, self._limit() - self._held))

    def answered_elsewhere(self, latency: float) -> None:
        """See `ConcurrencyController.answered_elsewhere`; waiters may start at once."""
        with self._changed:
            self.controller.answered_elsewhere(latency)
            self._changed.notify(max(0, self._limit() - self._held))

    def wake(self) -> None:
        """Wake every waiter (after `stop` was set) so that it sees the stop at once."""
        with self._changed:
            self._changed.notify_all()


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
