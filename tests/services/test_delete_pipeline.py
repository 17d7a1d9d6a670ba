"""Deleting a pipeline whose run is queued: the run ends `cancelled` at once with the
reason (no worker can claim it meanwhile), the pipeline, its runs and its rows go; a
running run still refuses the deletion and changes nothing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from tests.services.conftest import MakePipeline, connect

from headwater.adapters.store import queue, schedules
from headwater.adapters.store import runs as run_store
from headwater.kernel.entities import Pipeline, RunStatus, utcnow
from headwater.kernel.errors import Conflict, NotFound
from headwater.sandbox.testing import RunningSandbox, start_sandbox
from headwater.services.app import App
from headwater.services.pipelines import manage, runner


@pytest.fixture(scope="module")
def tiny_sandbox() -> Iterator[RunningSandbox]:
    with start_sandbox(customers=3, seed=31) as running:
        yield running


@pytest.fixture
def pipe(app: App, tiny_sandbox: RunningSandbox, make_pipeline: MakePipeline) -> Pipeline:
    """An hourly pipeline of the tiny sandbox."""
    return make_pipeline(connect(app, tiny_sandbox), schedule="1h")


def test_deleting_a_pipeline_ends_its_queued_run_and_deletes_it(app: App, pipe: Pipeline) -> None:
    assert runner.run_pipeline(app, pipe.id).status == RunStatus.SUCCEEDED
    queued = runner.enqueue(app, pipe.id)
    assert manage.delete(app, pipe.id) == 3  # its identities
    with pytest.raises(NotFound):
        manage.get(app, pipe.id)
    with pytest.raises(NotFound):
        run_store.get_run(app.engine, queued.id)
    # Nothing is left for a worker to claim.
    assert queue.claim_next(app.engine, "worker", utcnow() + timedelta(seconds=30)) is None


def test_retiring_cancels_queued_runs_with_the_reason_and_stops_the_schedule(
    app: App, pipe: Pipeline
) -> None:
    queued = runner.enqueue(app, pipe.id)
    reason = f"cancelled: pipeline {pipe.id} was deleted before the run started"
    assert schedules.retire(app.engine, pipe.id, utcnow(), reason) == [queued.id]
    ended = run_store.get_run(app.engine, queued.id)
    assert (ended.status, ended.message) == (RunStatus.CANCELLED, reason)
    retired = manage.get(app, pipe.id)
    assert (retired.enabled, retired.next_run_at) == (False, None)  # no tick enqueues it


def test_a_running_run_refuses_the_deletion_and_nothing_changes(app: App, pipe: Pipeline) -> None:
    run = runner.enqueue(app, pipe.id)
    claimed = queue.claim_next(app.engine, "worker", utcnow() + timedelta(seconds=30))
    assert claimed is not None
    assert claimed.id == run.id
    with pytest.raises(Conflict, match=rf"has a running run \({run.id}\)"):
        manage.delete(app, pipe.id)
    kept = manage.get(app, pipe.id)
    assert (kept.enabled, kept.next_run_at) == (pipe.enabled, pipe.next_run_at)
    assert run_store.get_run(app.engine, run.id).status == RunStatus.RUNNING
