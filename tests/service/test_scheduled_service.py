"""Schedules in a deployment of one `headwater serve --workers 0` (HTTP only) and
`headwater worker` processes: the serving process ticks the schedules too (the
scheduler is leaderless), so a due pipeline is enqueued whichever process is up."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update
from tests.service.conftest import STORES, World, wait_for
from tests.serving import start_serve, start_worker

from headwater.adapters.store import runs
from headwater.adapters.store.tables import pipelines
from headwater.kernel.entities import Pipeline, RunStatus, utcnow
from headwater.sandbox.testing import RunningSandbox
from headwater.services.pipelines import manage

pytestmark = [pytest.mark.slow, pytest.mark.parametrize("service_store", STORES)]


def _due_now(world: World, pipeline: Pipeline) -> None:
    """The pipeline's slot comes now (rather than within the hour)."""
    with world.app.engine.begin() as conn:
        conn.execute(
            update(pipelines)
            .where(pipelines.c.id == pipeline.id)
            .values(next_run_at=utcnow() - timedelta(seconds=1))
        )


def test_serve_with_no_run_workers_ticks_the_schedules_for_the_workers(
    pg_world: World, small_sandbox: RunningSandbox
) -> None:
    world = pg_world
    [pipeline] = world.pipelines(small_sandbox, 1)
    manage.update(world.app, pipeline.id, manage.PipelineChanges(schedule="1h"))
    _due_now(world, pipeline)
    env = world.env()
    with start_serve(world.home, database_url=world.database_url, env=env, workers=0):
        # The serving process alone enqueues the due run (and executes nothing) ...
        wait_for(lambda: runs.live_run(world.app.engine, pipeline.id) is not None, 20, "a tick")
        queued = runs.live_run(world.app.engine, pipeline.id)
        assert queued is not None
        assert queued.status == RunStatus.QUEUED
        assert manage.get(world.app, pipeline.id).next_run_at > utcnow()  # slot advanced
        # ... and a worker process executes it.
        with start_worker(world.home, database_url=world.database_url, env=env):
            wait_for(lambda: world.run(queued.id).status == RunStatus.SUCCEEDED, 60, "the run")
    assert world.warehouse_rows(pipeline.id, queued.id) == 5
