"""The reading process's CPU as a ceiling on requests in flight, and the gate's wake-ups
(issue 16: at zero latency the reader's own CPU, not the budget, bounds a read)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from headwater.adapters.connectors.stripe.concurrency import ConcurrencySettings, Outcome
from headwater.adapters.connectors.stripe.cpu import FLOOR, CpuCeiling, demand_seconds, watch
from headwater.adapters.connectors.stripe.flight import Gate


class CountingCondition(threading.Condition):
    """A condition that counts the waiters each notification wakes."""

    def __init__(self) -> None:
        super().__init__()
        self.woken = 0

    def notify(self, n: int = 1) -> None:
        self.woken += min(n, len(self._waiters))  # type: ignore[attr-defined]
        super().notify(n)

    def notify_all(self) -> None:
        self.notify(len(self._waiters))  # type: ignore[attr-defined]

    def waiting(self) -> int:
        with self:
            return len(self._waiters)  # type: ignore[attr-defined]


def eventually(check: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


def test_a_freed_slot_wakes_one_waiter_not_all() -> None:
    gate = Gate(ConcurrencySettings(budget=1000.0, cap=2, initial=2))
    changed = CountingCondition()
    gate._changed = changed
    flights = []
    for _ in range(2):
        gate.acquire()
        flights.append(gate.sent())
    got = []
    waiters = [
        threading.Thread(target=lambda: got.append(gate.acquire()), daemon=True) for _ in range(5)
    ]
    for thread in waiters:
        thread.start()
    assert eventually(lambda: changed.waiting() == 5)
    gate.done(flights.pop(), Outcome.ANSWERED)
    assert changed.woken == 1  # one slot free: one waiter woken (was all five)
    assert eventually(lambda: len(got) == 1)
    for n in range(2, 6):  # each freed slot lets one more through
        gate.done(gate.sent(), Outcome.ANSWERED)
        assert eventually(lambda n=n: len(got) == n)
    for thread in waiters:
        thread.join(timeout=10)
    assert len(got) == 5


def test_the_ceiling_caps_the_slots_and_raising_it_lets_waiters_through() -> None:
    gate = Gate(ConcurrencySettings(budget=1000.0, cap=8, initial=8))
    gate.cap_at(3)
    assert gate.limit == 3
    assert gate.wanted() == 3
    for _ in range(3):
        gate.acquire()
    fourth = threading.Thread(target=gate.acquire, daemon=True)
    fourth.start()
    time.sleep(0.05)
    assert fourth.is_alive()
    assert gate.held == 3
    gate.cap_at(None)
    fourth.join(timeout=10)
    assert not fourth.is_alive()
    assert gate.held == 4
    assert gate.limit == 8


def test_saturated_halves_to_the_floor_relaxed_and_full_rises_then_lifts() -> None:
    ceiling = CpuCeiling()
    assert ceiling.observe(0.5, held=20, limit=20) is None  # far from a core: no ceiling
    assert ceiling.observe(0.95, held=20, limit=20) == 10
    assert ceiling.observe(1.0, held=10, limit=20) == 5
    assert ceiling.observe(1.0, held=5, limit=20) == FLOOR
    assert ceiling.observe(1.0, held=3, limit=20) == FLOOR  # never below the floor
    assert ceiling.observe(0.8, held=3, limit=20) == FLOOR  # neither saturated nor relaxed
    assert ceiling.observe(0.3, held=1, limit=20) == FLOOR  # slots free: the CPU was not it
    assert ceiling.observe(0.3, held=3, limit=5) == 4  # every slot taken: one more
    assert ceiling.observe(0.3, held=4, limit=5) is None  # at the controller's limit: lifted


def test_demand_counts_this_process_cpu() -> None:
    before = demand_seconds()
    assert before is not None  # Linux: /proc/self/task/*/schedstat
    end = time.process_time() + 0.05
    while time.process_time() < end:
        pass
    after = demand_seconds()
    assert after is not None
    assert after - before >= 0.04


def test_watch_caps_a_saturated_reader_and_stops_with_it() -> None:
    gate = Gate(ConcurrencySettings(budget=1000.0, cap=20, initial=20))
    clock = [0.0]

    def busy() -> float:  # a second of CPU per look: always saturated
        clock[0] += 1.0
        return clock[0]

    stop = threading.Event()
    thread = watch(gate, stop, sample=busy, period=0.001)
    assert thread is not None
    assert eventually(lambda: gate.limit == FLOOR)
    stop.set()
    thread.join(timeout=10)
    assert not thread.is_alive()
    assert watch(gate, threading.Event(), sample=lambda: None) is None  # nothing to measure
