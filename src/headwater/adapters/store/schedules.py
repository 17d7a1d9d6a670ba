"""Schedule rows: finding due pipelines, advancing `next_run_at` by compare-and-swap,
dropping the queued runs of a pipeline that was disabled, and retiring a pipeline that
is being deleted.

The compare-and-swap is what lets any number of schedulers tick without a leader: each
advances a due pipeline's `next_run_at` only where it still holds the value it read, so
of two schedulers that saw the same due slot exactly one wins it (and enqueues its run).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, and_, or_, select, update

from headwater.adapters.store.tables import pipelines, runs
from headwater.kernel.entities import RunStatus
from headwater.kernel.errors import Conflict


@dataclass(frozen=True)
class DueSlot:
    """A pipeline whose slot came: `slot` is `next_run_at` exactly as the store returned
    it (the compare-and-swap matches on that value)."""

    pipeline_id: str
    schedule: str
    slot: Any


def due_slots(engine: Engine, workspace_id: str, now: datetime, limit: int) -> list[DueSlot]:
    """Enabled, scheduled pipelines whose `next_run_at` is at or before `now`, earliest
    first, at most `limit` (an index on `next_run_at` keeps an idle look cheap)."""
    query = (
        select(pipelines.c.id, pipelines.c.schedule, pipelines.c.next_run_at)
        .where(
            pipelines.c.next_run_at <= now,
            pipelines.c.workspace_id == workspace_id,
            pipelines.c.enabled.is_(True),
            pipelines.c.schedule != "off",
        )
        .order_by(pipelines.c.next_run_at)
        .limit(limit)
    )
    with engine.connect() as conn:
        return [DueSlot(row.id, row.schedule, row.next_run_at) for row in conn.execute(query)]


def ahead_slots(
    engine: Engine, workspace_id: str, now: datetime, periods: Mapping[str, timedelta], limit: int
) -> list[DueSlot]:
    """Enabled pipelines whose `next_run_at` lies more than their schedule's limit (in
    `periods`) after `now`: a slot set by a clock that was ahead of this one."""
    ahead = or_(
        *(
            and_(pipelines.c.schedule == schedule, pipelines.c.next_run_at > now + period)
            for schedule, period in periods.items()
        )
    )
    query = (
        select(pipelines.c.id, pipelines.c.schedule, pipelines.c.next_run_at)
        .where(pipelines.c.workspace_id == workspace_id, pipelines.c.enabled.is_(True), ahead)
        .limit(limit)
    )
    with engine.connect() as conn:
        return [DueSlot(row.id, row.schedule, row.next_run_at) for row in conn.execute(query)]


def advance(engine: Engine, due: DueSlot, following: datetime | None) -> bool:
    """Move the pipeline's `next_run_at` from the slot read to `following`, only if it
    still holds that slot and the pipeline is enabled; True when this caller won it."""
    with engine.begin() as conn:
        done = conn.execute(
            update(pipelines)
            .where(
                pipelines.c.id == due.pipeline_id,
                pipelines.c.next_run_at == due.slot,
                pipelines.c.enabled.is_(True),
            )
            .values(next_run_at=following)
        )
    return bool(done.rowcount)


def drop_queued_runs(engine: Engine, pipeline_id: str, now: datetime, reason: str) -> int:
    """End the pipeline's queued runs `cancelled` with `reason`; a running run is left
    to finish.  Returns how many were dropped."""
    with engine.begin() as conn:
        done = conn.execute(
            update(runs)
            .where(runs.c.pipeline_id == pipeline_id, runs.c.status == RunStatus.QUEUED.value)
            .values(status=RunStatus.CANCELLED.value, finished_at=now, message=reason)
        )
    return int(done.rowcount)


def retire(engine: Engine, pipeline_id: str, now: datetime, reason: str) -> list[str]:
    """Stop a pipeline before it is deleted, in one transaction: its queued runs end
    `cancelled` with `reason` and it is disabled with no next slot, so no worker claims
    a run of it and no schedule or webhook enqueues one.  `Conflict` (nothing changed)
    when a run of it is running.  Returns the ids of the runs cancelled.

    The cancel comes first: on PostgreSQL it waits for a claim that locked the row and
    then skips the run it made `running`, which the look that follows sees; on SQLite
    the update takes the write lock that claims also take."""
    with engine.begin() as conn:
        cancelled = [
            str(row.id)
            for row in conn.execute(
                update(runs)
                .where(runs.c.pipeline_id == pipeline_id, runs.c.status == RunStatus.QUEUED.value)
                .values(status=RunStatus.CANCELLED.value, finished_at=now, message=reason)
                .returning(runs.c.id)
            )
        ]
        running = conn.execute(
            select(runs.c.id).where(
                runs.c.pipeline_id == pipeline_id, runs.c.status == RunStatus.RUNNING.value
            )
        ).scalar()
        if running is not None:
            raise Conflict(
                f"pipeline {pipeline_id} has a running run ({running}); cancel it or wait "
                "for it to end, then delete the pipeline"
            )  # leaving the block rolls the cancels back
        conn.execute(
            update(pipelines)
            .where(pipelines.c.id == pipeline_id)
            .values(enabled=False, next_run_at=None)
        )
    return cancelled
