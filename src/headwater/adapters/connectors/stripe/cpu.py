"""The reading process's own CPU as a ceiling on requests in flight (issue 16).

At low latency the reading process itself can be what bounds a read: its threads
share one interpreter lock, and every request in flight beyond what keeps that one
core busy adds a thread contending for it (and for the HTTP pool's lock) without
adding pages.  Measured at zero latency, 300,000 customers: 24.4 us of the reader's
CPU per customer at 20 in flight, 18.5 us at 3, for the same pages.

`CpuCeiling` decides, from the process's CPU demand (the seconds its threads ran or
waited to run, from ``/proc/self/task/*/schedstat``, per second of wall time), a
ceiling on the gate's slots.  Saturated (the demand near one core), the ceiling halves,
down to `FLOOR` but never below what carries the rate of the last period at the latency
without queueing (Little's law at the controller's baseline, with its margin): on a
loaded machine every process waits to run, and a read at real latency keeps the
requests in flight that carry its rate; at zero latency a few carry it.  Relaxed while
every slot is taken, it rises by one, and is lifted once it reaches the controller's
own limit.  Until a baseline latency is known the controller alone sizes the read.
`watch` runs it on a daemon thread of the reading process (no effect where ``/proc``
has no schedstat).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path

from headwater.adapters.connectors.stripe.flight import Gate

#: Demand (cores) at and above which the reader's CPU is the bottleneck.
SATURATED = 0.9
#: Demand below which the ceiling may rise again.
RELAXED = 0.7
#: The fewest requests in flight the ceiling allows: one being answered, one being
#: decoded, one in the pipe to the run.
FLOOR = 3
#: Seconds between two looks at the demand.
PERIOD = 0.25
TASKS = "/proc/self/task"


def demand_seconds(tasks: str = TASKS) -> float | None:
    """Seconds the process's threads ran or waited for a CPU so far (None: unknown).

    Threads that ended drop out of the sum: the caller looks at differences over a
    short period, clamped at zero."""
    total = 0
    try:
        threads = list(Path(tasks).iterdir())
    except OSError:
        return None
    seen = 0
    for thread in threads:
        with suppress(OSError, ValueError, IndexError):  # a thread that just ended
            fields = (thread / "schedstat").read_bytes().split()
            total += int(fields[0]) + int(fields[1])
            seen += 1
    return total / 1e9 if seen else None


def little(rate: float, latency: float) -> int:
    """Requests in flight that carry `rate` requests/s at `latency` (Little's law), with
    the controller's margin for latency's spread (`ConcurrencyController.target`)."""
    need = rate * latency
    return math.ceil(need + 2 * math.sqrt(need) + 1)


class CpuCeiling:
    """The ceiling's logic, pure: `observe` a period's demand, get the new ceiling."""

    def __init__(self, floor: int = FLOOR) -> None:
        self.floor = floor
        self.ceiling: int | None = None

    def observe(self, demand: float, held: int, limit: int, need: int) -> int | None:
        """The ceiling after a period of `demand` cores, with `held` slots taken at its
        end, `limit` the controller's own limit and `need` the fewest in flight that the
        budget needs at the latency without queueing (None: no ceiling)."""
        if demand >= SATURATED:
            current = limit if self.ceiling is None else self.ceiling
            self.ceiling = max(self.floor, need, current // 2)
            if self.ceiling >= limit:
                self.ceiling = None
        elif demand < RELAXED and self.ceiling is not None and held >= self.ceiling:
            self.ceiling += 1
            if self.ceiling >= limit:
                self.ceiling = None
        return self.ceiling


def watch(
    gate: Gate,
    stop: threading.Event,
    requests: Callable[[], int],
    sample: Callable[[], float | None] = demand_seconds,
    period: float = PERIOD,
) -> threading.Thread | None:
    """Cap `gate` by the process's CPU until `stop` is set (None: nothing to measure).

    `requests()` counts the requests sent so far: the rate the read carries now."""
    if sample() is None:
        return None

    def loop() -> None:
        ceiling = CpuCeiling()
        last, sent, at = sample(), requests(), time.monotonic()
        while not stop.wait(period):
            now, seconds, count = time.monotonic(), sample(), requests()
            if seconds is None or last is None:
                return
            elapsed = max(now - at, 1e-6)
            demand = max(0.0, seconds - last) / elapsed
            rate = (count - sent) / elapsed
            last, sent, at = seconds, count, now
            with gate.locked():
                limit, baseline = gate.controller.limit, gate.controller.baseline
            if baseline is None:
                continue  # no latency known yet: the controller alone sizes the read
            gate.cap_at(ceiling.observe(demand, gate.held, limit, little(rate, baseline)))

    thread = threading.Thread(target=loop, name="headwater-reader-cpu", daemon=True)
    thread.start()
    return thread
