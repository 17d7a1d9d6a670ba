"""Coalescing: many deliveries, at most one queued follow-up per pipeline, one more
only after a run claimed before the latest request, or one that did not succeed."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
from tests.services.conftest import MakePipeline, connect, due_now

from headwater.adapters.connectors.stripe.changes import SETTLE, unsettled
from headwater.adapters.store import queue
from headwater.adapters.store import runs as run_store
from headwater.adapters.store import webhooks as store
from headwater.kernel.entities import Connection, Pipeline, RunStatus, utcnow
from headwater.sandbox.testing import RunningSandbox, start_sandbox
from headwater.services.app import App
from headwater.services.pipelines import manage, runner
from headwater.services.webhooks.followups import (
    HOLD,
    MOST_WAIT,
    QUIET_SECONDS,
    SETTLE_WAIT,
    dispatch_due,
    request_runs,
)


@pytest.fixture(scope="module")
def empty_sandbox() -> Iterator[RunningSandbox]:
    with start_sandbox(customers=0, seed=4) as running:
        yield running


def _live(app: App, pipeline_id: str) -> RunStatus | None:
    live = run_store.live_run(app.engine, pipeline_id)
    return live.status if live else None


def test_requests_coalesce_into_one_queued_run_then_one_follow_up(
    app: App, empty_sandbox: RunningSandbox, make_pipeline: MakePipeline
) -> None:
    conn = connect(app, empty_sandbox)
    pipe = make_pipeline(conn, enabled=True, incremental=True)
    full = make_pipeline(conn, name="full only", enabled=True, incremental=False)
    off = make_pipeline(conn, name="disabled", enabled=False, incremental=True)
    t0 = utcnow()
    for i in range(50):  # a burst of deliveries within the quiet spell
        assert request_runs(app, conn.id, f"evt_a{i}", t0 + timedelta(milliseconds=i)) == [pipe.id]
    assert [f.pipeline_id for f in store.pending_followups(app.engine)] == [pipe.id]
    assert request_runs(app, conn.id, "evt_a0", t0) is None  # a duplicate asks nothing
    assert dispatch_due(app, t0) == []  # not due before a quiet spell
    [run] = dispatch_due(app, t0 + timedelta(seconds=QUIET_SECONDS + 1))
    assert run.pipeline_id == pipe.id
    assert run.status == RunStatus.QUEUED
    # The request stays, to see whether that run settles what it reads (`settling`).
    [check] = store.pending_followups(app.engine)
    assert check.settling
    assert check.due_at == t0 + timedelta(milliseconds=49) + SETTLE_WAIT  # latest request
    assert _live(app, full.id) is None
    assert _live(app, off.id) is None

    # More requests while it is queued: they wait for it; its claim covers them.
    t1 = utcnow()
    request_runs(app, conn.id, "evt_b", t1)
    assert dispatch_due(app, t1 + timedelta(seconds=5)) == []
    [held] = store.pending_followups(app.engine)
    assert (held.covered_by, held.settling) == (None, False)  # a request again
    assert held.due_at == t1 + timedelta(seconds=5) + HOLD  # behind the others now
    run_store.claim_run(app.engine, run.id, "owner", utcnow() + timedelta(seconds=30))
    assert store.pending_followups(app.engine)[0].covered_by == run.id

    # A request made after its start waits for it to end, then runs once.
    t2 = utcnow() + timedelta(milliseconds=5)
    for i in range(20):
        request_runs(app, conn.id, f"evt_c{i}", t2 + timedelta(milliseconds=i))
    assert dispatch_due(app, t2 + timedelta(seconds=5)) == []
    [kept] = store.pending_followups(app.engine)  # kept: the run began too early
    assert kept.covered_by is None
    run_store.finish_run(app.engine, run.id, "owner", status="succeeded", message=None)
    [follow_up] = dispatch_due(app, t2 + timedelta(seconds=7))
    assert follow_up.id != run.id
    assert follow_up.status == RunStatus.QUEUED
    assert dispatch_due(app, t2 + timedelta(seconds=10)) == []
    [check] = store.pending_followups(app.engine)
    assert check.settling
    # It ends with its position settled (this pipeline saved none): nothing follows.
    _ends(app, follow_up.id, "succeeded")
    assert dispatch_due(app, t2 + timedelta(seconds=30)) == []
    assert store.pending_followups(app.engine) == []


def test_a_request_covered_by_a_run_goes_once_that_run_succeeded(
    app: App, empty_sandbox: RunningSandbox, make_pipeline: MakePipeline
) -> None:
    conn = connect(app, empty_sandbox)
    pipe = make_pipeline(conn, enabled=True, incremental=True)
    asked = utcnow() - timedelta(seconds=10)
    request_runs(app, conn.id, "evt_d", asked)
    run = run_store.create_run(app.engine, pipe.id, "incremental")
    run_store.claim_run(app.engine, run.id, "owner", utcnow() + timedelta(seconds=30))
    assert dispatch_due(app, utcnow()) == []
    [held] = store.pending_followups(app.engine)  # until that run has read
    assert held.covered_by == run.id
    run_store.finish_run(app.engine, run.id, "owner", status="succeeded", message=None)
    assert dispatch_due(app, utcnow() + HOLD) == []
    assert store.pending_followups(app.engine) == []


def test_a_run_claimed_by_a_service_worker_covers_the_requests_too(
    app: App, empty_sandbox: RunningSandbox, make_pipeline: MakePipeline
) -> None:
    """`serve`'s workers claim through the queue (`claim_next`), not `claim_run`."""
    conn = connect(app, empty_sandbox)
    pipe = make_pipeline(conn, enabled=True, incremental=True)
    run = run_store.create_run(app.engine, pipe.id, "incremental")
    request_runs(app, conn.id, "evt_q", utcnow())
    claimed = queue.claim_next(app.engine, "worker", utcnow() + timedelta(seconds=30))
    assert claimed is not None
    assert claimed.id == run.id
    [covered] = store.pending_followups(app.engine)
    assert covered.covered_by == run.id


@pytest.mark.parametrize("ending", ["failed", "cancelled", "cancelled before it started"])
def test_a_request_whose_covering_run_did_not_succeed_runs(
    app: App, empty_sandbox: RunningSandbox, make_pipeline: MakePipeline, ending: str
) -> None:
    """A queued or running run counted as covering a request, which was dropped at
    once: when that run failed or was cancelled, the acknowledged change stayed unread
    until another one came."""
    conn = connect(app, empty_sandbox)
    pipe = make_pipeline(conn, enabled=True, incremental=True)
    run = run_store.create_run(app.engine, pipe.id, "incremental")
    request_runs(app, conn.id, "evt_f", utcnow())
    assert dispatch_due(app, utcnow() + timedelta(seconds=5)) == []  # it waits for the run
    if ending == "cancelled before it started":
        runner.cancel_run(app, run.id)
    else:
        run_store.claim_run(app.engine, run.id, "owner", utcnow() + timedelta(seconds=30))
        assert dispatch_due(app, utcnow() + timedelta(seconds=10)) == []
        status = "failed" if ending == "failed" else "cancelled"
        run_store.finish_run(app.engine, run.id, "owner", status=status, message="x")
    [again] = dispatch_due(app, utcnow() + timedelta(seconds=20))
    assert again.id != run.id
    # It stays to see that run settle; when that one fails too, it goes (a failing
    # pipeline is the runner's to retry, not run again and again from here).
    [check] = store.pending_followups(app.engine)
    assert check.settling
    _ends(app, again.id, "failed")
    assert dispatch_due(app, utcnow() + timedelta(seconds=40)) == []
    assert store.pending_followups(app.engine) == []


def test_a_request_whose_run_was_closed_as_lost_runs_again_as_a_retry(
    app: App, empty_sandbox: RunningSandbox, make_pipeline: MakePipeline
) -> None:
    """The serve executing the request's run was killed (SIGKILL, a lost machine) and
    another closed that run as lost, which no runner retries (only the process that ran
    a run retries it): the settling check dropped the request as if the runner would,
    and the change it announced stayed unread until another came.  It now runs again,
    as a retry of the lost run, up to the runner's number of retries."""
    conn = connect(app, empty_sandbox)
    pipe = make_pipeline(conn, enabled=True, incremental=True)
    asked = utcnow()
    request_runs(app, conn.id, "evt_lost", asked)
    [run] = dispatch_due(app, asked + timedelta(seconds=QUIET_SECONDS + 1))
    for attempt in range(1, app.settings.run_retries + 2):
        if attempt > 1:  # at once after a first loss, then as the runner's (`lost_wait`)
            wait = 0 if attempt == 2 else app.settings.run_retry_seconds * 2 ** (attempt - 3)
            assert run.not_before is not None
            assert wait - 5 <= (run.not_before - utcnow()).total_seconds() <= wait
            due_now(app, run)
        lapsed = utcnow() - timedelta(seconds=1)  # its worker died: no renewal came
        claimed = queue.claim_next(app.engine, "worker", lapsed)
        assert claimed is not None
        assert (claimed.id, claimed.attempt) == (run.id, attempt)
        assert run_store.reap_lapsed(app.engine, utcnow()) == [run.id]
        assert run_store.get_run(app.engine, run.id, 0).message.startswith("worker lost on ")
        again = dispatch_due(app, asked + SETTLE_WAIT + timedelta(seconds=attempt))
        if attempt > app.settings.run_retries:
            break
        assert [(r.pipeline_id, r.retry_of, r.attempt) for r in again] == [
            (pipe.id, run.id, attempt + 1)
        ]
        [check] = store.pending_followups(app.engine)
        assert check.settling
        run = again[0]
    # Lost as often as the runner retries: given up, as the runner gives up.
    assert again == []
    assert store.pending_followups(app.engine) == []
    assert _live(app, pipe.id) is None


def test_a_lost_run_whose_cancel_was_asked_is_not_run_again(
    app: App, empty_sandbox: RunningSandbox, make_pipeline: MakePipeline
) -> None:
    """The retry of a lost run was decided by a copy of the runner's rule that lacked
    its cancel check: a run the user cancelled, whose worker then died before it saw
    the cancel, ran again."""
    conn = connect(app, empty_sandbox)
    pipe = make_pipeline(conn, enabled=True, incremental=True)
    asked = utcnow()
    request_runs(app, conn.id, "evt_cancelled", asked)
    [run] = dispatch_due(app, asked + timedelta(seconds=QUIET_SECONDS + 1))
    assert queue.claim_next(app.engine, "worker", utcnow() - timedelta(seconds=1)) is not None
    assert run_store.request_cancel(app.engine, run.id).cancel_requested
    assert run_store.reap_lapsed(app.engine, utcnow()) == [run.id]
    assert dispatch_due(app, asked + SETTLE_WAIT + timedelta(seconds=1)) == []
    assert store.pending_followups(app.engine) == []
    assert _live(app, pipe.id) is None


def test_a_run_that_left_events_unsettled_is_followed_by_one_that_settles_them(
    app: App, make_pipeline: MakePipeline
) -> None:
    """The request was dropped when its run was enqueued: when that run saved its
    position before the changes it read (Stripe may list one of them late), no run
    followed until another change came."""
    with start_sandbox(customers=3, seed=43) as sandbox:
        conn = connect(app, sandbox)
        pipe = make_pipeline(conn, enabled=True, incremental=True)
        assert runner.run_pipeline(app, pipe.id).kind == "full"
        sandbox.advance_clock(SETTLE + 1)
        headers = {"Authorization": f"Bearer {sandbox.secret_key}"}
        with httpx.Client(base_url=sandbox.url, headers=headers) as stripe:
            stripe.post("/v1/customers", data={"email": "one@example.com"}).raise_for_status()
        asked = utcnow()
        request_runs(app, conn.id, "evt_one", asked)
        [first] = dispatch_due(app, asked + timedelta(seconds=QUIET_SECONDS + 1))
        read = runner.execute_run(app, first.id)
        assert (read.kind, read.counters["written"]) == ("incremental", 1)
        assert dispatch_due(app, asked + SETTLE_WAIT - timedelta(seconds=1)) == []
        [settle] = dispatch_due(app, asked + SETTLE_WAIT)
        sandbox.advance_clock(SETTLE + 1)
        assert runner.execute_run(app, settle.id).status == RunStatus.SUCCEEDED
        assert dispatch_due(app, asked + SETTLE_WAIT * 3) == []
        assert store.pending_followups(app.engine) == []


def test_a_run_claimed_before_the_request_does_not_cover_it_whatever_the_clocks(
    app: App, empty_sandbox: RunningSandbox, make_pipeline: MakePipeline
) -> None:
    """Coverage compared the run's start (the worker's clock) with the request's time
    (the API process's): with the API's clock 10 s behind, a request made after the run
    had read was judged covered and dropped."""
    conn = connect(app, empty_sandbox)
    pipe = make_pipeline(conn, enabled=True, incremental=True)
    run = run_store.create_run(app.engine, pipe.id, "incremental")
    run_store.claim_run(app.engine, run.id, "owner", utcnow() + timedelta(seconds=30))
    request_runs(app, conn.id, "evt_g", utcnow() - timedelta(seconds=10))
    run_store.finish_run(app.engine, run.id, "owner", status="succeeded", message=None)
    [follow_up] = dispatch_due(app, utcnow() + timedelta(seconds=5))
    assert follow_up.id != run.id


def test_requests_held_behind_long_runs_do_not_starve_the_others(
    app: App, empty_sandbox: RunningSandbox, make_pipeline: MakePipeline
) -> None:
    """The pass reads the 100 requests due first: held ones stayed first, so with 100
    pipelines behind long runs no other request was ever looked at."""
    conn = connect(app, empty_sandbox)
    t0 = utcnow()
    for i in range(101):
        busy = make_pipeline(conn, name=f"busy {i}", enabled=True, incremental=True)
        run = run_store.create_run(app.engine, busy.id, "incremental")
        run_store.claim_run(app.engine, run.id, "owner", t0 + timedelta(hours=1))
    request_runs(app, conn.id, "evt_busy", t0)  # asks all of them: due first
    fresh = make_pipeline(conn, name="fresh", enabled=True, incremental=True)
    store.record_delivery(app.engine, conn.id, "evt_fresh", t0 + timedelta(seconds=1),
                          [(fresh.id, fresh.workspace_id)], (QUIET_SECONDS, MOST_WAIT))  # fmt: skip
    now = t0 + timedelta(seconds=3)
    enqueued = dispatch_due(app, now) + dispatch_due(app, now + timedelta(milliseconds=1))
    assert [r.pipeline_id for r in enqueued] == [fresh.id]


def test_a_steady_stream_still_runs_within_the_longest_wait(
    app: App, empty_sandbox: RunningSandbox, make_pipeline: MakePipeline
) -> None:
    conn = connect(app, empty_sandbox)
    make_pipeline(conn, enabled=True, incremental=True)
    t0 = utcnow()
    step = timedelta(seconds=QUIET_SECONDS / 2)
    now = t0
    while now < t0 + timedelta(seconds=MOST_WAIT):
        request_runs(app, conn.id, f"evt_{now.timestamp()}", now)
        now += step
    [due] = store.pending_followups(app.engine)
    assert due.due_at <= t0 + timedelta(seconds=MOST_WAIT)
    assert len(dispatch_due(app, t0 + timedelta(seconds=MOST_WAIT))) == 1


def test_a_pipeline_disabled_deleted_or_made_full_only_after_the_request_never_runs(
    app: App, empty_sandbox: RunningSandbox, make_pipeline: MakePipeline
) -> None:
    conn = connect(app, empty_sandbox)
    pipe = make_pipeline(conn, enabled=True, incremental=True)
    other = make_pipeline(conn, name="other", enabled=True, incremental=True)
    full = make_pipeline(conn, name="made full only", enabled=True, incremental=True)
    request_runs(app, conn.id, "evt_e", utcnow())
    manage.update(app, pipe.id, manage.PipelineChanges(enabled=False))
    manage.delete(app, other.id)
    manage.update(app, full.id, manage.PipelineChanges(incremental=False))  # ran full
    assert dispatch_due(app, utcnow() + timedelta(seconds=5)) == []
    assert store.pending_followups(app.engine) == []
    assert _live(app, pipe.id) is None
    assert _live(app, full.id) is None


def test_a_late_request_for_changes_the_last_run_already_read_runs_nothing(
    app: App, make_pipeline: MakePipeline
) -> None:
    """Deliveries straggle behind their changes (Stripe sends them concurrently, and
    retries): a request made after a run that read its change must not run again."""
    with (
        start_sandbox(customers=3, seed=41) as sandbox,
        httpx.Client(base_url=sandbox.url, auth=(sandbox.secret_key, "")) as stripe,
    ):
        conn = connect(app, sandbox)
        pipe = make_pipeline(conn, enabled=True, incremental=True)
        assert runner.run_pipeline(app, pipe.id).kind == "full"
        stripe.post("/v1/customers", data={"email": "late@example.com"}).raise_for_status()
        read = runner.run_pipeline(app, pipe.id)  # reads that change ...
        assert (read.kind, read.counters["written"]) == ("incremental", 1)
        asked = utcnow()  # ... before its delivery arrives
        request_runs(app, conn.id, "evt_late", asked)
        assert dispatch_due(app, asked + timedelta(seconds=QUIET_SECONDS + 1)) == []
        # That run read the change but saved its position before it (made within
        # `changes.SETTLE` seconds of the read, Stripe may still list an earlier event
        # late): one more run once it settles, which reads it again, then no other.
        assert [f.pipeline_id for f in store.pending_followups(app.engine)] == [pipe.id]
        assert dispatch_due(app, asked + SETTLE_WAIT - timedelta(seconds=1)) == []
        [settle] = dispatch_due(app, asked + SETTLE_WAIT)
        sandbox.advance_clock(SETTLE + 1)
        done = runner.execute_run(app, settle.id)
        assert (done.id, done.kind, done.counters["written"]) == (settle.id, "incremental", 1)
        asked = utcnow()
        request_runs(app, conn.id, "evt_late_again", asked)
        assert dispatch_due(app, asked + timedelta(seconds=QUIET_SECONDS + 1)) == []
        # Stripe may list an event after its delivery: judged by its list SETTLE after.
        assert dispatch_due(app, asked + SETTLE_WAIT) == []
        assert store.pending_followups(app.engine) == []
        # A change the last run did not read still runs.
        stripe.post("/v1/customers", data={"email": "new@example.com"}).raise_for_status()
        asked = utcnow()
        request_runs(app, conn.id, "evt_new", asked)
        [run] = dispatch_due(app, asked + timedelta(seconds=QUIET_SECONDS + 1))
        assert run.pipeline_id == pipe.id


def _ends(app: App, run_id: str, status: str) -> None:
    """The queued run is claimed by a worker and ends `status`."""
    run_store.claim_run(app.engine, run_id, "owner", utcnow() + timedelta(seconds=30))
    run_store.finish_run(app.engine, run_id, "owner", status=status, message=None)


def test_a_straggling_delivery_of_an_event_stripe_lists_late_still_runs(
    app: App, make_pipeline: MakePipeline
) -> None:
    """Stripe's event list is eventually consistent (`changes.SETTLE`): a delivery can
    arrive before its event is listed.  A request made just after a run was dropped at
    once when Stripe's newest listed event was the position that run saved, so its
    change (listed a moment later) waited for another change or the schedule.  The
    delivery here comes before its change is listed (the test makes the change after
    the delivery, as Stripe listing it late)."""
    with (
        start_sandbox(customers=3, seed=44) as sandbox,
        httpx.Client(base_url=sandbox.url, auth=(sandbox.secret_key, "")) as stripe,
    ):
        conn, pipe = _settled(app, sandbox, stripe, make_pipeline)  # a run ended just now
        asked = utcnow()
        request_runs(app, conn.id, "evt_listed_late", asked)
        assert dispatch_due(app, asked + timedelta(seconds=QUIET_SECONDS + 1)) == []
        # Stripe lists nothing newer yet, but may until SETTLE after the delivery.
        [held] = store.pending_followups(app.engine)
        assert held.due_at == asked + SETTLE_WAIT
        made = stripe.post("/v1/customers", data={"email": "listed-late@example.com"})
        made.raise_for_status()
        [run] = dispatch_due(app, asked + SETTLE_WAIT)
        assert run.pipeline_id == pipe.id
        done = runner.execute_run(app, run.id)
        assert (done.kind, done.counters["written"]) == ("incremental", 1)


def test_a_request_covered_by_a_run_that_read_before_stripe_listed_its_event_runs_again(
    app: App, make_pipeline: MakePipeline
) -> None:
    """The run claimed after a delivery read Stripe's events before the event was listed
    (eventually consistent: `changes.SETTLE`), saw nothing new and saved a settled
    position; the request was dropped as settled, and the change waited for another
    one.  It is judged SETTLE after the delivery, by Stripe's list then."""
    with (
        start_sandbox(customers=3, seed=45) as sandbox,
        httpx.Client(base_url=sandbox.url, auth=(sandbox.secret_key, "")) as stripe,
    ):
        conn, pipe = _settled(app, sandbox, stripe, make_pipeline)
        asked = utcnow()
        request_runs(app, conn.id, "evt_not_listed_yet", asked)
        covering = runner.enqueue(app, pipe.id)  # "run now", or a schedule's run
        read = runner.execute_run(app, covering.id)  # claimed after the request
        assert (read.kind, read.counters["written"]) == ("incremental", 0)
        assert dispatch_due(app, asked + timedelta(seconds=QUIET_SECONDS + 1)) == []
        [held] = store.pending_followups(app.engine)
        assert held.covered_by == covering.id
        made = stripe.post("/v1/customers", data={"email": "listed-late@example.com"})
        made.raise_for_status()
        [run] = dispatch_due(app, asked + SETTLE_WAIT)
        done = runner.execute_run(app, run.id)
        assert (done.kind, done.counters["written"]) == ("incremental", 1)


def _settled(
    app: App, sandbox: RunningSandbox, stripe: httpx.Client, make_pipeline: MakePipeline
) -> tuple[Connection, Pipeline]:
    """A connection and a pipeline that read a change and settled it: its saved position
    is Stripe's newest event, made more than `SETTLE` seconds before its last read."""
    conn = connect(app, sandbox)
    pipe = make_pipeline(conn, enabled=True, incremental=True)
    assert runner.run_pipeline(app, pipe.id).kind == "full"
    stripe.post("/v1/customers", data={"email": "read@example.com"}).raise_for_status()
    assert runner.run_pipeline(app, pipe.id).counters["written"] == 1
    sandbox.advance_clock(SETTLE + 1)
    assert runner.run_pipeline(app, pipe.id).kind == "incremental"
    position = manage.get(app, pipe.id).state.position
    assert position is not None
    assert position["event_id"] is not None
    assert not unsettled(position)
    return conn, pipe
