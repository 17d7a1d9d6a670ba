"""The leaderless scheduler on both metadata stores, driven by an injected clock:
due detection, compare-and-swap, catch-up after downtime, disabled pipelines, changes
that apply at once."""

from __future__ import annotations

import dataclasses
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.exc import OperationalError
from tests.conftest import pg_schema_url

from headwater.adapters.store import objects, runs, schedules
from headwater.adapters.store.tables import runs as runs_table
from headwater.kernel.entities import Connection, Pipeline, Run, utcnow
from headwater.kernel.settings import Settings
from headwater.services.app import App
from headwater.services.pipelines import manage
from headwater.services.runs import scheduler
from headwater.services.runs.scheduler import Tick, tick

HOUR = timedelta(hours=1)
SECOND = timedelta(seconds=1)


class SetClock:
    """A clock the test sets and moves (the scheduler only ever asks it the time)."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def now(self) -> datetime:
        return self.at


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_settings(request: pytest.FixtureRequest, settings: Settings) -> Settings:
    if request.param == "postgres":
        url = pg_schema_url(request.getfixturevalue("pg_schema"))
        return dataclasses.replace(settings, database_url=url)
    return settings


@pytest.fixture
def sched_app(store_settings: Settings) -> Iterator[App]:
    application = App.open(store_settings)
    yield application
    application.close()


@pytest.fixture
def connection(sched_app: App) -> Connection:
    now = utcnow()
    conn = Connection(
        "conn_s", sched_app.workspace().id, "s", "stripe", "http://127.0.0.1:9", 20.0,
        "v1:unused", "sk_test_…abcd", False, True, now,
    )  # fmt: skip
    return objects.add(sched_app.engine, conn)


def scheduled(app: App, connection: Connection, schedule: str = "1h", **kw: object) -> Pipeline:
    spec = {"kind": "mapping", "mapping": {"email": "email"}}
    return manage.create(app, connection.id, "p", spec, schedule=schedule, **kw)  # type: ignore[arg-type]


def next_run(app: App, pipeline: Pipeline) -> datetime | None:
    return manage.get(app, pipeline.id).next_run_at


def run_rows(app: App, pipeline: Pipeline) -> list[tuple[str, str]]:
    with app.engine.connect() as conn:
        query = select(runs_table.c.id, runs_table.c.status).where(
            runs_table.c.pipeline_id == pipeline.id
        )
        return [(r.id, r.status) for r in conn.execute(query)]


def finish(app: App, run_id: str) -> None:
    runs.update_run(app.engine, run_id, status="succeeded", finished_at=utcnow())


def test_a_pipeline_is_due_at_its_slot_and_runs_once_per_slot(
    sched_app: App, connection: Connection
) -> None:
    pipeline = scheduled(sched_app, connection)
    slot = next_run(sched_app, pipeline)
    assert slot is not None
    assert utcnow() < slot <= utcnow() + HOUR
    clock = SetClock(slot - SECOND)
    assert tick(sched_app, clock) == Tick()
    clock.at = slot
    done = tick(sched_app, clock)
    assert len(done.enqueued) == 1
    assert run_rows(sched_app, pipeline) == [(done.enqueued[0], "queued")]
    assert next_run(sched_app, pipeline) == slot + HOUR
    assert tick(sched_app, clock) == Tick()  # the same slot never enqueues twice


def test_unscheduled_and_disabled_pipelines_never_run(
    sched_app: App, connection: Connection
) -> None:
    off = scheduled(sched_app, connection, "off")
    disabled = scheduled(sched_app, connection, "5m", enabled=False)
    assert next_run(sched_app, off) is None
    assert next_run(sched_app, disabled) is None
    for days in (1, 30, 400):
        assert tick(sched_app, SetClock(utcnow() + timedelta(days=days))) == Tick()
    assert run_rows(sched_app, off) == []
    assert run_rows(sched_app, disabled) == []


def test_an_edit_saved_as_a_disable_lands_writes_only_what_it_changed(
    sched_app: App, connection: Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rename read the pipeline just before a disable committed and wrote every field
    back: enabled again, with no next run (the schedule never fired again)."""
    pipeline = scheduled(sched_app, connection, "1h")
    stale = manage.get(sched_app, pipeline.id)
    manage.update(sched_app, pipeline.id, manage.PipelineChanges(enabled=False))
    monkeypatch.setattr(manage, "get", lambda *_: dataclasses.replace(stale))
    manage.update(sched_app, pipeline.id, manage.PipelineChanges(name="renamed"))
    monkeypatch.undo()
    after = manage.get(sched_app, pipeline.id)
    assert (after.name, after.enabled, after.next_run_at) == ("renamed", False, None)


def test_after_downtime_one_catch_up_run_not_a_burst(
    sched_app: App, connection: Connection
) -> None:
    pipeline = scheduled(sched_app, connection)
    slot = next_run(sched_app, pipeline)
    assert slot is not None
    clock = SetClock(slot + 5 * HOUR + 17 * SECOND)  # five slots missed while down
    done = tick(sched_app, clock)
    assert len(done.enqueued) == 1
    following = next_run(sched_app, pipeline)
    assert following is not None
    assert clock.at < following <= clock.at + HOUR
    finish(sched_app, done.enqueued[0])
    assert tick(sched_app, clock) == Tick()  # the missed slots are not replayed
    clock.at = following
    assert len(tick(sched_app, clock).enqueued) == 1
    assert len(run_rows(sched_app, pipeline)) == 2


def test_a_live_run_is_not_doubled_and_not_an_error(sched_app: App, connection: Connection) -> None:
    pipeline = scheduled(sched_app, connection, "5m")
    live = runs.create_run(sched_app.engine, pipeline.id, "full")
    slot = next_run(sched_app, pipeline)
    assert slot is not None
    done = tick(sched_app, SetClock(slot))
    assert done == Tick(already_live=[pipeline.id])
    assert run_rows(sched_app, pipeline) == [(live.id, "queued")]
    assert next_run(sched_app, pipeline) == slot + timedelta(minutes=5)


def test_the_compare_and_swap_lets_one_of_two_schedulers_win_a_slot(
    sched_app: App, connection: Connection
) -> None:
    pipeline = scheduled(sched_app, connection)
    slot = next_run(sched_app, pipeline)
    assert slot is not None
    seen = schedules.due_slots(sched_app.engine, sched_app.workspace().id, slot, 10)
    assert [d.pipeline_id for d in seen] == [pipeline.id]
    assert schedules.advance(sched_app.engine, seen[0], slot + HOUR)
    assert not schedules.advance(sched_app.engine, seen[0], slot + HOUR)


def _tick_together(
    app: App, clock: SetClock, barrier: threading.Barrier, results: list[Tick]
) -> None:
    barrier.wait()  # both schedulers look at the same due slots at once
    results.append(tick(app, clock))


def test_two_schedulers_ticking_together_enqueue_one_run_per_due_slot(
    sched_app: App, connection: Connection, store_settings: Settings
) -> None:
    pipelines = [scheduled(sched_app, connection, "5m") for _ in range(25)]
    other = App.open(store_settings)  # a second scheduler: its own engine, same store
    clock = SetClock(utcnow() + timedelta(minutes=5))  # every pipeline's slot has come
    try:
        for _round in range(3):
            results: list[Tick] = []
            barrier = threading.Barrier(2)
            threads = [
                threading.Thread(target=_tick_together, args=(a, clock, barrier, results))
                for a in (sched_app, other)
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            enqueued = [r for done in results for r in done.enqueued]
            assert len(enqueued) == len(pipelines)
            assert not [p for done in results for p in done.already_live]
            for run_id in enqueued:
                finish(sched_app, run_id)
            clock.at += timedelta(minutes=5)
    finally:
        other.close()
    per_pipeline = Counter(len(run_rows(sched_app, p)) for p in pipelines)
    assert per_pipeline == Counter({3: len(pipelines)})


def test_disabling_drops_queued_runs_and_lets_a_running_one_finish(
    sched_app: App, connection: Connection
) -> None:
    waiting = scheduled(sched_app, connection, "15m")
    working = scheduled(sched_app, connection, "15m")
    clock = SetClock(utcnow() + timedelta(minutes=15))
    assert len(tick(sched_app, clock).enqueued) == 2
    running_id = run_rows(sched_app, working)[0][0]
    assert runs.claim_run(sched_app.engine, running_id, "a-worker", utcnow() + HOUR) is not None
    for pipeline in (waiting, working):
        manage.update(sched_app, pipeline.id, manage.PipelineChanges(enabled=False))
        assert next_run(sched_app, pipeline) is None
    dropped = runs.get_run(sched_app.engine, run_rows(sched_app, waiting)[0][0])
    assert (dropped.status, dropped.finished_at is not None) == ("cancelled", True)
    assert dropped.message is not None
    assert "disabled" in dropped.message
    assert run_rows(sched_app, working) == [(running_id, "running")]
    finish(sched_app, running_id)
    clock.at += timedelta(days=2)
    assert tick(sched_app, clock) == Tick()


def test_schedule_changes_apply_at_once(sched_app: App, connection: Connection) -> None:
    pipeline = scheduled(sched_app, connection, "24h")
    changed = manage.update(sched_app, pipeline.id, manage.PipelineChanges(schedule="5m"))
    assert changed.next_run_at is not None
    assert changed.next_run_at <= utcnow() + timedelta(minutes=5)
    assert next_run(sched_app, pipeline) == changed.next_run_at
    off = manage.update(sched_app, pipeline.id, manage.PipelineChanges(schedule="off"))
    assert off.next_run_at is None
    assert next_run(sched_app, pipeline) is None
    manage.update(sched_app, pipeline.id, manage.PipelineChanges(schedule="1h", enabled=False))
    assert next_run(sched_app, pipeline) is None
    enabled = manage.update(sched_app, pipeline.id, manage.PipelineChanges(enabled=True))
    assert enabled.next_run_at is not None
    assert utcnow() < enabled.next_run_at <= utcnow() + HOUR


def test_an_unrelated_update_keeps_the_slot_the_scheduler_advanced(
    sched_app: App, connection: Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline = scheduled(sched_app, connection)
    slot = next_run(sched_app, pipeline)
    assert slot is not None
    # The update reads the pipeline, then a scheduler wins the slot, then it saves.
    read = manage.get(sched_app, pipeline.id)
    monkeypatch.setattr(manage, "get", lambda _app, _id: read)
    assert len(tick(sched_app, SetClock(slot)).enqueued) == 1
    manage.update(sched_app, pipeline.id, manage.PipelineChanges(name="renamed"))
    monkeypatch.undo()
    assert next_run(sched_app, pipeline) == slot + HOUR
    assert tick(sched_app, SetClock(slot + SECOND)) == Tick()


def test_a_pipeline_disabled_while_its_run_is_enqueued_keeps_no_queued_run(
    sched_app: App, connection: Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline = scheduled(sched_app, connection, "5m")
    slot = next_run(sched_app, pipeline)
    assert slot is not None
    create_run = runs.create_run

    def disabled_meanwhile(engine: Engine, pipeline_id: str, kind: str, **kw: Any) -> Run:
        # Someone disables the pipeline after `enqueue` checked it, before its insert.
        manage.update(sched_app, pipeline_id, manage.PipelineChanges(enabled=False))
        return create_run(engine, pipeline_id, kind, **kw)

    monkeypatch.setattr(runs, "create_run", disabled_meanwhile)
    assert tick(sched_app, SetClock(slot)) == Tick(disabled=[pipeline.id])
    [(_run_id, status)] = run_rows(sched_app, pipeline)
    assert status == "cancelled"


@pytest.mark.parametrize("ticker", [tick, scheduler.tick_all], ids=["tick", "tick_all"])
def test_a_slot_whose_run_could_not_be_enqueued_is_kept_and_the_tick_goes_on(
    sched_app: App,
    connection: Connection,
    monkeypatch: pytest.MonkeyPatch,
    ticker: Callable[[App, SetClock], Tick],
) -> None:
    """The slot moved on before the run was enqueued: when the store failed in between
    ("database is locked"), that slot was lost (a 24h pipeline skipped a day), and the
    exception ended the tick for every pipeline after it.  The tick of every workspace
    (the service's) dropped the failures from what it reported."""
    first = scheduled(sched_app, connection)
    second = manage.create(
        sched_app, connection.id, "q", {"kind": "mapping", "mapping": {"email": "email"}},
        schedule="1h",
    )  # fmt: skip
    slots = {p.id: next_run(sched_app, p) for p in (first, second)}
    real, failed = scheduler.runner.enqueue, []

    def once(app: App, pipeline_id: str, **kw: object) -> Run:
        if not failed:
            failed.append(pipeline_id)
            raise OperationalError("INSERT", {}, Exception("database is locked"))
        return real(app, pipeline_id, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(scheduler.runner, "enqueue", once)
    clock = SetClock(max(s for s in slots.values() if s is not None))
    done = ticker(sched_app, clock)
    [unlucky] = failed
    assert len(done.enqueued) == 1  # the other pipeline still got its run
    assert done.failed == [unlucky]
    assert next_run(sched_app, manage.get(sched_app, unlucky)) == slots[unlucky]  # kept
    again = ticker(sched_app, clock)
    assert [runs.get_run(sched_app.engine, r).pipeline_id for r in again.enqueued] == [unlucky]


def test_a_store_failure_after_the_run_was_enqueued_does_not_give_its_slot_back(
    sched_app: App, connection: Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The tick looks at the pipeline again once its run is inserted; when that look
    failed ("database is locked"), the slot was given back though its run was queued,
    so the next tick ran the same slot a second time."""
    pipeline = scheduled(sched_app, connection)
    slot = next_run(sched_app, pipeline)
    assert slot is not None
    real, calls = manage.get, []

    def locked_after_the_insert(app: App, pipeline_id: str) -> Pipeline:
        calls.append(pipeline_id)
        if len(calls) == 2:  # the first is `enqueue`'s own check, before its insert
            raise OperationalError("SELECT", {}, Exception("database is locked"))
        return real(app, pipeline_id)

    monkeypatch.setattr(manage, "get", locked_after_the_insert)
    clock = SetClock(slot)
    done = tick(sched_app, clock)
    monkeypatch.undo()
    [(run_id, status)] = run_rows(sched_app, pipeline)
    assert (done.enqueued, status) == ([run_id], "queued")
    assert next_run(sched_app, pipeline) == slot + HOUR  # the slot was used
    runs.request_cancel(sched_app.engine, run_id)  # the run ends before the next tick
    assert tick(sched_app, clock).enqueued == []
    assert len(run_rows(sched_app, pipeline)) == 1


def test_a_slot_set_by_a_clock_that_was_ahead_is_moved_back_when_the_clock_is_right(
    sched_app: App, connection: Connection
) -> None:
    """A machine whose clock was hours ahead (a VM before its time sync, a clock set
    wrong) advanced a 5-minute pipeline's slot to its wrong now: once the clock was
    right again, the pipeline was not due for those hours and ran nothing.  No slot
    lies more than a period (and a margin for clocks that differ a little) ahead of a
    right clock: such a slot is moved to the next one after now, enqueueing nothing."""
    pipeline = scheduled(sched_app, connection, "5m")
    slot = next_run(sched_app, pipeline)
    assert slot is not None
    ahead = SetClock(slot + 3 * HOUR)
    assert len(tick(sched_app, ahead).enqueued) == 1
    finish(sched_app, run_rows(sched_app, pipeline)[0][0])
    right = SetClock(slot + SECOND)
    done = scheduler.reslot(sched_app, right)
    assert done == [pipeline.id]
    following = next_run(sched_app, pipeline)
    assert following is not None
    assert right.at < following <= right.at + timedelta(minutes=5)
    assert len(run_rows(sched_app, pipeline)) == 1  # moving the slot runs nothing
    assert scheduler.reslot(sched_app, right) == []
    right.at = following
    assert len(tick(sched_app, right).enqueued) == 1


def test_a_slot_a_little_ahead_of_the_clock_stays(sched_app: App, connection: Connection) -> None:
    """Machines whose clocks differ by minutes never move each other's slots."""
    pipeline = scheduled(sched_app, connection, "5m")
    slot = next_run(sched_app, pipeline)
    assert slot is not None
    assert len(tick(sched_app, SetClock(slot + timedelta(minutes=40))).enqueued) == 1
    assert scheduler.reslot(sched_app, SetClock(slot)) == []
