"""Runs that meet failures midway (issue 17 §9): nothing after a failed write commits,
the position stays at the last committed batch, unexpected errors end the run cleanly,
and a lost permission falls back to reading by created date."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError
from tests.services.conftest import MakePipeline, connect, reload
from tests.services.test_incremental import FILTER, MAPPING, assert_in_sync, sdk
from tests.services.test_incremental_properties import Mutator, _changes, warehouse_position

from headwater.adapters.connectors.contract import Change, ChangeBatch, PermissionMissing
from headwater.adapters.store import objects, queue
from headwater.adapters.store import runs as run_store
from headwater.adapters.warehouse.contract import WarehouseError, WriteBatch, WriteResult
from headwater.adapters.warehouse.rejects import RejectedData
from headwater.kernel.entities import RunStatus, utcnow
from headwater.kernel.records import Record
from headwater.sandbox.testing import RunningSandbox, start_sandbox
from headwater.services import profiles
from headwater.services.app import App
from headwater.services.pipelines import engine, manage, runner
from headwater.services.pipelines.documents import run_warnings
from headwater.services.pipelines.engine import EVENTS_PERMISSION_WARNING
from headwater.services.pipelines.lease import RunStop, new_owner
from headwater.services.runs import retries


def ids(app: App, pipeline_id: str) -> set[str]:
    wh = app.warehouse()
    try:
        return {r["_source_id"] for r in wh.identities(pipeline_id)}
    finally:
        wh.close()


class FailingWrites:
    """Wraps the app's warehouse so that its `fail_at`-th write raises `error` (by
    default a lost connection), and counts the writes attempted after that one."""

    def __init__(
        self, monkeypatch: pytest.MonkeyPatch, fail_at: int, error: Exception | None = None
    ) -> None:
        self.fail_at = fail_at
        self.error = error or WarehouseError("the warehouse connection was lost mid-batch")
        self.attempts = 0
        self.committed_rows = 0
        self._open = App.warehouse
        self._monkeypatch = monkeypatch
        monkeypatch.setattr(App, "warehouse", lambda app, **kw: self._warehouse(app, **kw))

    def _warehouse(self, app: App, **kw: Any) -> Any:
        wh = self._open(app, **kw)
        write = wh.write

        def failing_write(batch: WriteBatch) -> WriteResult:
            self.attempts += 1
            if self.attempts == self.fail_at:
                raise self.error
            result = write(batch)
            self.committed_rows += len(batch.rows)
            return result

        self._monkeypatch.setattr(wh, "write", failing_write)
        return wh

    def restore(self) -> None:
        self._monkeypatch.setattr(App, "warehouse", self._open)


@pytest.fixture
def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine, "WRITE_BATCH", 20)


@pytest.mark.usefixtures("small_batches")
def test_a_background_write_failing_mid_run_stops_later_batches_and_fails_the_run(
    app: App, make_pipeline: MakePipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    with start_sandbox(customers=400, seed=51) as sb:
        pipeline = make_pipeline(connect(app, sb))
        failing = FailingWrites(monkeypatch, fail_at=3)
        run = runner.run_pipeline(app, pipeline.id)
        failing.restore()
        assert run.status == RunStatus.FAILED
        assert run.message == "the warehouse connection was lost mid-batch"
        assert failing.attempts == 3  # batches queued behind the failed one never written
        assert 0 < failing.committed_rows < 400
        assert len(ids(app, pipeline.id)) == failing.committed_rows  # the two that committed
        assert run.counters["written"] == failing.committed_rows  # counted, though it failed
        assert run.summary["purged"] == 0
        assert reload(app, pipeline).needs_full  # no position saved: the next run is full
        again = runner.run_pipeline(app, pipeline.id)
        everyone = {c.id for c in sdk(sb).v1.customers.list({"limit": 100}).auto_paging_iter()}
    assert again.status == RunStatus.SUCCEEDED
    assert ids(app, pipeline.id) == everyone


@pytest.mark.usefixtures("small_batches")
def test_a_warehouse_failure_during_an_incremental_run_keeps_the_last_committed_position(
    app: App, make_pipeline: MakePipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    with start_sandbox(customers=300, seed=52) as sb:
        pipeline = make_pipeline(connect(app, sb), mapping=MAPPING, filter=FILTER)
        assert runner.run_pipeline(app, pipeline.id).status == RunStatus.SUCCEEDED
        before = warehouse_position(app, pipeline)
        _changes(Mutator(sb), random.Random(3), 300)
        failing = FailingWrites(monkeypatch, fail_at=3)
        failed = runner.run_pipeline(app, pipeline.id)
        failing.restore()
        assert failed.status == RunStatus.FAILED
        assert failed.kind == "incremental"
        assert failing.attempts == 3
        saved = warehouse_position(app, pipeline)
        assert saved != before  # the committed batches' positions were saved ...
        recovered = runner.run_pipeline(app, pipeline.id)  # ... and only theirs
        assert recovered.status == RunStatus.SUCCEEDED
        assert recovered.kind == "incremental"
        assert_in_sync(app, sb, pipeline)


@pytest.mark.usefixtures("small_batches")
@pytest.mark.parametrize(
    ("error", "retried"),
    [
        (WarehouseError("the warehouse connection was lost mid-batch"), True),
        (RejectedData("PostgreSQL refused a value: no single row explains it"), False),
    ],
    ids=["transient", "refused-data"],
)
def test_only_a_transient_warehouse_failure_is_retried(
    app: App,
    make_pipeline: MakePipeline,
    monkeypatch: pytest.MonkeyPatch,
    error: Exception,
    retried: bool,
) -> None:
    """A batch the warehouse refused is a data error: retrying the run cannot fix it, so
    the service never retries it (issue 10 item 2); a lost connection is retried."""
    with start_sandbox(customers=400, seed=53) as sb:
        pipeline = make_pipeline(connect(app, sb))
        failing = FailingWrites(monkeypatch, fail_at=3, error=error)
        run = runner.run_pipeline(app, pipeline.id)
        failing.restore()
    assert run.status == RunStatus.FAILED
    assert run.message == str(error)
    assert bool(run.summary.get("transient")) is retried
    retry = retries.retry_after(app, run)
    assert (retry is not None) is retried
    if retry is not None:
        assert (retry.retry_of, retry.attempt) == (run.id, 2)


def test_a_run_stopped_after_its_read_neither_purges_nor_moves_its_position(
    app: App, make_pipeline: MakePipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rule 6: a run asked to stop (cancelled, or its lease lapsed and it was reaped)
    must not purge or save a position afterwards.  The stop was looked at between pages
    only: one that came as the last page was written still purged and committed."""
    with start_sandbox(customers=30, seed=72) as sb:
        pipeline = make_pipeline(connect(app, sb))
        assert runner.run_pipeline(app, pipeline.id).status == RunStatus.SUCCEEDED
        before = _state(app, pipeline.id)
        gone = sdk(sb).v1.customers.list({"limit": 1}).data[0].id
        sdk(sb).v1.customers.delete(gone)
        real = engine._write_full

        def then_cancelled(ctx: engine.RunContext, pages: Any) -> tuple[int, set[str]]:
            done = real(ctx, pages)
            ctx.stop.request(RunStatus.CANCELLED, "cancelled: asked in the API")
            return done

        monkeypatch.setattr(engine, "_write_full", then_cancelled)
        run = runner.run_pipeline(app, pipeline.id, full=True)
        assert run.status == RunStatus.CANCELLED
        assert run.summary["purged"] == 0
        wh = app.warehouse()
        try:
            assert gone in {r["_source_id"] for r in wh.identities(pipeline.id)}  # not purged
        finally:
            wh.close()
        assert _state(app, pipeline.id) == before  # the first run's position and time


def _state(app: App, pipeline_id: str) -> Any:
    wh = app.warehouse()
    try:
        owned = wh.pipeline_state(pipeline_id)
    finally:
        wh.close()
    assert owned is not None
    return owned.state


def test_a_run_cancelled_as_it_failed_is_not_retried(
    app: App, make_pipeline: MakePipeline, sandbox: RunningSandbox
) -> None:
    """A run asked to cancel that fails (on a transient cause) before it sees the
    request was retried two minutes later: the user had cancelled it."""
    pipeline = make_pipeline(connect(app, sandbox))
    run = run_store.create_run(app.engine, pipeline.id, "full")
    run_store.claim_run(app.engine, run.id, "owner", utcnow() + timedelta(seconds=30))
    run_store.request_cancel(app.engine, run.id)
    summary = {"transient": True}
    run_store.finish_run(
        app.engine, run.id, "owner", status="failed", message="lost", summary=summary
    )
    ended = run_store.get_run(app.engine, run.id)
    assert (ended.status, ended.cancel_requested) == (RunStatus.FAILED, True)
    assert retries.retry_after(app, ended) is None


class ScriptedSource:
    """The real source with one read method replaced by a script."""

    def __init__(self, real: Any, **methods: Callable[..., Iterator[Any]]) -> None:
        self._real = real
        self._methods = methods

    def __getattr__(self, name: str) -> Any:
        return self._methods.get(name) or getattr(self._real, name)


def stop_after_first_page(
    stop: RunStop, written: Callable[[], object], status: RunStatus, message: str
) -> Callable[[Any], Callable[[], Iterator[list[Record]]]]:
    """A `script_source` reader: the real full read, asked to stop (`status`) once its
    first page is written (`written` is true; 10 s at most), then read on."""

    def scripted(real: Any) -> Callable[[], Iterator[list[Record]]]:
        def read_full() -> Iterator[list[Record]]:
            pages = real.read_full()
            try:
                yield next(iter(pages))
                deadline = time.monotonic() + 10
                while not written() and time.monotonic() < deadline:
                    time.sleep(0.05)
                stop.request(status, message)
                yield from pages
            finally:
                pages.close()

        return read_full

    return scripted


def script_source(monkeypatch: pytest.MonkeyPatch, **methods: Any) -> None:
    open_source = runner.open_source

    def scripted(app: App, connection: Any) -> Any:
        real = open_source(app, connection)
        return ScriptedSource(real, **{k: v(real) for k, v in methods.items()})

    monkeypatch.setattr(runner, "open_source", scripted)


def one_without_id(real: Any) -> Callable[[], Iterator[list[Record]]]:
    """For `script_source`: a full read whose first customer comes without its id."""

    def read_full() -> Iterator[list[Record]]:
        for n, page in enumerate(real.read_full()):
            if n == 0:
                page = [{k: v for k, v in page[0].items() if k != "id"}, *page[1:]]
            yield page

    return read_full


def test_events_permission_lost_midway_falls_back_to_new_customers_by_created_date(
    app: App, make_pipeline: MakePipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    with start_sandbox(customers=200, seed=53) as sb:
        pipeline = make_pipeline(connect(app, sb))
        assert runner.run_pipeline(app, pipeline.id).status == RunStatus.SUCCEEDED
        before = warehouse_position(app, pipeline)
        new = [sdk(sb).v1.customers.create({"email": f"n{i}@example.com"}).id for i in range(3)]

        def revoked_after_one_page(real: Any) -> Callable[..., Iterator[ChangeBatch]]:
            def read_changes(position: dict[str, Any]) -> Iterator[ChangeBatch]:
                for n, page in enumerate(real.read_changes(position)):
                    if n == 1:
                        raise PermissionMissing("the key lacks Events: Read", "Events: Read")
                    yield page
                raise PermissionMissing("the key lacks Events: Read", "Events: Read")

            return read_changes

        script_source(monkeypatch, read_changes=revoked_after_one_page)
        run = runner.run_pipeline(app, pipeline.id)
    assert run.status == RunStatus.SUCCEEDED, run.message
    assert run.kind == "incremental"
    assert run.summary["reason"] == "new customers by created date"
    assert run.summary["warnings"] == [EVENTS_PERMISSION_WARNING]
    assert set(new) <= ids(app, pipeline.id)
    assert warehouse_position(app, pipeline) == before  # events not applied: kept


def saved_max_created(app: App, pipeline_id: str) -> int:
    state = _state(app, pipeline_id)
    assert state is not None
    return int(state.max_created)


@pytest.mark.slow
def test_new_customers_by_created_date_cut_short_lose_none(
    app: App, make_pipeline: MakePipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without Events: Read an incremental run reads the customers created since the
    newest it saw, newest first: its position must not pass customers not written yet
    (it moved to the newest with the first page, and a run cut short after that page
    left the older ones out of every later run)."""
    with start_sandbox(customers=0) as sb:
        pipeline = make_pipeline(connect(app, sb, key="rk_test_customers_only"))
        assert runner.run_pipeline(app, pipeline.id).status == RunStatus.SUCCEEDED
        new: list[str] = []
        for second in range(3):  # `created` has one-second resolution
            if second:
                time.sleep(1.1)
            new += [
                sdk(sb).v1.customers.create({"email": f"c{second}-{i}@example.com"}).id
                for i in range(60)
            ]
        before = saved_max_created(app, pipeline.id)

        def cut_after_a_page(real: Any) -> Callable[[int], Iterator[list[Record]]]:
            def read_created_since(created: int) -> Iterator[list[Record]]:
                pages = real.read_created_since(created)
                try:
                    yield next(iter(pages))
                    # Give the page's write time to commit (and a wrong position with it).
                    deadline = time.monotonic() + 3
                    while saved_max_created(app, pipeline.id) == before:
                        if time.monotonic() > deadline:
                            break
                        time.sleep(0.05)
                    raise RuntimeError("the read is cut short")
                finally:
                    pages.close()

            return read_created_since

        script_source(monkeypatch, read_created_since=cut_after_a_page)
        cut = runner.run_pipeline(app, pipeline.id)
        assert cut.status == RunStatus.FAILED
        assert cut.summary["reason"] == "new customers by created date"
        assert 0 < len(ids(app, pipeline.id)) < len(new)
        monkeypatch.undo()
        assert runner.run_pipeline(app, pipeline.id).status == RunStatus.SUCCEEDED
    assert ids(app, pipeline.id) == set(new)
    assert saved_max_created(app, pipeline.id) > before


def test_a_definition_changed_during_a_full_run_makes_the_next_run_full(
    app: App, make_pipeline: MakePipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    """State rule 4 holds for a change saved while a full run reads: that run read with
    the old definition (it cleared the pipeline's need for a full run as it ended)."""
    with start_sandbox(customers=300, seed=67) as sb:
        pipeline = make_pipeline(connect(app, sb))

        def midway(changes: manage.PipelineChanges) -> Callable[[Any], Any]:
            def scripted(real: Any) -> Callable[[], Iterator[list[Record]]]:
                def read_full() -> Iterator[list[Record]]:
                    pages = real.read_full()
                    try:
                        for n, page in enumerate(pages):
                            if n == 1:
                                manage.update(app, pipeline.id, changes)
                            yield page
                    finally:
                        pages.close()

                return read_full

            return scripted

        script_source(monkeypatch, read_full=midway(manage.PipelineChanges(filter=FILTER)))
        run = runner.run_pipeline(app, pipeline.id)
        assert (run.status, run.kind) == (RunStatus.SUCCEEDED, "full"), run.message
        assert reload(app, pipeline).needs_full
        monkeypatch.undo()
        again = runner.run_pipeline(app, pipeline.id)
        assert (again.kind, again.summary["reason"]) == (
            "full",
            "the pipeline is new or its filter or transformation changed",
        )
        assert not reload(app, pipeline).needs_full
        # Another field changed meanwhile (a rename) leaves the definition the run read.
        manage.update(app, pipeline.id, manage.PipelineChanges(clear_filter=True))
        script_source(monkeypatch, read_full=midway(manage.PipelineChanges(name="renamed")))
        renamed = runner.run_pipeline(app, pipeline.id)
    assert (renamed.status, renamed.kind) == (RunStatus.SUCCEEDED, "full")
    assert (reload(app, pipeline).name, reload(app, pipeline).needs_full) == ("renamed", False)


def test_a_full_run_resumed_under_its_id_purges_a_customer_its_earlier_attempt_wrote(
    app: App, make_pipeline: MakePipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run the service put back in the queue resumes under its id (rule 3): a customer
    its first attempt wrote, then deleted in Stripe before the second attempt read, is
    purged (it carried the run's id, which the purge spares)."""
    with start_sandbox(customers=300, seed=71) as sb:
        pipeline = make_pipeline(connect(app, sb))
        assert runner.run_pipeline(app, pipeline.id).status == RunStatus.SUCCEEDED
        queued = runner.enqueue(app, pipeline.id, full=True)
        stop = RunStop()

        def written_by_the_run() -> set[str]:
            wh = app.warehouse()
            try:
                rows = wh.identities(pipeline.id)
            finally:
                wh.close()
            return {r["_source_id"] for r in rows if r["_run_id"] == queued.id}

        stopped_after_a_page = stop_after_first_page(
            stop, written_by_the_run, RunStatus.QUEUED, "re-queued: the service stops"
        )

        def attempt(run_stop: RunStop) -> RunStatus:
            owner = new_owner()
            claimed = queue.claim_next(app.engine, owner, utcnow() + timedelta(minutes=5))
            assert claimed is not None
            assert claimed.id == queued.id
            return runner.execute_claimed(app, claimed, owner, stop=run_stop).status

        script_source(monkeypatch, read_full=stopped_after_a_page)
        monkeypatch.setattr(engine, "WRITE_BATCH", 100)  # a page is a write
        assert attempt(stop) == RunStatus.QUEUED
        monkeypatch.undo()
        deleted = sorted(written_by_the_run())[0]
        sdk(sb).v1.customers.delete(deleted)
        assert attempt(RunStop()) == RunStatus.SUCCEEDED
    left = ids(app, pipeline.id)
    assert deleted not in left
    assert len(left) == 299


def test_a_resolution_failing_after_a_run_is_a_warning_of_the_run(
    app: App, sandbox: RunningSandbox, make_pipeline: MakePipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The run succeeds (its rows committed) and says its profiles were not updated; the
    summary alone kept it, where no reader looks."""

    def fails(*_: Any) -> Any:
        raise WarehouseError("the warehouse went away")

    monkeypatch.setattr(profiles, "resolve_pending", fails)
    pipeline = make_pipeline(connect(app, sandbox))
    run = runner.run_pipeline(app, pipeline.id)
    assert run.status == RunStatus.SUCCEEDED
    assert run.summary["profiles"]["error"] == "the warehouse went away"
    [warning] = run_warnings(run)
    assert warning.startswith("profiles were not updated after this run (the warehouse went")


def test_a_run_queued_as_its_pipeline_was_disabled_ends_cancelled_unstarted(
    app: App, sandbox: RunningSandbox, make_pipeline: MakePipeline
) -> None:
    """A retry or a webhook's follow-up checks `enabled`, then queues: a disable in
    between dropped nothing (the run was not queued yet), and the run then ran."""
    pipeline = make_pipeline(connect(app, sandbox))
    queued = runner.enqueue(app, pipeline.id)
    pipeline.enabled = False  # as the disable, committed after that check
    objects.save(app.engine, pipeline, only=["enabled"])
    owner = new_owner()
    claimed = queue.claim_next(app.engine, owner, utcnow() + timedelta(minutes=5))
    assert claimed is not None
    assert claimed.id == queued.id
    run = runner.execute_claimed(app, claimed, owner, stop=RunStop())
    assert run.status == RunStatus.CANCELLED
    assert run.message == f"cancelled: pipeline {pipeline.id} was disabled before the run started"
    assert ids(app, pipeline.id) == set()


def test_a_cancelled_run_ends_without_resolving_and_the_next_run_resolves(
    app: App, make_pipeline: MakePipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stop promises an end within seconds: a cancelled first import waited for its
    identity rebuild (past 15 s on PostgreSQL under load) before it showed cancelled."""
    with start_sandbox(customers=300, seed=73) as sb:
        pipeline = make_pipeline(connect(app, sb))
        queued = runner.enqueue(app, pipeline.id)
        stop = RunStop()

        cancelled_after_a_page = stop_after_first_page(
            stop, lambda: ids(app, pipeline.id), RunStatus.CANCELLED, "cancelled on request"
        )

        script_source(monkeypatch, read_full=cancelled_after_a_page)
        monkeypatch.setattr(engine, "WRITE_BATCH", 100)  # a page is a write
        owner = new_owner()
        claimed = queue.claim_next(app.engine, owner, utcnow() + timedelta(minutes=5))
        assert claimed is not None
        run = runner.execute_claimed(app, claimed, owner, stop=stop)
        assert (run.id, run.status) == (queued.id, RunStatus.CANCELLED)
        assert "profiles" not in run.summary
        wh = app.warehouse()
        try:
            assert wh.pending_identities().keys  # left for the next resolution
            assert wh.count_profiles() == 0
        finally:
            wh.close()
        monkeypatch.undo()
        assert runner.run_pipeline(app, pipeline.id).status == RunStatus.SUCCEEDED
    wh = app.warehouse()
    try:
        assert not wh.pending_identities().keys
        assert wh.count_profiles() > 0
    finally:
        wh.close()


def test_an_unexpected_exception_fails_the_run_cleanly_and_loses_nothing(
    app: App, sandbox: RunningSandbox, make_pipeline: MakePipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline = make_pipeline(connect(app, sandbox))
    assert runner.run_pipeline(app, pipeline.id).status == RunStatus.SUCCEEDED
    before = ids(app, pipeline.id)
    state = reload(app, pipeline).state
    position = warehouse_position(app, pipeline)

    def breaks_after_a_page(real: Any) -> Callable[[], Iterator[list[Record]]]:
        def read_full() -> Iterator[list[Record]]:
            for page in real.read_full():
                yield page
                raise ZeroDivisionError("division by zero in a page")
            raise AssertionError("no page at all")

        return read_full

    script_source(monkeypatch, read_full=breaks_after_a_page)
    run = runner.run_pipeline(app, pipeline.id, full=True)
    assert run.status == RunStatus.FAILED
    assert run.message == "ZeroDivisionError: division by zero in a page"
    assert run.summary["purged"] == 0
    assert ids(app, pipeline.id) == before
    assert reload(app, pipeline).state == state
    assert warehouse_position(app, pipeline) == position


def test_a_record_without_an_id_is_a_per_record_read_error(
    app: App, sandbox: RunningSandbox, make_pipeline: MakePipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline = make_pipeline(connect(app, sandbox))

    script_source(monkeypatch, read_full=one_without_id)
    run = runner.run_pipeline(app, pipeline.id)
    assert run.status == RunStatus.SUCCEEDED, run.message
    assert run.counters["failed"]["read"] == 1
    assert run.counters["written"] == 1499
    [error] = run.errors
    assert error["step"] == "read"
    assert error["source_id"] is None
    assert error["message"].startswith("record without a string id")


def test_a_full_run_with_a_read_error_deletes_nothing_and_says_so(
    app: App, sandbox: RunningSandbox, make_pipeline: MakePipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rule 3: a customer the full read could not read (here: its record came without
    an id) was purged as unseen, though it exists in Stripe and committed earlier."""
    pipeline = make_pipeline(connect(app, sandbox))
    assert runner.run_pipeline(app, pipeline.id).status == RunStatus.SUCCEEDED
    before = ids(app, pipeline.id)
    assert len(before) == 1500

    script_source(monkeypatch, read_full=one_without_id)
    run = runner.run_pipeline(app, pipeline.id, full=True)
    assert run.status == RunStatus.SUCCEEDED, run.message
    assert run.counters["failed"]["read"] == 1
    assert (run.counters["deleted"], run.summary["purged"]) == (0, 0)
    assert ids(app, pipeline.id) == before  # the unreadable customer kept its row
    assert any("could not be read, so nothing was purged" in w for w in run_warnings(run))
    monkeypatch.undo()
    # The next full run that reads everything purges as usual.
    gone = sorted(before)[0]
    sdk(sandbox).v1.customers.delete(gone)
    again = runner.run_pipeline(app, pipeline.id, full=True)
    assert (again.status, again.summary["purged"]) == (RunStatus.SUCCEEDED, 1)
    assert ids(app, pipeline.id) == before - {gone}


def test_a_store_failing_as_a_full_run_ends_does_not_undo_what_its_record_says(
    app: App, sandbox: RunningSandbox, make_pipeline: MakePipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The metadata store keeps only a display copy of the state: when saving it failed
    (locked) after the purge and the position committed, the run ended `failed`, saying
    that nothing was purged and that the position stayed, beside a deleted counter."""
    pipeline = make_pipeline(connect(app, sandbox))
    assert runner.run_pipeline(app, pipeline.id).status == RunStatus.SUCCEEDED
    gone = sorted(ids(app, pipeline.id))[0]
    sdk(sandbox).v1.customers.delete(gone)

    def locked(*_: Any) -> bool:
        raise OperationalError("UPDATE pipelines", {}, Exception("database is locked"))

    monkeypatch.setattr(objects, "full_run_done", locked)
    run = runner.run_pipeline(app, pipeline.id, full=True)
    monkeypatch.undo()
    assert run.status == RunStatus.SUCCEEDED, run.message
    assert run.counters["deleted"] == run.summary["purged"] == 1
    assert gone not in ids(app, pipeline.id)
    assert _state(app, pipeline.id).last_full_run == run.id


def test_a_run_that_lost_its_lease_does_not_resolve_identities_afterwards(
    app: App, make_pipeline: MakePipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rule 6: a run that lost its lease writes nothing more, and identity resolution
    writes profiles; like a cancelled run it leaves its identities pending for the
    run that took over (it resolved them, though another run owned the pipeline)."""
    with start_sandbox(customers=300, seed=74) as sb:
        pipeline = make_pipeline(connect(app, sb))
        queued = runner.enqueue(app, pipeline.id)
        stop = RunStop()
        lost_after_a_page = stop_after_first_page(
            stop,
            lambda: ids(app, pipeline.id),
            RunStatus.FAILED,
            "the run lost its lease (it was closed as lost); it stopped without writing more",
        )
        script_source(monkeypatch, read_full=lost_after_a_page)
        monkeypatch.setattr(engine, "WRITE_BATCH", 100)  # a page is a write
        owner = new_owner()
        claimed = queue.claim_next(app.engine, owner, utcnow() + timedelta(minutes=5))
        assert claimed is not None
        run = runner.execute_claimed(app, claimed, owner, stop=stop)
        assert (run.id, run.status) == (queued.id, RunStatus.FAILED)
        assert "profiles" not in run.summary
        wh = app.warehouse()
        try:
            assert wh.pending_identities().keys  # left for the run that takes over
            assert wh.count_profiles() == 0
        finally:
            wh.close()


def test_a_run_by_created_date_stopped_after_its_writes_does_not_move_its_position(
    app: App, make_pipeline: MakePipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rule 6, as for a full run: a run asked to stop (cancelled, or its lease lapsed)
    once its pages were written still saved its position, and ended `succeeded`."""
    with start_sandbox(customers=0) as sb:
        pipeline = make_pipeline(connect(app, sb, key="rk_test_customers_only"))
        assert runner.run_pipeline(app, pipeline.id).status == RunStatus.SUCCEEDED
        before = _state(app, pipeline.id)
        new = {sdk(sb).v1.customers.create({"email": f"s{i}@example.com"}).id for i in range(5)}
        stop = RunStop()

        def stopped_once_written(real: Any) -> Callable[[int], Iterator[list[Record]]]:
            def read_created_since(created: int) -> Iterator[list[Record]]:
                pages = real.read_created_since(created)
                try:
                    yield from pages
                    deadline = time.monotonic() + 10
                    while not new <= ids(app, pipeline.id) and time.monotonic() < deadline:
                        time.sleep(0.05)
                    stop.request(RunStatus.CANCELLED, "cancelled on request")
                finally:
                    pages.close()

            return read_created_since

        script_source(monkeypatch, read_created_since=stopped_once_written)
        queued = runner.enqueue(app, pipeline.id)
        owner = new_owner()
        claimed = queue.claim_next(app.engine, owner, utcnow() + timedelta(minutes=5))
        assert claimed is not None
        run = runner.execute_claimed(app, claimed, owner, stop=stop)
    assert (run.id, run.status) == (queued.id, RunStatus.CANCELLED)
    assert run.summary["reason"] == "new customers by created date"
    assert new <= ids(app, pipeline.id)  # what committed stays
    assert _state(app, pipeline.id) == before  # the position did not move after the stop


def test_an_empty_record_in_a_change_is_a_read_error_not_a_failed_run(
    app: App, sandbox: RunningSandbox, make_pipeline: MakePipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A change whose record came empty (``{}``) was left out of the records shaped but
    not of their timestamps, and the mismatch failed the whole run."""
    pipeline = make_pipeline(connect(app, sandbox))
    assert runner.run_pipeline(app, pipeline.id).status == RunStatus.SUCCEEDED
    kept = sorted(ids(app, pipeline.id))[:2]

    def one_empty(real: Any) -> Callable[..., Iterator[ChangeBatch]]:
        def read_changes(position: dict[str, Any]) -> Iterator[ChangeBatch]:
            changes = [
                Change(kept[0], "updated", {}, 1_700_000_000),
                Change(kept[1], "updated", {"id": kept[1], "email": "x@example.com"}, 1),
            ]
            yield ChangeBatch(changes, position)

        return read_changes

    script_source(monkeypatch, read_changes=one_empty)
    run = runner.run_pipeline(app, pipeline.id)
    assert (run.status, run.kind) == (RunStatus.SUCCEEDED, "incremental"), run.message
    assert run.counters["failed"]["read"] == 1
    assert run.counters["written"] == 1
    assert set(kept) <= ids(app, pipeline.id)  # the unreadable change deleted nothing


def test_a_full_run_resumed_under_its_id_keeps_each_record_error_once(
    app: App, make_pipeline: MakePipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full run the service put back in the queue reads everything again when it
    resumes: an error its first attempt stored was stored a second time, beside
    counters that count it once."""
    with start_sandbox(customers=300, seed=75) as sb:
        pipeline = make_pipeline(connect(app, sb))
        queued = runner.enqueue(app, pipeline.id)
        stops = [RunStop(), RunStop()]

        def scripted(real: Any) -> Callable[[], Iterator[list[Record]]]:
            def read_full() -> Iterator[list[Record]]:
                pages = real.read_full()
                try:
                    rest = iter(pages)
                    first = next(rest)
                    yield [{k: v for k, v in first[0].items() if k != "id"}, *first[1:]]
                    if not stops[0].is_set():  # the first attempt: the service stops
                        deadline = time.monotonic() + 10
                        while not ids(app, pipeline.id) and time.monotonic() < deadline:
                            time.sleep(0.05)
                        assert ids(app, pipeline.id), "the first page was not written"
                        stops[0].request(RunStatus.QUEUED, "re-queued: the service stops")
                    yield from rest
                finally:
                    pages.close()

            return read_full

        script_source(monkeypatch, read_full=scripted)
        monkeypatch.setattr(engine, "WRITE_BATCH", 50)  # the first page (99) is a write
        statuses = []
        for stop in stops:
            owner = new_owner()
            claimed = queue.claim_next(app.engine, owner, utcnow() + timedelta(minutes=5))
            assert claimed is not None
            assert claimed.id == queued.id
            statuses.append(runner.execute_claimed(app, claimed, owner, stop=stop).status)
        assert statuses == [RunStatus.QUEUED, RunStatus.SUCCEEDED]
        run = runner.get_run(app, queued.id)
    assert run.counters["failed"]["read"] == 1
    assert [e["step"] for e in run.errors] == ["read"]
