"""A stop (a cancel, `serve` stopping) while a run waits on its warehouse: the statement
or wait under way ends (`Warehouse.interrupt`), its transaction rolls back.  While it
resolves identities, after its every write and its position committed, the run's
identities stay pending for the next resolution and the run itself succeeded (every
customer landed), saying that resolution was stopped; while it writes, it ends
cancelled, keeping what committed."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import psycopg
import pytest
from tests.conftest import PG_URL
from tests.services.conftest import MakePipeline, connect, reload, use_postgres
from tests.services.test_incremental_properties import warehouse_position

from headwater.adapters.store import queue, runs
from headwater.kernel.entities import Run, RunStatus, utcnow
from headwater.sandbox.testing import start_sandbox
from headwater.services.app import App
from headwater.services.pipelines import runner
from headwater.services.pipelines.lease import RunStop, new_owner


def _wait(condition: object, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def test_a_cancel_while_the_run_resolves_ends_resolution_and_loses_nothing(
    warehouse_app: App, make_pipeline: MakePipeline
) -> None:
    """Resolution waited here for another resolution (`profiles rebuild`, another
    run's) holding the warehouse's resolution lock; a cancel was not heard until it
    got the lock and resolved everything (a first import of a million identities:
    over a minute), nor was `serve` stopping.  The held lock stands for any long wait
    or statement of a resolution."""
    app = warehouse_app
    with start_sandbox(customers=300, seed=74) as sb:
        pipeline = make_pipeline(connect(app, sb))
        ended: list[Run] = []
        holder = app.warehouse()
        try:
            with holder.resolution_lock():
                thread = threading.Thread(
                    target=lambda: ended.append(runner.run_pipeline(app, pipeline.id))
                )
                thread.start()
                # The full run's last write cleared the need for one: it resolves next.
                _wait(lambda: not reload(app, pipeline).needs_full, "the import committed")
                time.sleep(0.3)
                took = _cancelled_after(app, pipeline.id, thread)
        finally:
            holder.close()
        thread.join(60)
        [run] = ended
        assert took < 3, f"the cancel waited {took:.1f} s for the resolution"
        assert run.status == RunStatus.SUCCEEDED, run.message
        assert run.counters["written"] == 300
        assert run.cancel_requested
        assert run.summary["profiles"]["stopped"] == "cancelled on request"
        assert any("resolution was stopped" in w for w in run.summary["warnings"])
        wh = app.warehouse()
        try:
            assert len(wh.pending_identities().keys) == 300  # nothing resolved, none lost
            assert wh.count_profiles() == 0
        finally:
            wh.close()
        again = runner.run_pipeline(app, pipeline.id)
    assert again.status == RunStatus.SUCCEEDED, again.message
    assert again.kind == "incremental"  # the stopped run's position had committed
    assert again.counters["written"] == 0
    assert again.summary["profiles"]["considered"] == 300
    wh = app.warehouse()
    try:
        assert not wh.pending_identities().keys
        assert wh.count_profiles() > 0
        assert wh.count(pipeline.id) == 300
    finally:
        wh.close()


@pytest.mark.postgres
def test_a_cancel_while_the_run_waits_on_a_locked_warehouse_acts_at_once(
    app: App, make_pipeline: MakePipeline, pg_schema: str
) -> None:
    """A PostgreSQL warehouse whose identities another session locked (a long query or
    migration of the user's, an ALTER): the run waited on the lock, and a cancel was
    not heard until the lock was released (more than 30 s here, as long as it lasts)."""
    use_postgres(app, pg_schema)
    with start_sandbox(customers=300, seed=75) as sb:
        pipeline = make_pipeline(connect(app, sb))
        assert runner.run_pipeline(app, pipeline.id).status == RunStatus.SUCCEEDED
        position = warehouse_position(app, pipeline)
        ended: list[Run] = []
        with psycopg.connect(PG_URL) as locker:
            locker.execute(f'LOCK TABLE "{pg_schema}".identities IN EXCLUSIVE MODE')
            thread = threading.Thread(
                target=lambda: ended.append(runner.run_pipeline(app, pipeline.id, full=True))
            )
            thread.start()
            _wait(lambda: runs.live_run(app.engine, pipeline.id) is not None, "it started")
            time.sleep(1.0)  # it waits on the lock now
            took = _cancelled_after(app, pipeline.id, thread)
            locker.rollback()
        thread.join(60)
        [run] = ended
        assert took < 3, f"the cancel waited {took:.1f} s for the warehouse"
        assert run.status == RunStatus.CANCELLED, run.message
        assert run.message == "cancelled on request"
        assert warehouse_position(app, pipeline) == position
        again = runner.run_pipeline(app, pipeline.id)
    assert again.status == RunStatus.SUCCEEDED, again.message
    wh = app.warehouse()
    try:
        assert wh.count(pipeline.id) == 300
    finally:
        wh.close()


def test_the_service_stopping_while_a_run_resolves_ends_it_succeeded_not_requeued(
    warehouse_app: App, make_pipeline: MakePipeline
) -> None:
    """`serve` stopping (SIGTERM) puts a running run back in the queue; one that only
    resolves identities has imported everything: it ends succeeded, its resolution
    stopped, and says that the service stopped (not that it was re-queued)."""
    app = warehouse_app
    with start_sandbox(customers=200, seed=76) as sb:
        pipeline = make_pipeline(connect(app, sb))
        queued = runner.enqueue(app, pipeline.id)
        owner = new_owner()
        claimed = queue.claim_next(app.engine, owner, utcnow() + timedelta(minutes=5))
        assert claimed is not None
        assert claimed.id == queued.id
        stop = RunStop()
        ended: list[Run] = []
        holder = app.warehouse()
        try:
            with holder.resolution_lock():
                thread = threading.Thread(
                    target=lambda: ended.append(
                        runner.execute_claimed(app, claimed, owner, stop=stop)
                    )
                )
                thread.start()
                _wait(lambda: not reload(app, pipeline).needs_full, "the import committed")
                time.sleep(0.3)
                stop.request(
                    RunStatus.QUEUED, "re-queued: the service on here stopped while it ran"
                )
                thread.join(10)
        finally:
            holder.close()
        thread.join(60)
    [run] = ended
    assert run.status == RunStatus.SUCCEEDED, run.message
    assert run.counters["written"] == 200
    assert run.summary["profiles"]["stopped"] == "the service stopped"


def _cancelled_after(app: App, pipeline_id: str, thread: threading.Thread) -> float:
    """Cancel the pipeline's live run; the seconds until `thread`, running it, ended
    (10 at most)."""
    live = runs.live_run(app.engine, pipeline_id)
    assert live is not None
    asked = time.monotonic()
    runner.cancel_run(app, live.id)
    thread.join(10)
    return time.monotonic() - asked
