"""The run queue and the worker registry.

Claiming: `claim_next` takes the oldest queued run that may start (its `not_before`
passed) and makes it `running` under a lease, in one transaction that no other claimer
can interleave with: `SELECT ... FOR UPDATE SKIP LOCKED` on PostgreSQL (claimers skip
each other's row instead of queueing on it), `BEGIN IMMEDIATE` on SQLite (the claim
takes the write lock before it reads, so two processes cannot read the same queued row
and both update it; WAL keeps readers unblocked meanwhile).  A cheap unlocked look
comes first, so idle workers polling an empty queue take no write lock at all.

The registry: each worker process keeps a row in `workers` with its heartbeat; entry
points ask `alive` whether any process with run slots beat recently (the CLI executes
a run itself only when none did).
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Column,
    DateTime,
    Engine,
    Integer,
    String,
    Table,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.engine import Connection

from headwater.adapters.store import webhooks
from headwater.adapters.store.progress import held
from headwater.adapters.store.runs import get_run, this_host
from headwater.adapters.store.tables import metadata, pipelines, runs
from headwater.kernel.entities import Run, RunStatus, utcnow

workers = Table(
    "workers",
    metadata,
    Column("id", String(200), primary_key=True),
    Column("host", String(200), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("slots", Integer, nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("heartbeat_at", DateTime(timezone=True), nullable=False),
)


def _startable(now: datetime) -> Any:
    return (runs.c.status == RunStatus.QUEUED.value) & or_(
        runs.c.not_before.is_(None), runs.c.not_before <= now
    )


def has_startable(engine: Engine, now: datetime) -> bool:
    """Whether a queued run may start now (no lock taken)."""
    with engine.connect() as conn:
        return conn.execute(select(runs.c.id).where(_startable(now)).limit(1)).first() is not None


def claim_next(engine: Engine, owner: str, lease_until: datetime) -> Run | None:
    """Claim the oldest queued run that may start, for `owner`, leased until
    `lease_until`; None when there is none (see the module docstring)."""
    now = utcnow()
    if not has_startable(engine, now):
        return None
    with engine.connect() as conn:
        sqlite = conn.dialect.name == "sqlite"
        if sqlite:
            # pysqlite would open a deferred transaction; take the write lock first.
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        try:
            run_id = _claim(conn, now, owner, lease_until, skip_locked=not sqlite)
            conn.commit()
        except BaseException:
            conn.rollback()
            raise
    return get_run(engine, run_id, 0) if run_id else None


def _claim(
    conn: Connection, now: datetime, owner: str, lease_until: datetime, *, skip_locked: bool
) -> str | None:
    query = select(runs.c.id).where(_startable(now)).order_by(runs.c.created_at).limit(1)
    if skip_locked:
        query = query.with_for_update(skip_locked=True)
    run_id = conn.execute(query).scalar()
    if run_id is None:
        return None
    conn.execute(
        update(runs)
        .where(runs.c.id == run_id, runs.c.status == RunStatus.QUEUED.value)
        .values(
            status=RunStatus.RUNNING.value,
            owner=owner,
            pid=os.getpid(),
            host=this_host(),
            started_at=now,
            finished_at=None,
            lease_expires_at=lease_until,
        )
    )
    webhooks.cover_requests(conn, str(run_id))  # webhook requests so far are its to read
    return str(run_id)


def requeue(engine: Engine, run_id: str, owner: str, message: str) -> RunStatus | None:
    """Put a run its owner stopped (the service is stopping) back in the queue, for
    another worker to resume from its committed position; a run asked to cancel meanwhile
    ends `cancelled` instead.  Returns the status recorded, None when the run was no
    longer `owner`'s (closed as lost)."""
    mine = held(run_id, owner)
    with engine.begin() as conn:
        done = conn.execute(
            update(runs)
            .where(mine, runs.c.cancel_requested.is_(False))
            .values(
                status=RunStatus.QUEUED.value,
                owner=None,
                pid=None,
                host=None,
                started_at=None,
                lease_expires_at=None,
                message=message,
            )
        )
        if done.rowcount:
            return RunStatus.QUEUED
        done = conn.execute(
            update(runs)
            .where(mine)
            .values(
                status=RunStatus.CANCELLED.value,
                finished_at=utcnow(),
                message="cancelled on request (while the service was stopping)",
            )
        )
    return RunStatus.CANCELLED if done.rowcount else None


def _of_workspace(workspace_id: str) -> Any:
    """Runs of the workspace's pipelines (a condition on ``runs``)."""
    owned = select(pipelines.c.id).where(pipelines.c.workspace_id == workspace_id)
    return runs.c.pipeline_id.in_(owned.scalar_subquery())


def count_by_status(engine: Engine, workspace_id: str) -> dict[str, int]:
    """How many runs of the workspace's pipelines have each status."""
    query = select(runs.c.status, func.count()).where(_of_workspace(workspace_id))
    with engine.connect() as conn:
        rows = conn.execute(query.group_by(runs.c.status)).all()
    return {str(status): int(n) for status, n in rows}


def register_worker(engine: Engine, worker_id: str, slots: int) -> None:
    now = utcnow()
    with engine.begin() as conn:
        conn.execute(
            insert(workers).values(
                id=worker_id,
                host=this_host(),
                pid=os.getpid(),
                slots=slots,
                started_at=now,
                heartbeat_at=now,
            )
        )


def beat(engine: Engine, worker_id: str, slots: int) -> None:
    """Renew a worker's heartbeat (re-registering it if a sweep removed its row)."""
    with engine.begin() as conn:
        done = conn.execute(
            update(workers).where(workers.c.id == worker_id).values(heartbeat_at=utcnow())
        )
    if not done.rowcount:
        register_worker(engine, worker_id, slots)


def unregister_worker(engine: Engine, worker_id: str) -> None:
    with engine.begin() as conn:
        conn.execute(delete(workers).where(workers.c.id == worker_id))


def alive(engine: Engine, within: timedelta, now: datetime | None = None) -> int:
    """How many run slots belong to workers that beat within `within` of `now`; rows
    of workers silent for ten times that long are swept."""
    now = now or utcnow()
    with engine.begin() as conn:
        conn.execute(delete(workers).where(workers.c.heartbeat_at < now - within * 10))
        slots = conn.execute(
            select(func.coalesce(func.sum(workers.c.slots), 0)).where(
                workers.c.heartbeat_at >= now - within
            )
        ).scalar_one()
    return int(slots)


#: How `runs.reap_lapsed` begins the message of a run it closed.
LOST_PREFIX = "worker lost on "


def lease_losses(engine: Engine, workspace_id: str) -> int:
    """How many runs of the workspace were closed as failed because their worker was lost."""
    with engine.connect() as conn:
        count = conn.execute(
            select(func.count())
            .select_from(runs)
            .where(
                _of_workspace(workspace_id),
                runs.c.status == RunStatus.FAILED.value,
                runs.c.message.startswith(LOST_PREFIX),
            )
        ).scalar_one()
    return int(count)
