"""Run rows: creation under the one-live-run guarantee, claiming and leases, progress,
errors, cancellation, and closing runs whose lease lapsed.

A live run is proven alive by its lease (`lease_expires_at`), renewed by a timer in the
process that executes it (`services/pipelines/lease.py`), never by progress updates: a
run waiting a minute on Stripe is alive.  A `queued` run has no owner and no lease and is
never closed for waiting.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, Integer, bindparam, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from headwater.adapters.store import webhooks
from headwater.adapters.store.progress import (
    MAX_STORED_ERRORS,
    PROGRESS_LOCK_WAIT,
    add_errors,
    held,
    record_progress,
)
from headwater.adapters.store.tables import LIVE_STATUSES, pipelines, run_errors, runs
from headwater.kernel.entities import Run, RunStatus, new_id, utcnow
from headwater.kernel.errors import Conflict, NotFound

__all__ = [  # progress and errors live in `progress`; callers know them as runs'
    "MAX_STORED_ERRORS",
    "PROGRESS_LOCK_WAIT",
    "add_errors",
    "record_progress",
]


_RUN_FIELDS = tuple(f.name for f in fields(Run) if f.name != "errors")


def _run(row: Any) -> Run:
    data = row._mapping
    run = Run(**{name: data[name] for name in _RUN_FIELDS})
    run.created_at = _aware(run.created_at) or run.created_at
    for name in ("started_at", "finished_at", "heartbeat_at", "lease_expires_at", "not_before"):
        setattr(run, name, _aware(getattr(run, name)))
    return run


def _aware(ts: datetime | None) -> datetime | None:
    # SQLite returns naive datetimes for timezone-aware columns; they are stored in UTC.
    if ts is not None and ts.tzinfo is None:
        return ts.replace(tzinfo=utcnow().tzinfo)
    return ts


#: The inode of Linux's initial PID namespace (``PROC_PID_INIT_INO``).
_INIT_PID_NAMESPACE = 0xEFFFFFFC


def this_host() -> str:
    """This process's host as runs record it, for telling whether a run's process is
    visible here: the host name, with the PID namespace when it is not the machine's
    own (containers sharing a host name, e.g. with host networking, each see only their
    own pids: by the name alone, each closed the other's healthy runs as lost)."""
    name = socket.gethostname()
    try:
        namespace = Path("/proc/self/ns/pid").stat().st_ino
    except OSError:
        return name
    return name if namespace == _INIT_PID_NAMESPACE else f"{name} (pid namespace {namespace})"


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


def _lapse_reason(run: Run, now: datetime, host: str) -> str | None:
    """Why a running run is dead, or None while its lease holds and its process lives."""
    if run.status != RunStatus.RUNNING:
        return None  # queued runs wait as long as they must
    if run.host == host and run.pid is not None and not _pid_alive(run.pid):
        return f"worker lost on {run.host}: its process {run.pid} ended without finishing"
    if run.lease_expires_at is None or run.lease_expires_at < now:
        return f"worker lost on {run.host}: its lease lapsed and was not renewed"
    return None


def reap_lapsed(engine: Engine, now: datetime, pipeline_id: str | None = None) -> list[str]:
    """Close as `failed` every running run whose lease lapsed before `now`, or whose
    process on this host is gone; return their ids.

    Called when a run is created and, periodically, by service workers.  Each close is
    a compare-and-set on the lease it judged, so a run that renewed meanwhile survives.
    """
    host = this_host()
    query = select(runs).where(runs.c.status.in_(LIVE_STATUSES))
    if pipeline_id is not None:
        query = query.where(runs.c.pipeline_id == pipeline_id)
    closed = []
    with engine.begin() as conn:
        for row in conn.execute(query).all():
            run = _run(row)
            reason = _lapse_reason(run, now, host)
            if reason is None:
                continue
            done = conn.execute(
                update(runs)
                .where(
                    runs.c.id == run.id,
                    runs.c.status == RunStatus.RUNNING.value,
                    runs.c.lease_expires_at == row.lease_expires_at,
                )
                .values(status=RunStatus.FAILED.value, finished_at=now, message=reason)
            )
            if done.rowcount:
                closed.append(run.id)
    return closed


def create_run(
    engine: Engine,
    pipeline_id: str,
    kind: str,
    owner: str | None = None,
    lease_until: datetime | None = None,
    *,
    retry: Retry | None = None,
) -> Run:
    """Insert a queued run; refuse when the pipeline already has a live run.

    With an `owner` and `lease_until`, the run is inserted already claimed (`running`),
    for a process that executes it itself: no moment exists where it is queued with
    nobody to run it."""
    now = utcnow()
    reap_lapsed(engine, now, pipeline_id)
    claimed = owner is not None and lease_until is not None
    run = Run(
        id=new_id("run"),
        pipeline_id=pipeline_id,
        kind=kind,
        status=RunStatus.RUNNING if claimed else RunStatus.QUEUED,
        counters={},
        message=None,
        summary={},
        pid=os.getpid() if claimed else None,
        host=this_host() if claimed else None,
        created_at=now,
        started_at=now if claimed else None,
        finished_at=None,
        heartbeat_at=None,
        owner=owner if claimed else None,
        lease_expires_at=lease_until if claimed else None,
    )
    if retry is not None:
        run.attempt, run.retry_of = retry.attempt, retry.retry_of
        run.not_before, run.message = retry.not_before, retry.reason
    values = {f.name: getattr(run, f.name) for f in fields(Run) if f.name != "errors"}
    try:
        with engine.begin() as conn:
            conn.execute(insert(runs).values(**values))
    except IntegrityError:
        live = live_run(engine, pipeline_id)
        which = f" ({live.id}, {live.status})" if live else ""
        raise Conflict(f"pipeline {pipeline_id} already has a live run{which}") from None
    return run


@dataclass(frozen=True)
class Retry:
    """A queued run that retries `retry_of`: its attempt number, when it may start,
    and why it exists."""

    attempt: int
    retry_of: str
    not_before: datetime
    reason: str


def claim_run(engine: Engine, run_id: str, owner: str, lease_until: datetime) -> Run | None:
    """Take a queued run: it becomes `running`, owned by `owner` with a lease until
    `lease_until`.  None when it is no longer queued (claimed elsewhere, cancelled)."""
    with engine.begin() as conn:
        done = conn.execute(
            update(runs)
            .where(runs.c.id == run_id, runs.c.status == RunStatus.QUEUED.value)
            .values(
                status=RunStatus.RUNNING.value,
                owner=owner,
                pid=os.getpid(),
                host=this_host(),
                started_at=utcnow(),
                lease_expires_at=lease_until,
            )
        )
        if done.rowcount:  # webhook requests made so far are this run's to read
            webhooks.cover_requests(conn, run_id)
    return get_run(engine, run_id, 0) if done.rowcount else None


@dataclass(frozen=True)
class Lease:
    """What a renewal found: whether the run is still ours, and whether someone asked
    it to stop."""

    held: bool
    cancel_requested: bool


def renew_lease(engine: Engine, run_id: str, owner: str, until: datetime) -> Lease:
    with engine.begin() as conn:
        done = conn.execute(update(runs).where(held(run_id, owner)).values(lease_expires_at=until))
        if not done.rowcount:
            return Lease(held=False, cancel_requested=False)
        asked = conn.execute(select(runs.c.cancel_requested).where(runs.c.id == run_id)).scalar()
    return Lease(held=True, cancel_requested=bool(asked))


def cancel_asked(engine: Engine, run_id: str, owner: str) -> bool:
    """Whether run `run_id`, held by `owner`, was asked to stop: one read by key, with
    no write, cheap enough for its lease thread to ask between renewals."""
    with engine.connect() as conn:
        asked = conn.execute(
            select(runs.c.cancel_requested).where(runs.c.id == run_id, runs.c.owner == owner)
        ).scalar()
    return bool(asked)


def request_cancel(engine: Engine, run_id: str) -> Run:
    """Cancel a run: a queued one ends `cancelled` now; a running one is asked to stop
    (its owner's lease thread reads the request within half a second, `cancel_asked`).
    Refused when it ended."""
    now = utcnow()
    with engine.begin() as conn:
        ended = conn.execute(
            update(runs)
            .where(runs.c.id == run_id, runs.c.status == RunStatus.QUEUED.value)
            .values(
                status=RunStatus.CANCELLED.value,
                finished_at=now,
                message="cancelled before it started",
            )
        ).rowcount
        asked = conn.execute(
            update(runs)
            .where(runs.c.id == run_id, runs.c.status == RunStatus.RUNNING.value)
            .values(cancel_requested=True)
        ).rowcount
    run = get_run(engine, run_id)
    if not ended and not asked:
        raise Conflict(f"run {run_id} already ended ({run.status}); there is nothing to cancel")
    return run


def finish_run(engine: Engine, run_id: str, owner: str, **values: Any) -> bool:
    """Record a run's ending, only if `owner` still holds it (a run closed as lost
    stays closed); True when recorded."""
    values["finished_at"] = utcnow()
    with engine.begin() as conn:
        done = conn.execute(update(runs).where(held(run_id, owner)).values(**values))
    return bool(done.rowcount)


def note_after_loss(engine: Engine, run_id: str, owner: str, message: str) -> None:
    """A run closed as lost, whose process came back and ended: keep its status and add
    what that process said (it could not write: DESIGN.md §6 rule 6)."""
    with engine.begin() as conn:
        conn.execute(
            update(runs)
            .where(
                runs.c.id == run_id,
                runs.c.owner == owner,
                runs.c.status == RunStatus.FAILED.value,
            )
            .values(
                message=func.coalesce(runs.c.message, "")
                + f"; after that, the run's own process said: {message}"
            )
        )


def live_run(engine: Engine, pipeline_id: str) -> Run | None:
    with engine.connect() as conn:
        row = conn.execute(
            select(runs).where(runs.c.pipeline_id == pipeline_id, runs.c.status.in_(LIVE_STATUSES))
        ).first()
    return _run(row) if row else None


def update_run(engine: Engine, run_id: str, **values: Any) -> None:
    with engine.begin() as conn:
        conn.execute(update(runs).where(runs.c.id == run_id).values(**values))


#: A run by ``:run_id``, and a run by ``:run_id`` of a pipeline of ``:workspace_id``;
#: its first ``:error_limit`` errors.  Built once: building costs more than answering.
_RUN = select(runs).where(runs.c.id == bindparam("run_id"))
_WORKSPACE_RUN = _RUN.join(pipelines, pipelines.c.id == runs.c.pipeline_id).where(
    pipelines.c.workspace_id == bindparam("workspace_id")
)
_FIRST_ERRORS = (
    select(run_errors.c.source_id, run_errors.c.step, run_errors.c.message)
    .where(run_errors.c.run_id == bindparam("run_id"))
    .order_by(run_errors.c.id)
    .limit(bindparam("error_limit", type_=Integer))
)


def get_run(
    engine: Engine, run_id: str, error_limit: int = 20, workspace_id: str | None = None
) -> Run:
    """The run with its first `error_limit` errors; with `workspace_id`, only a run of
    that workspace's pipelines (another's is `NotFound`, as a missing one), checked in
    the same query."""
    params = {"run_id": run_id, "workspace_id": workspace_id, "error_limit": error_limit}
    with engine.connect() as conn:
        query = _RUN if workspace_id is None else _WORKSPACE_RUN
        row = conn.execute(query, params).first()
        if row is None:
            raise NotFound(f"no run with id {run_id!r}")
        run = _run(row)
        errs = conn.execute(_FIRST_ERRORS, params).all() if error_limit else []
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
