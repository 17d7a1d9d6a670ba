"""Many pending events read in parallel by `created` windows equal the sequential read."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from tests.connectors.conftest import source_for

from headwater.adapters.connectors.contract import ChangeBatch
from headwater.adapters.connectors.stripe import event_windows
from headwater.adapters.connectors.stripe.changes import SETTLE
from headwater.adapters.connectors.stripe.event_windows import plan
from headwater.adapters.connectors.stripe.windows import Window
from headwater.sandbox.testing import RunningSandbox, start_sandbox

CHANGES = 1500


def change(http: httpx.Client, i: int, targets: list[str]) -> None:
    """Change number `i`: 40 % creates, 40 % updates, 20 % deletes of distinct customers."""
    kind = i % 5
    if kind in (0, 2):
        http.post("/v1/customers", data={"email": f"new{i}@example.com"}).raise_for_status()
    elif kind in (1, 3):
        moved = {"email": f"moved{i}@example.com"}
        http.post(f"/v1/customers/{targets[300 + i % 700]}", data=moved).raise_for_status()
    else:
        http.delete(f"/v1/customers/{targets[i // 5]}").raise_for_status()


@pytest.fixture(scope="module")
def pending() -> Iterator[tuple[RunningSandbox, dict[str, Any]]]:
    """A sandbox with `CHANGES` events after a saved position, spread over ~300 s."""
    with start_sandbox(customers=1000, seed=31) as sandbox:
        headers = {"Authorization": f"Bearer {sandbox.secret_key}"}
        http = httpx.Client(base_url=sandbox.url, headers=headers, timeout=30)
        with http, source_for(sandbox) as source, ThreadPoolExecutor(4) as pool:
            targets = [str(c["id"]) for page in source.read_full() for c in page]
            change(http, 2, targets)
            position = source.event_position()
            assert position["event_id"] is not None
            for start in range(0, CHANGES, 50):
                # Concurrent changes: several events share a second, in an order only
                # the server knows; then the clock moves on.
                list(pool.map(lambda i: change(http, i, targets), range(start, start + 50)))
                sandbox.advance_clock(10)
            sandbox.advance_clock(SETTLE)  # every event settled: each read ends at the last
        yield sandbox, position


def merged(batches: list[ChangeBatch]) -> dict[str, tuple[str, Any, int]]:
    """What the engine keeps of a change stream: each customer's latest change."""
    latest: dict[str, tuple[str, Any, int]] = {}
    for batch in batches:
        for c in batch.changes:
            latest.pop(c.source_id, None)
            latest[c.source_id] = (c.kind, c.record, c.at)
    return latest


@pytest.mark.slow
def test_parallel_windows_equal_the_sequential_walk(
    pending: tuple[RunningSandbox, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    sandbox, position = pending
    with source_for(sandbox, workers=1) as source:
        sandbox.reset_stats()
        sequential = list(source.read_changes(position))
        sequential_calls = sandbox.stats()["requests"]
    monkeypatch.setattr(event_windows, "PAGES_PER_WINDOW", 1)  # many windows
    with source_for(sandbox, workers=8) as source:
        sandbox.reset_stats()
        parallel = list(source.read_changes(position))
        calls = source.api_calls
        peak = source.http.gate.peak if source.http.gate else 0
    stats = sandbox.stats()
    assert sum(b.extra["events"] for b in sequential) == CHANGES
    assert sum(b.extra["events"] for b in parallel) == CHANGES
    assert merged(parallel) == merged(sequential)
    assert list(merged(parallel)) == list(merged(sequential))  # the same order
    # The same position (how far each read got, `through`, is its own server time's).
    assert {**parallel[-1].position, "through": 0} == {**sequential[-1].position, "through": 0}
    positions = [b.position["created"] for b in parallel]
    assert positions == sorted(positions)  # a saved position never moves back
    assert calls == stats["requests"]  # every call counted, the windows' included
    assert sum(b.api_calls for b in parallel) == calls  # and each in a batch
    assert calls > sequential_calls  # windows end in partial pages...
    assert peak > 1  # ...but were read at once


def test_few_pending_events_are_read_one_page_at_a_time() -> None:
    first = [{"id": f"evt_{i}", "created": 1000 + i // 10} for i in range(100)]
    assert plan(first, now=1010, page_size=100, workers=8) == []  # ~10 more events
    assert plan(first, now=2000, page_size=100, workers=1) == []  # one worker
    windows = plan(first, now=2000, page_size=100, workers=8)
    assert windows[0].lo == 1009  # the second of the newest event handed on
    assert windows[-1] == Window(windows[-1].lo)  # open-ended: nothing newer is missed
    assert all(a.hi == b.lo for a, b in itertools.pairwise(windows))


def test_the_last_windows_taper_so_that_they_end_together() -> None:
    """Read together at the end, the last windows hold fewer pages, the very last one."""
    first = [{"id": f"evt_{i}", "created": 1000 + i // 10} for i in range(100)]  # 10/s
    windows = plan(first, now=9000, page_size=100, workers=8)
    widths = [w.hi - w.lo for w in windows[:-1] if w.hi is not None]
    assert widths[1:-10] == [80] * len(widths[1:-10])  # eight pages at 10 events/s
    tail = widths[-8:]
    assert tail == sorted(tail, reverse=True)
    assert tail[-1] == 20  # two pages, then...
    assert windows[-1] == Window(8991)  # ...one (to "now"), open-ended
    assert windows[0].lo == 1009
    assert all(a.hi == b.lo for a, b in itertools.pairwise(windows))


def test_a_burst_then_a_quiet_day_is_not_cut_into_thousands_of_windows() -> None:
    """The first page's density is a guess for the whole backlog: 100 events in one
    second, then a quiet day, made 10,800 windows (a call each at least)."""
    burst = [{"id": f"evt_{i}", "created": 1000} for i in range(100)]
    windows = plan(burst, now=1000 + 86_400, page_size=100, workers=8)
    assert len(windows) == event_windows.MOST_WINDOWS_PER_WORKER * (8 + 2)
    assert windows[0].lo == 1000
    assert all(a.hi == b.lo for a, b in itertools.pairwise(windows))
    # Only the oldest, full size (eight pages at the density seen): a window is held
    # whole in memory, so none is made wider.  The walk plans again after them.
    assert {w.hi - w.lo for w in windows if w.hi is not None} == {8}
    assert windows[-1].hi is not None


def test_a_long_dense_backlog_is_planned_in_windows_of_eight_pages() -> None:
    """Four events a second for thirty days: windows stay eight pages each (capping
    their number by widening them made windows of 222,500 events, held in memory)."""
    first = [{"id": f"evt_{i}", "created": 1000 + i // 4} for i in range(100)]
    windows = plan(first, now=1024 + 30 * 86_400, page_size=100, workers=4)
    assert len(windows) == event_windows.MOST_WINDOWS_PER_WORKER * (4 + 2)
    assert all((w.hi - w.lo) * 4 <= event_windows.PAGES_PER_WINDOW * 100 for w in windows if w.hi)


def test_a_burst_then_a_quiet_spell_is_read_by_a_few_calls() -> None:
    """Windows end at the newest event, not at the server's time."""
    with start_sandbox(customers=0, seed=5) as sandbox, source_for(sandbox) as source:
        headers = {"Authorization": f"Bearer {sandbox.secret_key}"}
        with httpx.Client(base_url=sandbox.url, headers=headers, timeout=30) as http:
            http.post("/v1/customers", data={"email": "first@example.com"}).raise_for_status()
            position = source.event_position()
            for i in range(450):  # within a second or two of the sandbox's clock
                http.post("/v1/customers", data={"email": f"b{i}@example.com"})
            sandbox.advance_clock(86_400)
            source._changes.workers = 8
            before = source.api_calls
            batches = list(source.read_changes(position))
        assert sum(len(b.changes) for b in batches) == 450
        assert source.api_calls - before <= 12, source.api_calls - before
