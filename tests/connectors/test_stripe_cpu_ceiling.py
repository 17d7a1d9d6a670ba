"""The reading process's CPU as a ceiling on requests in flight, and the gate's wake-ups
(issue 16: at zero latency the reader's own CPU, not the budget, bounds a read)."""

from __future__ import annotations

import threading
import time

from tests.connectors.conftest import eventually

from headwater.adapters.connectors.stripe.concurrency import ConcurrencySettings, Outcome
from headwater.adapters.connectors.stripe.cpu import (
    FLOOR,
    CpuCeiling,
    demand_seconds,
    little,
    watch,
)
from headwater.adapters.connectors.stripe.flight import Gate


def test_a_freed_slot_wakes_one_waiter_not_all() -> None:
    gate = Gate(ConcurrencySettings(budget=1000.0, cap=2, initial=2))
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
    assert eventually(lambda: gate.waiting == 5)
    woken = gate.wakeups
    gate.done(flights.pop(), Outcome.ANSWERED)
    assert gate.wakeups == woken + 1  # one slot free: one waiter woken (was all five)
    assert eventually(lambda: len(got) == 1)
    assert gate.waiting == 4
    for n in range(2, 6):  # each freed slot lets one more through
        gate.done(gate.sent(), Outcome.ANSWERED)
        assert eventually(lambda n=n: len(got) == n)
    for thread in waiters:
        thread.join(timeout=10)
    assert len(got) == 5
    assert gate.wakeups == woken + 5


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
    assert ceiling.observe(0.5, held=20, limit=20, need=2) is None  # far from a core
    assert ceiling.observe(0.95, held=20, limit=20, need=2) == 10
    assert ceiling.observe(1.0, held=10, limit=20, need=2) == 5
    assert ceiling.observe(1.0, held=5, limit=20, need=2) == FLOOR
    assert ceiling.observe(1.0, held=3, limit=20, need=2) == FLOOR  # never below the floor
    assert ceiling.observe(0.8, held=3, limit=20, need=2) == FLOOR  # neither nor
    assert ceiling.observe(0.3, held=1, limit=20, need=2) == FLOOR  # slots free: not the CPU
    assert ceiling.observe(0.3, held=3, limit=5, need=2) == 4  # every slot taken: one more
    assert ceiling.observe(0.3, held=4, limit=5, need=2) is None  # at the limit: lifted


def test_a_saturated_reader_keeps_what_carries_its_rate_at_its_latency() -> None:
    # 25 requests/s at 300 ms: a loaded machine must not starve a read at real latency.
    need = little(25.0, 0.3)
    assert need == 14  # 7.5 + 2 x 2.7 + 1, as the controller's target
    ceiling = CpuCeiling()
    assert ceiling.observe(3.0, held=20, limit=20, need=need) == need
    assert ceiling.observe(3.0, held=14, limit=20, need=need) == need
    assert ceiling.observe(3.0, held=14, limit=need, need=need) is None  # nothing to cap
    assert little(1000.0, 0.002) == 6  # zero latency: a few suffice


def test_demand_counts_this_process_cpu() -> None:
    before = demand_seconds()
    assert before is not None  # Linux: /proc/self/task/*/schedstat
    end = time.process_time() + 0.05
    while time.process_time() < end:
        pass
    after = demand_seconds()
    assert after is not None
    assert after - before >= 0.04


def test_watch_caps_a_saturated_reader_once_a_latency_is_known() -> None:
    clock = [0.0]
    gate = Gate(ConcurrencySettings(budget=1000.0, cap=20, initial=20), lambda: clock[0])
    cpu = [0.0]

    def busy() -> float:  # a second of CPU per look: always saturated
        cpu[0] += 1.0
        return cpu[0]

    stop = threading.Event()
    sent = [0]

    def requests() -> int:  # one more request a look: at most one a millisecond
        sent[0] += 1
        return sent[0]

    thread = watch(gate, stop, requests, sample=busy, period=0.001)
    assert thread is not None
    time.sleep(0.05)
    assert gate.limit == 20  # no latency known yet: no ceiling
    # Answers after 1 ms, then 1.8 ms (a process contending for its own CPU answers
    # itself late): the controller learns a baseline and plans on the mean.
    for latency in [0.001] * 20 + [0.0018] * 40:
        with gate.locked():
            flight = gate.controller.started()
            clock[0] += latency
            gate.controller.finished(flight, Outcome.ANSWERED)
    baseline = gate.controller.baseline
    assert baseline is not None
    assert eventually(lambda: gate.limit < gate.controller.limit)
    assert FLOOR <= gate.limit <= little(1000.0, baseline)  # at most 1 per ms: a few
    stop.set()
    thread.join(timeout=10)
    assert not thread.is_alive()
    assert watch(gate, threading.Event(), requests, sample=lambda: None) is None
