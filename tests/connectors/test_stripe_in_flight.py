"""Requests in flight during a full read: the adaptive gate, window splitting, budgets."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from tests.connectors.conftest import FakeClock, run_on, source_for, warm_gate

from headwater.adapters.connectors.stripe import StripeSettings
from headwater.adapters.connectors.stripe.concurrency import ConcurrencySettings, Outcome
from headwater.adapters.connectors.stripe.flight import Gate, gate_for
from headwater.adapters.connectors.stripe.full import _Run, read_pages
from headwater.adapters.connectors.stripe.http import StripeHTTP, refusal
from headwater.adapters.connectors.stripe.ratelimit import RequestBudget
from headwater.adapters.connectors.stripe.windows import Stream, Window, split_stream
from headwater.sandbox.testing import RunningSandbox, start_sandbox


@pytest.fixture(scope="module")
def slow_sandbox() -> Iterator[RunningSandbox]:
    """2,000 customers answered after 20 ms each; tests set the limits they need."""
    with start_sandbox(customers=2000, seed=21, latency_ms=20) as sandbox:
        yield sandbox


def test_split_pieces_cover_the_rest_exactly_and_the_stream_keeps_its_second() -> None:
    stream = Stream(lo=1000, newest=2000, oldest=1500, records=1000)  # 2/s: ~1,000 left
    lo, pieces = split_stream(stream, 4, page_size=100)
    assert len(pieces) == 3
    edges = sorted([(w.lo, w.hi) for w in pieces] + [(lo, 1501)])
    assert edges[0][0] == 1000
    assert edges[-1][1] == 1501
    assert all(a[1] == b[0] for a, b in itertools.pairwise(edges))  # no gap/overlap
    assert lo <= 1500  # the stream's cursor is inside second 1500: it keeps it


def test_a_stream_is_not_split_in_more_pieces_than_it_holds_pages() -> None:
    short = Stream(lo=1000, newest=1100, oldest=1050, records=300)  # ~294 left: 2 pages
    lo, pieces = split_stream(short, 4, page_size=100)
    assert (lo, pieces) == (1025, [Window(1000, 1025)])  # two pieces, not four
    under = Stream(lo=1000, newest=1100, oldest=1030, records=300)  # ~127 left
    assert split_stream(under, 4, page_size=100) == (1000, [])  # not two whole pages
    one_second = Stream(lo=1500, newest=2000, oldest=1500, records=5000)
    assert split_stream(one_second, 4, page_size=100) == (1500, [])


def test_requests_in_flight_never_exceed_the_cap(slow_sandbox: RunningSandbox) -> None:
    slow_sandbox.reset_stats()
    settings = StripeSettings(
        base_url=slow_sandbox.url,
        api_key=slow_sandbox.secret_key,
        requests_per_second=1000.0,
        workers=3,
    )
    gate = gate_for(settings)
    http = StripeHTTP(settings, gate=gate)
    try:
        ids = [c["id"] for page in read_pages(http, Window(0), workers=3) for c in page.records]
    finally:
        http.close()
    stats = slow_sandbox.stats()
    assert len(ids) == len(set(ids)) == 2000
    assert stats["peak_in_flight"] <= 3
    assert gate.peak == 3  # the cap was reached: windows were split for it
    assert http.api_calls == stats["requests"]


def test_a_concurrency_limit_is_found_and_every_call_and_retry_is_counted(
    slow_sandbox: RunningSandbox,
) -> None:
    slow_sandbox.control(concurrency_limit=4)
    slow_sandbox.reset_stats()
    try:
        with source_for(slow_sandbox, workers=16, max_retries=20) as source:
            ids = [c["id"] for page in source.read_full() for c in page]
            calls, retries = source.api_calls, source.http.retries
    finally:
        slow_sandbox.control(concurrency_limit=0)
    stats = slow_sandbox.stats()
    assert len(ids) == len(set(ids)) == 2000
    assert stats["rate_limited_by_reason"].get("global-concurrency", 0) > 0
    assert stats["peak_in_flight"] <= 4
    assert calls == stats["requests"]
    assert retries == stats["rate_limited"]
    # Backing off kept the refusals to a small share of the calls.
    assert stats["rate_limited"] <= 0.25 * stats["requests"]


def test_the_budget_holds_across_the_reading_process_and_the_run() -> None:
    """The reading process hands its budget back: the run's next request waits for it.
    At 1 request/s; the gap is measured where the requests arrive (the sandbox's
    timeline), not where their answers come back: on a loaded machine an answer can
    reach the run well after the child's last request was sent."""
    rate = 1.0
    with start_sandbox(customers=250, seed=22) as sandbox:
        with source_for(sandbox, requests_per_second=rate, workers=4) as source:
            pages = list(source.read_full())
            child = len(sandbox.timeline())
            next(iter(source.read_newest(max_pages=1)))
        admitted = sorted(row[0] for row in sandbox.timeline())
    assert sum(len(p) for p in pages) == 250
    assert child >= 3  # three pages (or more, with windows)
    assert len(admitted) == child + 1  # and the run's own request
    # The run's request came at least 1/rate after the child's last one.
    assert admitted[-1] - admitted[-2] >= 1 / rate - 0.1


def test_a_stream_that_would_be_the_tail_is_split_even_with_every_slot_busy() -> None:
    """At 1 s per page, 32 windows open (the cap), one more waiting: a window with 20
    pages left would run 20 s while the read has about 4 s left, so it shares its rest
    now (the pieces wait for the first workers that finish); one with 2 pages does not."""
    clock = FakeClock()
    gate = Gate(ConcurrencySettings(budget=25.0, cap=32, initial=32), clock)
    for _ in range(30):
        gate.acquire()
        flight = gate.sent()
        clock.now += 1.0
        gate.done(flight, Outcome.ANSWERED)
    settings = StripeSettings(base_url="http://127.0.0.1:9", api_key="sk_test_x" * 3)
    http = StripeHTTP(settings, limiter=RequestBudget(25.0), gate=gate)
    try:
        run = _Run(http, page_size=100, workers=32)
        run._pending, run._active = 33, 32
        for index in range(31):
            run._left[index] = 300.0  # three pages each
        assert run._room() == 0
        long = Stream(lo=0, newest=3000, oldest=2000, records=1000)  # 2,000 left
        assert run._pieces("long", long)[0] >= 4
        short = Stream(lo=0, newest=3000, oldest=200, records=2800)  # 200 left
        assert run._pieces("short", short)[0] == 1
    finally:
        http.close()


def test_at_its_end_a_read_cuts_what_is_left_in_pieces_of_under_a_page() -> None:
    """At 1 s per page, a stream with 2.5 pages left would end the read in a chain of
    three round trips; once the whole read has left less than two round trips of the
    budget, it is cut in pieces of under a page (one per page left and a margin), read
    side by side. Earlier, with much left, the same stream is not split at all."""
    gate = warm_gate(FakeClock(), latency=1.0, cap=32)
    run, http = run_on(gate, workers=32)
    try:
        stream = Stream(lo=0, newest=3000, oldest=1000, records=500)  # 250 left
        run._pending = run._active = 7
        run._left.update(dict.fromkeys(range(6), 60.0))  # six streams on their last page
        pieces, fill = run._pieces("ending", stream)
        assert (pieces, fill) == (4, 0.5)
        lo, split = split_stream(stream, pieces, page_size=100, fill=fill)
        assert [(w.lo, w.hi) for w in split] == [(500, 750), (250, 500), (0, 250)]  # ~62 each
        assert lo == 750  # the stream keeps the newest piece, its cursor's second in it
        run._left.update(dict.fromkeys(range(6), 3000.0))  # 30 pages left each: not yet
        assert run._pieces("ending", stream) == (1, 1.0)
    finally:
        http.close()


def test_a_stream_on_its_last_page_leaves_room_for_another_window() -> None:
    """Near the end of a read most open windows are on their last request: their slots
    are free with those answers, so a stream with pages left may split into them."""
    gate = warm_gate(FakeClock(), latency=0.3)
    wanted = gate.wanted()
    run, http = run_on(gate)
    try:
        run._pending = run._active = wanted
        for index in range(wanted - 1):
            run._left[index] = 40.0  # on its last page
        run._left["long"] = 900.0
        assert run._room() == wanted - 1
        run._left.update(dict.fromkeys(range(wanted - 1), 400.0))  # pages left
        assert run._room() == 0
    finally:
        http.close()


def test_windows_awaiting_their_first_page_count_in_what_the_read_has_left() -> None:
    """Every open window counts: the ones being paged at what they have left, the others
    (queued, or whose first request is in flight) at the average of those."""
    run, http = run_on(warm_gate(FakeClock(), latency=0.3))
    try:
        run._pending, run._active = 4, 4  # all four read by a worker, none queued
        run._left.update(a=300.0, b=500.0)  # two being paged; two on their first page
        assert run._total_left() == pytest.approx(800.0 + 2 * 400.0)
    finally:
        http.close()


def test_a_read_plans_fewer_windows_than_stripe_refused_in_flight() -> None:
    """At 1 s the budget wants 20 in flight; once Stripe refused a request with 10 in
    flight (its concurrency limit), the read plans windows for fewer than 10."""
    clock = FakeClock()
    gate = warm_gate(clock, latency=1.0)
    assert gate.wanted() == 20
    flights = []
    for _ in range(10):
        gate.acquire()
        flights.append(gate.sent())
    clock.now += 0.3
    gate.done(flights.pop(), Outcome.RATE_LIMITED)
    assert gate.wanted() == 8  # refused at 10: a ceiling of 9, less a margin


def test_a_real_429_tells_the_controller_which_limiter_refused(
    slow_sandbox: RunningSandbox,
) -> None:
    """The sandbox names the limiter in ``Stripe-Rate-Limited-Reason`` as Stripe does: a
    concurrency limiter's 429 is a concurrency signal (the controller goes to the level
    below it), a rate limiter's is not."""
    headers = {"Authorization": f"Bearer {slow_sandbox.secret_key}"}

    def refusals(requests: int) -> list[httpx.Response]:
        with (
            httpx.Client(base_url=slow_sandbox.url, headers=headers) as client,
            ThreadPoolExecutor(requests) as pool,
        ):
            answers = list(pool.map(lambda _: client.get("/v1/customers"), range(requests)))
        return [answer for answer in answers if answer.status_code == 429]

    slow_sandbox.control(latency_ms=300, concurrency_limit=1)
    try:
        crowded = refusals(4)
    finally:
        slow_sandbox.control(latency_ms=20, concurrency_limit=0)
    assert crowded
    assert {refusal(answer) for answer in crowded} == {Outcome.CONCURRENCY_LIMITED}
    slow_sandbox.control(endpoint_rate_limit=1)
    try:
        hurried = refusals(4)
    finally:
        slow_sandbox.control(endpoint_rate_limit=0)
    assert hurried
    assert {refusal(answer) for answer in hurried} == {Outcome.RATE_LIMITED}
