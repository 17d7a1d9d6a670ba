"""Coalescing: many deliveries, at most one queued follow-up per pipeline, one more
only after a run that started before the latest request."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
from tests.services.conftest import MakePipeline, connect

from headwater.adapters.store import runs as run_store
from headwater.adapters.store import webhooks as store
from headwater.kernel.entities import RunStatus, utcnow
from headwater.sandbox.testing import RunningSandbox, start_sandbox
from headwater.services.app import App
from headwater.services.pipelines import manage, runner
from headwater.services.webhooks.followups import (
    MOST_WAIT,
    QUIET_SECONDS,
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
    assert store.pending_followups(app.engine) == []
    assert _live(app, full.id) is None
    assert _live(app, off.id) is None

    # More requests while it is queued: the queued run covers them.
    t1 = utcnow()
    request_runs(app, conn.id, "evt_b", t1)
    assert dispatch_due(app, t1 + timedelta(seconds=5)) == []
    assert store.pending_followups(app.engine) == []

    # It starts; a request made after its start waits for it to end, then runs once.
    run_store.claim_run(app.engine, run.id, "owner", utcnow() + timedelta(seconds=30))
    t2 = utcnow() + timedelta(milliseconds=5)
    for i in range(20):
        request_runs(app, conn.id, f"evt_c{i}", t2 + timedelta(milliseconds=i))
    assert dispatch_due(app, t2 + timedelta(seconds=5)) == []
    assert len(store.pending_followups(app.engine)) == 1  # kept: the run began too early
    run_store.finish_run(app.engine, run.id, "owner", status="succeeded", message=None)
    [follow_up] = dispatch_due(app, t2 + timedelta(seconds=5))
    assert follow_up.id != run.id
    assert follow_up.status == RunStatus.QUEUED
    assert dispatch_due(app, t2 + timedelta(seconds=10)) == []
    assert store.pending_followups(app.engine) == []


def test_a_request_already_covered_by_a_running_run_is_dropped(
    app: App, empty_sandbox: RunningSandbox, make_pipeline: MakePipeline
) -> None:
    conn = connect(app, empty_sandbox)
    pipe = make_pipeline(conn, enabled=True, incremental=True)
    asked = utcnow() - timedelta(seconds=10)
    request_runs(app, conn.id, "evt_d", asked)
    run = run_store.create_run(app.engine, pipe.id, "incremental")
    run_store.claim_run(app.engine, run.id, "owner", utcnow() + timedelta(seconds=30))
    assert dispatch_due(app, utcnow()) == []
    assert store.pending_followups(app.engine) == []  # that run started after the ask


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


def test_a_pipeline_disabled_or_deleted_after_the_request_never_runs(
    app: App, empty_sandbox: RunningSandbox, make_pipeline: MakePipeline
) -> None:
    conn = connect(app, empty_sandbox)
    pipe = make_pipeline(conn, enabled=True, incremental=True)
    other = make_pipeline(conn, name="other", enabled=True, incremental=True)
    request_runs(app, conn.id, "evt_e", utcnow())
    manage.update(app, pipe.id, manage.PipelineChanges(enabled=False))
    manage.delete(app, other.id)
    assert dispatch_due(app, utcnow() + timedelta(seconds=5)) == []
    assert store.pending_followups(app.engine) == []
    assert _live(app, pipe.id) is None


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
        assert store.pending_followups(app.engine) == []
        # A change the last run did not read still runs.
        stripe.post("/v1/customers", data={"email": "new@example.com"}).raise_for_status()
        asked = utcnow()
        request_runs(app, conn.id, "evt_new", asked)
        [run] = dispatch_due(app, asked + timedelta(seconds=QUIET_SECONDS + 1))
        assert run.pipeline_id == pipe.id
