"""A live run's progress: its counters and per-record errors, stored as it goes.

Stored only while the run's claim holds when the caller names it (`owner`): a run
closed as lost (its lease lapsed, `runs.reap_lapsed`) keeps the counters and errors it
was closed with, whatever the process that lost it goes on writing.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import ColumnElement, Engine, func, insert, select, update

from headwater.adapters.store.database import SQLITE_BUSY_TIMEOUT_MS
from headwater.adapters.store.tables import run_errors, runs
from headwater.kernel.entities import RunStatus, utcnow
from headwater.kernel.records import RecordError

MAX_STORED_ERRORS = 1000
#: A progress update waits this long at most for a lock; then it is skipped (the run
#: goes on, the next update carries everything).
PROGRESS_LOCK_WAIT = timedelta(seconds=2)


def record_progress(
    engine: Engine,
    run_id: str,
    counters: dict[str, Any],
    errors: Sequence[RecordError],
    owner: str | None = None,
) -> bool:
    """Store a live run's counters and new per-record errors in one transaction,
    waiting at most `PROGRESS_LOCK_WAIT` for a lock another connection holds.  With
    `owner`, only while it holds the run (running, its owner): a run closed as lost
    keeps the counters and errors it was closed with; False then."""
    with engine.connect() as conn:
        sqlite = conn.dialect.name == "sqlite"
        wait_ms = int(PROGRESS_LOCK_WAIT.total_seconds() * 1000)
        # sqlite3's own connection: a PRAGMA through SQLAlchemy would open a transaction.
        raw: Any = conn.connection.dbapi_connection
        if sqlite:
            raw.execute(f"PRAGMA busy_timeout={wait_ms}")
        try:
            with conn.begin():
                if not sqlite:
                    conn.exec_driver_sql(f"SET LOCAL lock_timeout = {wait_ms}")
                if owner is not None:
                    if not _hold(conn, run_id, owner, counters=counters):
                        return False
                    _add_errors(conn, run_id, errors)
                    return True
                _add_errors(conn, run_id, errors)
                conn.execute(
                    update(runs)
                    .where(runs.c.id == run_id)
                    .values(counters=counters, heartbeat_at=utcnow())
                )
                return True
        finally:
            if sqlite:
                raw.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")


def add_errors(
    engine: Engine, run_id: str, errors: Sequence[RecordError], owner: str | None = None
) -> bool:
    """Store per-record errors, keeping at most the first MAX_STORED_ERRORS per run;
    with `owner`, only while it holds the run (False otherwise, nothing stored)."""
    with engine.begin() as conn:
        if owner is not None and not _hold(conn, run_id, owner):
            return False
        _add_errors(conn, run_id, errors)
    return True


def _hold(conn: Any, run_id: str, owner: str, **values: Any) -> bool:
    """Whether `owner` still holds the run (running, its owner), its row locked until
    the transaction ends so that no reaper closes it meanwhile; `values` set with it."""
    done = conn.execute(
        update(runs).where(held(run_id, owner)).values(heartbeat_at=utcnow(), **values)
    )
    return bool(done.rowcount)


def held(run_id: str, owner: str) -> ColumnElement[bool]:
    """The condition that `owner` holds the run: it is running, and it is theirs."""
    return (
        (runs.c.id == run_id) & (runs.c.owner == owner) & (runs.c.status == RunStatus.RUNNING.value)
    )


def _add_errors(conn: Any, run_id: str, errors: Sequence[RecordError]) -> None:
    if not errors:
        return
    stored = conn.execute(
        select(func.count()).select_from(run_errors).where(run_errors.c.run_id == run_id)
    ).scalar_one()
    room = MAX_STORED_ERRORS - stored
    if room <= 0:
        return
    conn.execute(
        insert(run_errors),
        [
            {"run_id": run_id, "source_id": e.source_id, "step": e.step.value, "message": e.message}
            for e in errors[:room]
        ],
    )
