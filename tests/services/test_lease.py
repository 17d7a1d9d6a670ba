"""The lease thread: renews while the run does nothing else, reports cancel requests and
a lost lease to the engine's thread through `RunStop`."""

from __future__ import annotations

import dataclasses
import itertools
import logging
import threading
import time
from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy import Engine
from tests.services.conftest import MakePipeline, connect

from headwater.adapters.store import runs
from headwater.kernel.entities import Run, RunStatus, utcnow
from headwater.kernel.errors import TransientError
from headwater.sandbox.testing import RunningSandbox, start_sandbox
from headwater.services.app import App
from headwater.services.pipelines import runner
from headwater.services.pipelines.lease import CANCEL_CHECK_SECONDS, LeaseKeeper, RunStop

LEASE = timedelta(seconds=0.5)


def wait_until(condition: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.02)


def test_the_lease_is_renewed_by_the_timer_and_reports_cancel_and_loss(
    app: App, sandbox: RunningSandbox, make_pipeline: MakePipeline
) -> None:
    pipeline = make_pipeline(connect(app, sandbox))
    run = runner.enqueue(app, pipeline.id)
    assert runs.claim_run(app.engine, run.id, "me", utcnow() + LEASE)
    stop = RunStop()
    with LeaseKeeper(app.engine, run.id, "me", LEASE, stop):
        time.sleep(4 * LEASE.total_seconds())  # four leases without any progress
        assert runs.reap_lapsed(app.engine, utcnow()) == []
        assert not stop.is_set()
        runner.cancel_run(app, run.id)
        wait_until(stop.is_set)
        assert stop.status == RunStatus.CANCELLED
        assert stop.message == "cancelled on request"
    # Stalled (no lease thread) past its lease: closed as lost by whoever looks ...
    time.sleep(LEASE.total_seconds() + 0.1)
    assert runs.reap_lapsed(app.engine, utcnow()) == [run.id]
    # ... and when its owner wakes up, its first beat tells the engine to stop.
    lost = RunStop()
    with LeaseKeeper(app.engine, run.id, "me", LEASE, lost):
        wait_until(lost.is_set)
    assert lost.status == RunStatus.FAILED
    assert lost.message.startswith("the run lost its lease")
    assert runs.get_run(app.engine, run.id).status == RunStatus.FAILED


def test_a_stop_calls_its_listeners_once_on_threads_of_their_own(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """What a run waits on is interrupted by a listener (`RunStop.when_requested`): called
    once, by the first request, off the requesting thread (a signal handler only starts
    a thread); added after the request, at once; a failing one is logged, not raised."""
    stop = RunStop()
    called: list[tuple[str, str]] = []
    done = threading.Event()

    def listener(name: str) -> Callable[[], None]:
        def heard() -> None:
            called.append((name, threading.current_thread().name))
            if len(called) == 2:
                done.set()

        return heard

    def failing() -> None:
        raise RuntimeError("the source is gone")

    stop.when_requested(listener("before"))
    stop.when_requested(failing)
    with caplog.at_level(logging.WARNING):
        stop.request(RunStatus.CANCELLED, "cancelled on request")
        stop.request(RunStatus.QUEUED, "a later request changes nothing")
        stop.when_requested(listener("after"))
        assert done.wait(5)
        wait_until(lambda: "the source is gone" in caplog.text)
    assert sorted(called) == [("after", "headwater-stop"), ("before", "headwater-stop")]
    assert (stop.status, stop.message) == (RunStatus.CANCELLED, "cancelled on request")
    assert "the source is gone" in caplog.text


def test_a_run_that_raised_ends_as_its_stop_when_one_was_requested() -> None:
    stop = RunStop()
    assert stop.ending(TransientError("Stripe kept failing"), "run_1") == (
        RunStatus.FAILED,
        "Stripe kept failing",
        True,
    )
    stop.request(RunStatus.QUEUED, "re-queued: the service stopped")
    assert stop.ending(TransientError("the reading process ended"), "run_1") == (
        RunStatus.QUEUED,
        "re-queued: the service stopped",
        False,
    )


def test_a_cancel_asked_in_the_process_running_the_run_acts_at_once(
    app: App, make_pipeline: MakePipeline
) -> None:
    """`serve` answers the API and runs runs in one process, yet a cancel from the
    console waited for the run's next lease beat (a tenth of the lease: 3 s by
    default) to be seen.  Asked in the process holding the run, it stops it at once;
    here the beat is a minute away."""
    long_lease = App.open(dataclasses.replace(app.settings, run_lease_seconds=600))
    try:
        with start_sandbox(customers=3000, seed=48) as sb:
            pipeline = make_pipeline(connect(long_lease, sb, rps=5))  # 30 pages: 6 s
            ended: list[Run] = []
            thread = threading.Thread(
                target=lambda: ended.append(runner.run_pipeline(long_lease, pipeline.id))
            )
            thread.start()
            live = None
            while live is None or not live.counters.get("read"):
                time.sleep(0.05)
                live = runs.live_run(long_lease.engine, pipeline.id)
            asked = time.monotonic()
            runner.cancel_run(long_lease, live.id)
            thread.join(120)
            took = time.monotonic() - asked
    finally:
        long_lease.close()
    [run] = ended
    assert run.status == RunStatus.CANCELLED, run.message
    assert run.message == "cancelled on request"
    assert took < 2, f"the cancel took {took:.1f} s"


def page_pace(sb: RunningSandbox) -> float:
    """The longest time between two pages of customers the run got (one page's reading
    and processing, measured on the sandbox)."""
    answered = sorted(b for _, b, _, op in sb.timeline() if op == "GET /v1/customers")
    assert len(answered) > 2, answered
    return max(b - a for a, b in itertools.pairwise(answered))


def just_renewed(engine: Engine, run_id: str) -> None:
    """Return just after the run's lease thread renewed its lease (the worst moment for a
    cancel that waits for the next renewal)."""
    first = runs.get_run(engine, run_id, 0).lease_expires_at
    wait_until(lambda: runs.get_run(engine, run_id, 0).lease_expires_at != first, 60)


def test_a_cancel_from_another_process_acts_within_the_cancel_check_not_a_lease_beat(
    app: App, make_pipeline: MakePipeline
) -> None:
    """A cancel asked in another process than the run's (`runs cancel` in a shell while
    `pipelines run` executes it) was seen at the run's next lease renewal, a tenth of
    the lease (3 s by default; with the page, up to about 5 s).  The lease thread reads
    the request every `CANCEL_CHECK_SECONDS` between renewals.  Here a renewal is 6 s
    apart and the cancel comes just after one; the store is asked directly, as the
    other process does (this process's `cancel_here` would act at once)."""
    long_lease = App.open(dataclasses.replace(app.settings, run_lease_seconds=60))
    try:
        with start_sandbox(customers=10_000, seed=49) as sb:
            pipeline = make_pipeline(connect(long_lease, sb, rps=5))  # 100 pages: 20 s
            ended: list[Run] = []
            thread = threading.Thread(
                target=lambda: ended.append(runner.run_pipeline(long_lease, pipeline.id))
            )
            thread.start()
            wait_until(lambda: runs.live_run(long_lease.engine, pipeline.id) is not None)
            live = runs.live_run(long_lease.engine, pipeline.id)
            assert live is not None
            just_renewed(long_lease.engine, live.id)
            asked = time.monotonic()
            assert runs.request_cancel(long_lease.engine, live.id).cancel_requested
            thread.join(120)
            took = time.monotonic() - asked
            pace = page_pace(sb)
    finally:
        long_lease.close()
    [run] = ended
    assert run.status == RunStatus.CANCELLED, run.message
    assert run.message == "cancelled on request"
    bound = 2 * CANCEL_CHECK_SECONDS + pace
    assert took < bound, f"the cancel took {took:.2f} s (bound {bound:.2f} s, a page {pace:.2f} s)"
