"""The reading process's own CPU as a ceiling on requests in flight (issue 16).

At low latency the reading process itself can be what bounds a read: its threads
share one interpreter lock, and every request in flight beyond what keeps that one
core busy adds a thread contending for it (and for the HTTP pool's lock) without
adding pages.  Measured at zero latency, 300,000 customers: 24.4 us of the reader's
CPU per customer at 20 in flight, 18.5 us at 3, for the same pages.

`CpuCeiling` decides, from the process's CPU demand (the seconds its threads ran or
waited to run, from ``/proc/self/task/*/schedstat``, per second of wall time), a
ceiling on the gate's slots: saturated (the demand near one core), the ceiling halves,
down to `FLOOR`; relaxed while every slot is taken (the network, not the CPU, is the
wait), it rises by one, and is lifted once it reaches the controller's own limit.  At
real latency the demand stays far below a core, so the ceiling never engages and the
controller alone sizes the read.  `watch` runs it on a daemon thread of the reading
process (no effect where ``/proc`` has no schedstat).
"""

from __future__ import annotations

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


class CpuCeiling:
    """The ceiling's logic, pure: `observe` a period's demand, get the new ceiling."""

    def __init__(self, floor: int = FLOOR) -> None:
        self.floor = floor
        self.ceiling: int | None = None

    def observe(self, demand: float, held: int, limit: int) -> int | None:
        """The ceiling after a period of `demand` cores, with `held` slots taken at its
        end and `limit` the controller's own limit (None: no ceiling)."""
        if demand >= SATURATED:
            current = limit if self.ceiling is None else self.ceiling
            self.ceiling = max(self.floor, current // 2)
        elif demand < RELAXED and self.ceiling is not None and held >= self.ceiling:
            self.ceiling += 1
            if self.ceiling >= limit:
                self.ceiling = None
        return self.ceiling


def watch(
    gate: Gate,
    stop: threading.Event,
    sample: Callable[[], float | None] = demand_seconds,
    period: float = PERIOD,
) -> threading.Thread | None:
    """Cap `gate` by the process's CPU until `stop` is set (None: nothing to measure)."""
    if sample() is None:
        return None

    def loop() -> None:
        ceiling = CpuCeiling()
        last, at = sample(), time.monotonic()
        while not stop.wait(period):
            now, seconds = time.monotonic(), sample()
            if seconds is None or last is None:
                return
            demand = max(0.0, seconds - last) / max(now - at, 1e-6)
            last, at = seconds, now
            limit = gate.controller.limit  # an int read: no lock needed
            gate.cap_at(ceiling.observe(demand, gate.held, limit))

    thread = threading.Thread(target=loop, name="headwater-reader-cpu", daemon=True)
    thread.start()
    return thread
