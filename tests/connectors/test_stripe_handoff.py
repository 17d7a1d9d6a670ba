"""The hand-off between a full read's workers and its consumer (`handoff.Handoff`)."""

from __future__ import annotations

import threading
import time

import pytest
from tests.connectors.conftest import eventually

from headwater.adapters.connectors.stripe import handoff as module
from headwater.adapters.connectors.stripe.handoff import Handoff


class CountingCondition(threading.Condition):
    """A condition that counts its waiters and their wake-ups."""

    waiting = 0
    woken = 0

    def wait(self, timeout: float | None = None) -> bool:
        CountingCondition.waiting += 1
        try:
            return super().wait(timeout)
        finally:
            CountingCondition.waiting -= 1
            CountingCondition.woken += 1


def test_an_item_taken_wakes_one_waiting_worker_not_all(monkeypatch: pytest.MonkeyPatch) -> None:
    """When the consumer is the slower side every worker waits for room; woken all at
    once for each page taken (the code before: ten wake-ups here), twenty workers cost
    the reading process 140,000 context switches for 3,000 pages."""
    monkeypatch.setattr(CountingCondition, "waiting", 0)
    monkeypatch.setattr(CountingCondition, "woken", 0)
    monkeypatch.setattr(module.threading, "Condition", CountingCondition)
    handoff: Handoff[int] = Handoff(1)
    assert handoff.put(0)
    workers = [threading.Thread(target=handoff.put, args=(n,), daemon=True) for n in range(1, 11)]
    try:
        for worker in workers:
            worker.start()
        assert eventually(lambda: CountingCondition.waiting == 10)
        before = CountingCondition.woken
        assert handoff.get() == 0
        assert eventually(lambda: CountingCondition.waiting == 9)
        time.sleep(0.05)  # any other waiter woken would have run by now
        assert CountingCondition.woken - before == 1
        taken = [handoff.get() for _ in range(10)]  # the others, one at a time, in full
    finally:
        handoff.close()  # a failure leaves no worker waiting
        for worker in workers:
            worker.join(5)
    assert sorted(taken) == list(range(1, 11))


def test_close_frees_every_waiting_worker() -> None:
    handoff: Handoff[int] = Handoff(1)
    assert handoff.put(0)
    results: list[bool] = []
    workers = [
        threading.Thread(target=lambda n=n: results.append(handoff.put(n))) for n in range(1, 6)
    ]
    for worker in workers:
        worker.start()
    time.sleep(0.05)
    handoff.close()
    for worker in workers:
        worker.join(5)
    assert results == [False] * 5


def test_the_last_item_reaches_a_waiting_consumer_and_a_failure_goes_first() -> None:
    ended: Handoff[object] = Handoff(2)
    got: list[object] = []
    consumer = threading.Thread(target=lambda: got.append(ended.get()))
    consumer.start()
    time.sleep(0.05)
    ended.finish("end")
    consumer.join(5)
    assert got == ["end"]
    assert ended.put(1)
    assert ended.put(2)
    failure = RuntimeError("read failed")
    ended.finish(failure, first=True)  # whatever the room
    assert [ended.get(), ended.get(), ended.get()] == [failure, 1, 2]
