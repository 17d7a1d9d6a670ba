"""Run workers as real processes on both metadata stores: the queue drains exactly once,
a killed worker's run is closed and its pipeline runnable again, a paused worker that
lost its lease cannot write, cancel works queued and running."""

from __future__ import annotations

import os
import signal
import time

import pytest
from tests.service.conftest import BIG, STORES, World, pause, slow, wait_for
from tests.services.test_lease import just_renewed, page_pace
from tests.serving import start_worker

from headwater.adapters.store import runs
from headwater.kernel.entities import Run, RunStatus
from headwater.sandbox.testing import RunningSandbox
from headwater.services.pipelines import runner
from headwater.services.pipelines.ending import LAPSED_AFTER_WRITES
from headwater.services.pipelines.engine import WRITE_BATCH
from headwater.services.pipelines.lease import CANCEL_CHECK_SECONDS

pytestmark = [pytest.mark.slow, pytest.mark.parametrize("service_store", STORES)]

RUNS = 40


def test_two_worker_processes_drain_the_queue_each_run_executed_once(
    pg_world: World, small_sandbox: RunningSandbox
) -> None:
    world = pg_world
    pipelines = world.pipelines(small_sandbox, RUNS)
    queued = [runner.enqueue(world.app, p.id).id for p in pipelines]
    small_sandbox.reset_stats()
    env = world.env()
    with (
        start_worker(world.home, database_url=world.database_url, env=env, workers=2) as one,
        start_worker(world.home, database_url=world.database_url, env=env, workers=2) as two,
    ):
        wait_for(lambda: all(not world.run(r).live for r in queued), 240, "the queue drained")
        ended = [world.run(r) for r in queued]
        assert {r.status for r in ended} == {RunStatus.SUCCEEDED}, [
            (r.id, r.message) for r in ended if r.status != RunStatus.SUCCEEDED
        ]
        assert {r.pid for r in ended} == {one.pid, two.pid}  # both took their share
    # Each run read Stripe's customers once: none was executed twice.
    assert small_sandbox.stats()["by_path"]["GET /v1/customers"] == RUNS
    for pipeline, run_id in zip(pipelines, queued, strict=True):
        assert world.warehouse_rows(pipeline.id, run_id) == 5


def test_a_worker_killed_mid_run_has_its_run_failed_and_retried_by_another(
    pg_world: World, small_sandbox: RunningSandbox
) -> None:
    """The run of a worker killed mid-run is closed as lost by another worker, which
    retries it at once (it was not retried: a "Run now" stayed undone)."""
    world = pg_world
    [pipeline] = world.pipelines(small_sandbox, 1)
    small_sandbox.control(latency_ms=60_000)  # the run waits on Stripe: alive, no progress
    run = runner.enqueue(world.app, pipeline.id)
    env = world.env(lease_seconds=3)
    with start_worker(world.home, database_url=world.database_url, env=env) as doomed:
        wait_for(lambda: world.run(run.id).status == RunStatus.RUNNING, 30, "the run started")
        os.kill(doomed.pid, signal.SIGKILL)
        doomed.wait(10)
    small_sandbox.control(latency_ms=0)
    with start_worker(world.home, database_url=world.database_url, env=env):
        # Another worker closes it (its process is gone, or its lease lapsed) ...
        wait_for(lambda: world.run(run.id).status == RunStatus.FAILED, 30, "closed as lost")
        assert (world.run(run.id).message or "").startswith("worker lost on ")
        # ... and retries it: the retry runs and imports what the lost run did not.
        wait_for(lambda: _retry_of(world, pipeline.id, run.id) is not None, 30, "retried")
        again = _retry_of(world, pipeline.id, run.id)
        assert again is not None
        assert again.attempt == 2
        wait_for(lambda: world.run(again.id).status == RunStatus.SUCCEEDED, 60, "ran again")
    assert world.warehouse_rows(pipeline.id) == 5


def _retry_of(world: World, pipeline_id: str, run_id: str) -> Run | None:
    found = runs.list_runs(world.app.engine, [pipeline_id], 20)
    return next((r for r in found if r.retry_of == run_id), None)


def _written(world: World, run_id: str) -> bool:
    return bool(world.run(run_id).counters.get("written", 0))


def test_a_paused_worker_past_its_lease_cannot_write_when_it_resumes(
    pg_world: World, big_sandbox: RunningSandbox
) -> None:
    world = pg_world
    [pipeline] = world.pipelines(big_sandbox, 1)
    slow(big_sandbox)
    run = runner.enqueue(world.app, pipeline.id)
    env = world.env(lease_seconds=2)
    with start_worker(world.home, database_url=world.database_url, env=env) as paused:
        wait_for(lambda: _written(world, run.id), 60, "a first batch landed")
        pause(world.app, paused.pid, run.id)  # its reader process goes on reading
        with start_worker(world.home, database_url=world.database_url, env=env):
            # The new worker starts (seconds of imports under CI's load) and reaps it.
            wait_for(lambda: world.run(run.id).status == RunStatus.FAILED, 60, "closed as lost")
            assert "its lease lapsed" in (world.run(run.id).message or "")
            kept = world.warehouse_rows(pipeline.id, run.id)
            os.kill(paused.pid, signal.SIGCONT)
            wait_for(
                lambda: "the run's own process said" in (world.run(run.id).message or ""),
                60,
                "the resumed process noted its ending",
            )
            # It stopped at its next boundary, or (paused late, on a loaded machine)
            # every write had committed and it only ended.
            said = world.run(run.id).message or ""
            assert "stopped without writing more" in said or LAPSED_AFTER_WRITES in said
            # At most the write it had in flight when it was paused (fenced before the
            # pause; a batch is WRITE_BATCH plus at most one page) committed; no batch
            # it reached after resuming did.
            assert world.warehouse_rows(pipeline.id, run.id) <= kept + WRITE_BATCH + 100
            assert world.run(run.id).status == RunStatus.FAILED
            slow(big_sandbox, on=False)
            # The worker that closed it retried it at once; the retry owns the pipeline
            # (the resumed process was fenced off) and imports the rest.
            again = _retry_of(world, pipeline.id, run.id)
            assert again is not None
            wait_for(lambda: world.run(again.id).status == RunStatus.SUCCEEDED, 60, "ran again")
    assert world.warehouse_rows(pipeline.id) == BIG


def test_cancel_a_queued_run_at_once_and_a_running_one_at_a_batch_boundary(
    pg_world: World, big_sandbox: RunningSandbox
) -> None:
    world = pg_world
    first, second = world.pipelines(big_sandbox, 2)
    waiting = runner.enqueue(world.app, first.id)
    cancelled = runner.cancel_run(world.app, waiting.id)
    assert cancelled.status == RunStatus.CANCELLED  # nobody claimed it: ended at once
    # 200 ms a page, one at a time: the read of BIG takes 20 s or more, so the cancel
    # asked once the first batch landed comes before its end (at 60 ms, reads that
    # no longer wait on their own 429s at a concurrency limit of 1 sometimes ended
    # first, and the run succeeded).
    slow(big_sandbox, latency_ms=200)
    run = runner.enqueue(world.app, second.id)
    with start_worker(world.home, database_url=world.database_url, env=world.env(3)):
        wait_for(lambda: _written(world, run.id), 60, "a first batch landed")
        asked = runner.cancel_run(world.app, run.id)
        assert asked.status == RunStatus.RUNNING
        assert asked.cancel_requested
        wait_for(lambda: world.run(run.id).status == RunStatus.CANCELLED, 15, "cancelled")
    slow(big_sandbox, on=False)
    ended = world.run(run.id)
    assert ended.message == "cancelled on request"
    assert world.warehouse_rows(second.id) == ended.counters["written"] < BIG
    assert world.run(waiting.id).status == RunStatus.CANCELLED


def test_a_cancel_from_another_process_stops_a_workers_run_within_the_cancel_check(
    pg_world: World, big_sandbox: RunningSandbox
) -> None:
    """The worker process learnt of a cancel asked elsewhere (here the test's process:
    `runs cancel` in a shell, or another `serve`) at its run's next lease renewal, a
    tenth of the lease (3 s by default; measured 0.5 to 3.0 s, with the page).  Its lease
    thread reads the request every `CANCEL_CHECK_SECONDS`: here renewals are 6 s apart
    and the cancel comes just after one; what committed is kept."""
    world = pg_world
    [pipeline] = world.pipelines(big_sandbox, 1)
    slow(big_sandbox, latency_ms=250)  # BIG in pages of 100, one at a time: 27 s or more
    big_sandbox.reset_stats()
    run = runner.enqueue(world.app, pipeline.id)
    with start_worker(world.home, database_url=world.database_url, env=world.env(60)):
        wait_for(lambda: world.run(run.id).counters.get("read"), 60, "the run read a page")
        just_renewed(world.app.engine, run.id)
        asked = time.monotonic()
        assert runner.cancel_run(world.app, run.id).cancel_requested
        while world.run(run.id).live and time.monotonic() - asked < 30:
            time.sleep(0.02)
        took = time.monotonic() - asked
    pace = page_pace(big_sandbox)
    slow(big_sandbox, on=False)
    ended = world.run(run.id)
    assert ended.status == RunStatus.CANCELLED, ended.message
    assert world.warehouse_rows(pipeline.id) == ended.counters["written"] < BIG
    bound = 2 * CANCEL_CHECK_SECONDS + pace
    assert took < bound, f"the cancel took {took:.2f} s (bound {bound:.2f} s, a page {pace:.2f} s)"
