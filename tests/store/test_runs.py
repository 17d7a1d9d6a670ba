"""Run rows (`adapters/store/runs.py`): one live run, leases, cancel, errors, progress."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine
from tests.store.seeding import seed

from headwater.adapters.store import runs
from headwater.adapters.store.database import describe_error
from headwater.kernel.entities import RunStatus, utcnow
from headwater.kernel.errors import Conflict
from headwater.kernel.records import RecordError, Step


def test_one_live_run_per_pipeline_is_enforced_by_the_database(engine: Engine) -> None:
    seed(engine)
    first = runs.create_run(engine, "pl_1", "full")
    with pytest.raises(Conflict, match=rf"already has a live run \({first.id}, queued\)"):
        runs.create_run(engine, "pl_1", "full")
    runs.update_run(engine, first.id, status="succeeded")
    second = runs.create_run(engine, "pl_1", "incremental")
    assert second.id != first.id


def test_every_time_of_a_run_reads_back_in_utc(engine: Engine) -> None:
    """SQLite hands back naive datetimes: started and finished times came out without
    an offset, beside a created time with one."""
    seed(engine)
    owner = "host:1:token"
    run = runs.create_run(engine, "pl_1", "full", owner, utcnow() + timedelta(minutes=1))
    assert runs.finish_run(engine, run.id, owner, status="succeeded")
    done = runs.get_run(engine, run.id)
    for name in ("created_at", "started_at", "finished_at"):
        value = getattr(done, name)
        assert value is not None
        assert value.utcoffset() == timedelta(0), name


def _dead_pid() -> int:
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(dead.stdout)


def test_a_run_is_dead_when_its_lease_lapsed_or_its_process_on_this_host_is_gone(
    engine: Engine,
) -> None:
    seed(engine)
    now = utcnow()
    run = runs.create_run(engine, "pl_1", "full")
    claimed = runs.claim_run(engine, run.id, "me", now + timedelta(seconds=30))
    assert claimed is not None
    assert claimed.status == RunStatus.RUNNING
    assert claimed.lease_expires_at == now + timedelta(seconds=30)
    # Alive: its lease holds, whatever the age of its last progress update.
    runs.update_run(engine, run.id, heartbeat_at=now - timedelta(hours=1))
    assert runs.reap_lapsed(engine, now + timedelta(seconds=29)) == []
    # Renewed: still alive past the first lease.
    assert runs.renew_lease(engine, run.id, "me", now + timedelta(seconds=60)).held
    assert runs.reap_lapsed(engine, now + timedelta(seconds=59)) == []
    # Lapsed: closed as failed, naming the host.
    assert runs.reap_lapsed(engine, now + timedelta(seconds=61)) == [run.id]
    lost = runs.get_run(engine, run.id)
    assert lost.status == RunStatus.FAILED
    assert lost.message == f"worker lost on {lost.host}: its lease lapsed and was not renewed"
    # Its old owner can neither renew nor record an ending any more.
    assert not runs.renew_lease(engine, run.id, "me", now + timedelta(seconds=90)).held
    assert not runs.finish_run(engine, run.id, "me", status="succeeded")
    runs.note_after_loss(engine, run.id, "me", "it stopped without writing")
    noted = runs.get_run(engine, run.id)
    assert noted.status == RunStatus.FAILED
    assert noted.message == (
        f"worker lost on {lost.host}: its lease lapsed and was not renewed; after that, the "
        "run's own process said: it stopped without writing"
    )
    # A run whose process on this host is gone is closed at once, lease or not.
    second = runs.create_run(engine, "pl_1", "full")
    assert runs.claim_run(engine, second.id, "other", now + timedelta(hours=1))
    runs.update_run(engine, second.id, pid=_dead_pid())
    third = runs.create_run(engine, "pl_1", "full")  # creating one closes it
    gone = runs.get_run(engine, second.id)
    assert gone.status == RunStatus.FAILED
    assert (
        gone.message
        == f"worker lost on {gone.host}: its process {gone.pid} ended without finishing"
    )
    # A queued run is never closed for waiting, however long.
    assert runs.reap_lapsed(engine, now + timedelta(days=30)) == []
    assert runs.get_run(engine, third.id).status == RunStatus.QUEUED


def test_a_run_of_another_pid_namespace_of_the_same_host_name_is_not_judged_by_its_pid(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Containers sharing a host name (host networking) see only their own pids: by the
    name alone, each closed the other's healthy runs as lost, every second."""
    seed(engine)
    now = utcnow()
    monkeypatch.setattr(
        Path, "stat", lambda self, **kw: os.stat_result((0,) * 1 + (42,) + (0,) * 8)
    )
    other = runs.this_host()
    assert other == f"{socket.gethostname()} (pid namespace 42)"
    monkeypatch.undo()
    assert runs.this_host() != other
    run = runs.create_run(engine, "pl_1", "full")
    assert runs.claim_run(engine, run.id, "theirs", now + timedelta(minutes=5))
    runs.update_run(engine, run.id, pid=_dead_pid(), host=other)
    assert runs.reap_lapsed(engine, now) == []  # its lease holds: alive over there
    assert runs.get_run(engine, run.id).status == RunStatus.RUNNING


def test_cancel_ends_a_queued_run_at_once_and_asks_a_running_one_to_stop(
    engine: Engine,
) -> None:
    seed(engine)
    queued = runs.create_run(engine, "pl_1", "full")
    cancelled = runs.request_cancel(engine, queued.id)
    assert cancelled.status == RunStatus.CANCELLED
    assert runs.claim_run(engine, queued.id, "me", utcnow()) is None  # never starts
    running = runs.create_run(engine, "pl_1", "full")
    assert runs.claim_run(engine, running.id, "me", utcnow() + timedelta(seconds=30))
    assert not runs.renew_lease(engine, running.id, "me", utcnow()).cancel_requested
    asked = runs.request_cancel(engine, running.id)
    assert asked.status == RunStatus.RUNNING
    assert asked.cancel_requested
    assert runs.renew_lease(engine, running.id, "me", utcnow()).cancel_requested
    assert runs.finish_run(engine, running.id, "me", status="cancelled")
    with pytest.raises(Conflict, match=rf"run {running.id} already ended \(cancelled\)"):
        runs.request_cancel(engine, running.id)


def test_run_errors_are_capped_but_kept_in_order(engine: Engine) -> None:
    seed(engine)
    run = runs.create_run(engine, "pl_1", "full")
    errors = [RecordError(f"cus_{i}", Step.VALIDATE, f"bad {i}") for i in range(1200)]
    runs.add_errors(engine, run.id, errors[:700])
    runs.add_errors(engine, run.id, errors[700:])
    with engine.connect() as conn:
        stored = conn.execute(sa.text("select count(*) from run_errors")).scalar_one()
    assert stored == runs.MAX_STORED_ERRORS
    shown = runs.get_run(engine, run.id, error_limit=3).errors
    assert [e["source_id"] for e in shown] == ["cus_0", "cus_1", "cus_2"]


@contextmanager
def locked(engine: Engine, run_id: str) -> Iterator[None]:
    """Another connection holds a write lock: the whole SQLite database
    (`BEGIN IMMEDIATE`), or the run's row on PostgreSQL (`SELECT … FOR UPDATE`)."""
    with engine.connect() as other:
        raw: Any = other.connection.dbapi_connection
        if engine.dialect.name == "sqlite":
            raw.execute("BEGIN IMMEDIATE")
        else:
            other.execute(sa.text("SELECT id FROM runs WHERE id = :id FOR UPDATE"), {"id": run_id})
        try:
            yield
        finally:
            if engine.dialect.name == "sqlite":
                raw.execute("ROLLBACK")
            else:
                other.rollback()


def test_a_progress_update_waits_a_bounded_time_for_a_lock_and_its_error_shows_no_sql(
    engine: Engine,
) -> None:
    seed(engine)
    run = runs.create_run(engine, "pl_1", "full")
    secret_email = "private.person@example.com"
    errors = [RecordError("cus_1", Step.VALIDATE, f"bad email {secret_email}")]
    started = time.monotonic()
    with locked(engine, run.id), pytest.raises(sa.exc.OperationalError) as caught:
        runs.record_progress(engine, run.id, {"read": 5}, errors)
    waited = time.monotonic() - started
    wait = runs.PROGRESS_LOCK_WAIT.total_seconds()
    assert wait * 0.9 <= waited < wait + 5
    raw = str(caught.value)
    assert "INSERT INTO run_errors" in raw  # what used to be shown: SQL ...
    assert secret_email not in raw  # ... without its parameters, hidden by the engine
    expected = {
        "sqlite": "OperationalError: database is locked",
        "postgresql": "LockNotAvailable: canceling statement due to lock timeout",
    }
    assert describe_error(caught.value) == expected[engine.dialect.name]
    # Nothing was half-written, and the update goes through once the lock is gone.
    assert runs.get_run(engine, run.id).counters == {}
    runs.record_progress(engine, run.id, {"read": 5}, errors)
    assert runs.get_run(engine, run.id).counters == {"read": 5}
