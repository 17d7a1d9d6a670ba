"""Live run bookkeeping (`services/pipelines/recorder.py`) on a real SQLite store:
every error counted, the first ones kept, progress throttled and best effort."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from tests.store.seeding import seed

from headwater.adapters.store import progress, runs
from headwater.adapters.store.database import open_engine
from headwater.kernel.entities import Run, utcnow
from headwater.kernel.records import Step
from headwater.services.pipelines.recorder import Recorder


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    eng = open_engine(f"sqlite:///{tmp_path / 'meta.db'}")
    seed(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def run(engine: Engine) -> Run:
    return runs.create_run(engine, "pl_1", "full")


def test_every_error_is_counted_and_the_first_ones_are_kept_in_order(
    engine: Engine, run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(progress, "MAX_STORED_ERRORS", 3)
    recorder = Recorder(engine, run.id, None)
    for n in range(5):
        recorder.error(f"cus_{n}", Step.VALIDATE, f"bad {n}")
    assert recorder.flush(force=True)
    stored = runs.get_run(engine, run.id)
    assert [e["source_id"] for e in stored.errors] == ["cus_0", "cus_1", "cus_2"]
    assert stored.counters["failed"]["validate"] == 5


def test_progress_is_throttled_unless_forced_and_reported_to_the_caller(
    engine: Engine, run: Run
) -> None:
    seen: list[int] = []
    recorder = Recorder(engine, run.id, lambda c: seen.append(c.read), every=3600)
    recorder.counters.read = 10
    assert recorder.flush()  # the first update goes out at once
    recorder.counters.read = 20
    assert not recorder.flush()  # within `every`: skipped, nothing written
    assert runs.get_run(engine, run.id).counters["read"] == 10
    assert recorder.flush(force=True)
    assert runs.get_run(engine, run.id).counters["read"] == 20
    assert seen == [10, 20]


def test_a_failed_update_is_skipped_and_the_next_one_carries_its_errors(
    engine: Engine, run: Run
) -> None:
    recorder = Recorder(engine, run.id, None)
    recorder.error("cus_1", Step.TRANSFORM, "boom")
    with engine.begin() as conn:  # the store refuses the update (a broken table)
        conn.execute(text("ALTER TABLE run_errors RENAME TO run_errors_away"))
    assert not recorder.flush(force=True)
    assert recorder.skipped_updates == 1
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE run_errors_away RENAME TO run_errors"))
    recorder.error("cus_2", Step.TRANSFORM, "boom again")
    assert recorder.flush(force=True)
    stored = runs.get_run(engine, run.id)
    assert [e["source_id"] for e in stored.errors] == ["cus_1", "cus_2"]
    assert stored.counters["failed"]["transform"] == 2


def test_a_run_closed_as_lost_keeps_what_it_was_closed_with(engine: Engine) -> None:
    """The process that lost a run's lease goes on until it notices; its progress and
    errors no longer land on the run the reaper closed (nor on a later claim of it)."""
    now = utcnow()
    run = runs.create_run(engine, "pl_1", "full")
    assert runs.claim_run(engine, run.id, "lost", now + timedelta(seconds=30))
    recorder = Recorder(engine, run.id, None, owner="lost")
    recorder.counters.read = 10
    recorder.error("cus_1", Step.VALIDATE, "bad")
    assert recorder.flush(force=True)
    assert runs.reap_lapsed(engine, now + timedelta(seconds=31)) == [run.id]
    closed = runs.get_run(engine, run.id, 10)
    recorder.counters.read = 99
    recorder.error("cus_2", Step.VALIDATE, "bad")
    assert not recorder.flush(force=True)
    recorder.store_errors()
    after = runs.get_run(engine, run.id, 10)
    assert after.counters == closed.counters
    assert after.counters["read"] == 10
    assert [e["source_id"] for e in after.errors] == ["cus_1"]
    assert after.status == closed.status
