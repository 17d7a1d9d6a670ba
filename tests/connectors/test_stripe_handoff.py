"""The hand-off between a full read's workers and its consumer (`full._Handoff`)."""

from __future__ import annotations

import threading
import time

import pytest
from tests.connectors.conftest import eventually

from headwater.adapters.connectors.stripe import full
from headwater.adapters.connectors.stripe.full import Page, _Done, _Handoff


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


def page(n: int) -> Page:
    return Page([{"id": f"cus_{n}", "created": n}], b"")


def test_a_page_taken_wakes_one_waiting_worker_not_all(monkeypatch: pytest.MonkeyPatch) -> None:
    """When the consumer is the slower side every worker waits for room; woken all at
    once for each page taken (the code before: ten wake-ups here), twenty workers cost
    the reading process 140,000 context switches for 3,000 pages."""
    monkeypatch.setattr(CountingCondition, "waiting", 0)
    monkeypatch.setattr(CountingCondition, "woken", 0)
    monkeypatch.setattr(full.threading, "Condition", CountingCondition)
    handoff = _Handoff(1)
    assert handoff.put(page(0))
    workers = [threading.Thread(target=handoff.put, args=(page(n),)) for n in range(1, 11)]
    for worker in workers:
        worker.start()
    assert eventually(lambda: CountingCondition.waiting == 10)
    before = CountingCondition.woken
    assert isinstance(handoff.get(), Page)
    assert eventually(lambda: CountingCondition.waiting == 9)
    time.sleep(0.05)  # any other waiter woken would have run by now
    assert CountingCondition.woken - before == 1
    taken = [handoff.get() for _ in range(10)]  # the others, one at a time, in full
    for worker in workers:
        worker.join(5)
    assert sorted(int(p.records[0]["created"]) for p in taken if isinstance(p, Page)) == list(
        range(1, 11)
    )


def test_close_frees_every_waiting_worker_and_the_end_reaches_the_consumer() -> None:
    handoff = _Handoff(1)
    assert handoff.put(page(0))
    results: list[bool] = []
    workers = [
        threading.Thread(target=lambda n=n: results.append(handoff.put(page(n))))
        for n in range(1, 6)
    ]
    for worker in workers:
        worker.start()
    time.sleep(0.05)
    handoff.close()
    for worker in workers:
        worker.join(5)
    assert results == [False] * 5

    ended = _Handoff(2)
    got: list[object] = []
    consumer = threading.Thread(target=lambda: got.append(ended.get()))
    consumer.start()
    time.sleep(0.05)
    failure = RuntimeError("read failed")
    ended.finish(failure)
    consumer.join(5)
    assert got == [failure]
    ended.finish(_Done())
    assert isinstance(ended.get(), _Done)
