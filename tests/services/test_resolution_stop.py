"""A stop (a cancel, `serve` stopping) while a run resolves identities, after its every
write and its position committed: resolution ends at once, its transaction rolled
back, and the run's identities stay pending for the next resolution; the run itself
succeeded (every customer landed), saying that resolution was stopped."""

from __future__ import annotations

import threading
import time

from tests.services.conftest import MakePipeline, connect, reload

from headwater.adapters.store import runs
from headwater.kernel.entities import Run, RunStatus
from headwater.sandbox.testing import start_sandbox
from headwater.services.app import App
from headwater.services.pipelines import runner


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
                live = runs.live_run(app.engine, pipeline.id)
                assert live is not None
                asked = time.monotonic()
                runner.cancel_run(app, live.id)
                thread.join(10)
                took = time.monotonic() - asked
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
