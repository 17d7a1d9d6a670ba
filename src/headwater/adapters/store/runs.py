"""Run rows: creation under the one-live-run guarantee, progress, errors, recovery."""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence
from dataclasses import fields
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from headwater.adapters.store.tables import LIVE_STATUSES, run_errors, runs
from headwater.kernel.entities import Run, new_id, utcnow
from headwater.kernel.errors import Conflict, NotFound
from headwater.kernel.records import RecordError

MAX_STORED_ERRORS = 1000
#: A live run whose heartbeat is older than this is considered abandoned.
STALE_AFTER = timedelta(seconds=30)


def _run(row: Any) -> Run:
    data = dict(row._mapping)
    return Run(**{f.name: data[f.name] for f in fields(Run) if f.name != "errors"})


def _aware(ts: datetime | None) -> datetime | None:
    # SQLite returns naive datetimes for timezone-aware columns; they are stored in UTC.
    if ts is not None and ts.tzinfo is None:
        return ts.replace(tzinfo=utcnow().tzinfo)
    return ts


def _is_abandoned(run: Run, now: datetime) -> bool:
    beat = _aware(run.heartbeat_at or run.created_at)
    if run.host == socket.gethostname() and run.pid is not None and not _pid_alive(run.pid):
        return True
    return beat is not None and now - beat > STALE_AFTER


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def recover_abandoned(engine: Engine, pipeline_id: str) -> list[str]:
    """Mark live runs whose process died (e.g. ``kill -9``) as failed."""
    now = utcnow()
    recovered = []
    with engine.begin() as conn:
        rows = conn.execute(
            select(runs).where(runs.c.pipeline_id == pipeline_id, runs.c.status.in_(LIVE_STATUSES))
        ).all()
        for row in rows:
            run = _run(row)
            if _is_abandoned(run, now):
                conn.execute(
                    update(runs)
                    .where(runs.c.id == run.id)
                    .values(
                        status="failed",
                        finished_at=now,
                        message="abandoned: the process running it stopped without finishing",
                    )
                )
                recovered.append(run.id)
    return recovered


def create_run(engine: Engine, pipeline_id: str, kind: str) -> Run:
    """Insert a queued run; refuse when the pipeline already has a live run."""
    recover_abandoned(engine, pipeline_id)
    now = utcnow()
    run = Run(
        id=new_id("run"),
        pipeline_id=pipeline_id,
        kind=kind,
        status="queued",
        counters={},
        message=None,
        summary={},
        pid=os.getpid(),
        host=socket.gethostname(),
        created_at=now,
        started_at=None,
        finished_at=None,
        heartbeat_at=now,
    )
    values = {f.name: getattr(run, f.name) for f in fields(Run) if f.name != "errors"}
    try:
        with engine.begin() as conn:
            conn.execute(insert(runs).values(**values))
    except IntegrityError:
        live = live_run(engine, pipeline_id)
        which = f" ({live.id}, {live.status})" if live else ""
        raise Conflict(f"pipeline {pipeline_id} already has a live run{which}") from None
    return run


def live_run(engine: Engine, pipeline_id: str) -> Run | None:
    with engine.connect() as conn:
        row = conn.execute(
            select(runs).where(runs.c.pipeline_id == pipeline_id, runs.c.status.in_(LIVE_STATUSES))
        ).first()
    return _run(row) if row else None


def update_run(engine: Engine, run_id: str, **values: Any) -> None:
    values.setdefault("heartbeat_at", utcnow())
    with engine.begin() as conn:
        conn.execute(update(runs).where(runs.c.id == run_id).values(**values))


def add_errors(engine: Engine, run_id: str, errors: Sequence[RecordError]) -> None:
    """Store per-record errors, keeping at most the first MAX_STORED_ERRORS per run."""
    if not errors:
        return
    with engine.begin() as conn:
        stored = conn.execute(
            select(func.count()).select_from(run_errors).where(run_errors.c.run_id == run_id)
        ).scalar_one()
        room = MAX_STORED_ERRORS - stored
        if room <= 0:
            return
        conn.execute(
            insert(run_errors),
            [
                {
                    "run_id": run_id,
                    "source_id": e.source_id,
                    "step": e.step.value,
                    "message": e.message,
                }
                for e in errors[:room]
            ],
        )


def get_run(engine: Engine, run_id: str, error_limit: int = 20) -> Run:
    with engine.connect() as conn:
        row = conn.execute(select(runs).where(runs.c.id == run_id)).first()
        if row is None:
            raise NotFound(f"no run with id {run_id!r}")
        run = _run(row)
        errs = conn.execute(
            select(run_errors.c.source_id, run_errors.c.step, run_errors.c.message)
            .where(run_errors.c.run_id == run_id)
            .order_by(run_errors.c.id)
            .limit(error_limit)
        ).all()
    run.errors = [dict(e._mapping) for e in errs]
    return run


def list_runs(engine: Engine, pipeline_ids: Sequence[str], limit: int = 50) -> list[Run]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(runs)
            .where(runs.c.pipeline_id.in_(list(pipeline_ids)))
            .order_by(runs.c.created_at.desc())
            .limit(limit)
        ).all()
    return [_run(r) for r in rows]
