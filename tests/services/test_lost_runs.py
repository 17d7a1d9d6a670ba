"""Runs whose worker was lost (killed, a lost machine) are retried by the service.

A run closed as lost by a worker's housekeeping was never retried: the process that
would have retried it was the one that died.  A "Run now" of a pipeline with no
schedule then stayed undone until someone noticed; a scheduled one waited for its next
slot.  The housekeeping that closes it now enqueues its retry, claimable at once (as
the webhooks' follow-ups retry a lost run), by the runner's rule otherwise (up to
`run_retries`, no retry of a run whose cancel was asked, nor of a disabled or deleted
pipeline's, nor while another run is live)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from tests.services.conftest import MakePipeline, connect, due_now

from headwater.adapters.store import queue
from headwater.adapters.store import runs as run_store
from headwater.kernel.entities import Pipeline, Run, RunStatus, utcnow
from headwater.sandbox.testing import RunningSandbox, start_sandbox
from headwater.services.app import App
from headwater.services.pipelines import manage, runner
from headwater.services.runs.worker import Workers


@pytest.fixture
def empty_sandbox() -> Iterator[RunningSandbox]:
    with start_sandbox(customers=0, seed=5) as running:
        yield running


def lose(app: App, run: Run) -> None:
    """Its worker claims `run` and dies: its lease lapses, no renewal comes."""
    claimed = queue.claim_next(app.engine, "doomed", utcnow() - timedelta(seconds=1))
    assert claimed is not None
    assert claimed.id == run.id


def housekeeping(app: App) -> None:
    """A live worker's housekeeping pass that closes lapsed runs."""
    Workers(app, 1)._reap()


def retries_of(app: App, pipeline: Pipeline) -> list[Run]:
    found = run_store.list_runs(app.engine, [pipeline.id], 50)
    return sorted((r for r in found if r.retry_of), key=lambda r: r.attempt)


def test_a_run_closed_as_lost_is_retried_at_once_then_after_a_backoff(
    app: App, empty_sandbox: RunningSandbox, make_pipeline: MakePipeline
) -> None:
    """The first loss is retried at once; a retry lost again waits as a transient
    failure's retry does (`run_retry_seconds`, doubled each time): a run that kills its
    worker (out of memory) was retried as fast as each attempt died and was found dead."""
    pipe = make_pipeline(connect(app, empty_sandbox), enabled=True)
    run = runner.enqueue(app, pipe.id)
    for attempt in range(1, app.settings.run_retries + 2):
        due_now(app, run)
        lose(app, run)
        housekeeping(app)
        closed = run_store.get_run(app.engine, run.id, 0)
        assert closed.status == RunStatus.FAILED
        assert (closed.message or "").startswith("worker lost on ")
        live = run_store.live_run(app.engine, pipe.id)
        if attempt > app.settings.run_retries:
            assert live is None  # lost as often as the runner retries: given up
            break
        assert live is not None
        assert (live.status, live.retry_of, live.attempt) == (RunStatus.QUEUED, run.id, attempt + 1)
        assert live.not_before is not None
        wait = 0 if attempt == 1 else app.settings.run_retry_seconds * 2 ** (attempt - 2)
        waits = (live.not_before - utcnow()).total_seconds()
        assert wait - 5 <= waits <= wait, (attempt, waits)
        assert f"whose worker was lost: {closed.message}" in (live.message or "")
        run = live
    assert len(retries_of(app, pipe)) == app.settings.run_retries


def test_no_retry_for_a_lost_run_whose_cancel_was_asked_or_whose_pipeline_is_disabled(
    app: App, empty_sandbox: RunningSandbox, make_pipeline: MakePipeline
) -> None:
    conn = connect(app, empty_sandbox)
    cancelled = make_pipeline(conn, name="c", enabled=True)
    disabled = make_pipeline(conn, name="d", enabled=True)
    first = runner.enqueue(app, cancelled.id)
    lose(app, first)
    assert run_store.request_cancel(app.engine, first.id).cancel_requested
    second = runner.enqueue(app, disabled.id)
    lose(app, second)
    manage.update(app, disabled.id, manage.PipelineChanges(enabled=False))
    housekeeping(app)
    for pipe, run in ((cancelled, first), (disabled, second)):
        assert run_store.get_run(app.engine, run.id, 0).status == RunStatus.FAILED
        assert run_store.live_run(app.engine, pipe.id) is None
        assert retries_of(app, pipe) == []


def test_a_run_reaped_as_another_is_enqueued_is_not_retried_the_new_run_stands_for_it(
    app: App, empty_sandbox: RunningSandbox, make_pipeline: MakePipeline
) -> None:
    pipe = make_pipeline(connect(app, empty_sandbox), enabled=True)
    run = runner.enqueue(app, pipe.id)
    lose(app, run)
    again = runner.enqueue(app, pipe.id)  # closes the lapsed run on its way
    assert run_store.get_run(app.engine, run.id, 0).status == RunStatus.FAILED
    housekeeping(app)
    live = run_store.live_run(app.engine, pipe.id)
    assert live is not None
    assert live.id == again.id
    assert retries_of(app, pipe) == []
