"""The leaderless scheduler (DESIGN.md §7): one `tick` finds the pipelines whose slot
came and enqueues one run for each.

Any number of workers call `tick` every few seconds, on one machine or several, with no
leader and no lock held between ticks.  For each due pipeline a tick advances
`next_run_at` by compare-and-swap (`adapters.store.schedules.advance`) before it
enqueues: of two ticks that saw the same slot exactly one wins it, so a slot enqueues at
most one run.  The slot it moves to is the first one after *now*, not after the missed
slot, so a scheduler that was down for hours enqueues one catch-up run, not a burst.

A pipeline with a live run (queued or running) gets no second one for that slot; that
is the normal case for a run longer than its period, not an error.

Concurrency boundary: `tick` runs on the caller's thread and shares nothing with other
ticks but the metadata store; its decisions are the store's compare-and-swap outcomes.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field, fields
from datetime import timedelta

from headwater.adapters.store import objects, runs, schedules
from headwater.adapters.store.database import describe_error
from headwater.kernel.clock import Clock
from headwater.kernel.entities import Workspace, utcnow
from headwater.kernel.errors import Conflict
from headwater.kernel.schedules import PERIODS, next_slot
from headwater.services.app import App
from headwater.services.pipelines import manage, runner

log = logging.getLogger(__name__)

#: Due pipelines handled per tick at most; the rest stay due for the next tick.
TICK_BATCH = 200
#: How far past its period a slot may lie ahead of now before `reslot` moves it back.
AHEAD_MARGIN = timedelta(hours=1)


@dataclass
class Tick:
    """What one tick did: runs enqueued, pipelines whose slot came while they had a live
    run, pipelines disabled while their run was being enqueued (the run dropped), and
    how many slots another scheduler won first."""

    enqueued: list[str] = field(default_factory=list)
    already_live: list[str] = field(default_factory=list)
    disabled: list[str] = field(default_factory=list)
    lost: int = 0
    #: Pipelines whose run could not be enqueued (the store failed): still due.
    failed: list[str] = field(default_factory=list)

    def add(self, other: Tick) -> None:
        """Add what `other` did (every field: none is left out of a total)."""
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))


def tick(app: App, clock: Clock, batch: int = TICK_BATCH) -> Tick:
    """Enqueue one run for each pipeline of the workspace whose slot came by `clock`'s
    now, advancing each one's `next_run_at` to its next future slot."""
    now = clock.now()
    done = Tick()
    for due in schedules.due_slots(app.engine, app.workspace().id, now, batch):
        following = next_slot(due.schedule, due.pipeline_id, now)
        if not schedules.advance(app.engine, due, following):
            done.lost += 1
            continue
        try:
            _enqueue(app, due.pipeline_id, done)
        except Exception:  # the store failed between the slot and its run ("locked")
            log.exception("the scheduled run of %s was not enqueued; kept due", due.pipeline_id)
            # Give the slot back (unless it changed meanwhile), so the next tick runs it.
            with contextlib.suppress(Exception):
                won = schedules.DueSlot(due.pipeline_id, due.schedule, following)
                schedules.advance(app.engine, won, due.slot)
            done.failed.append(due.pipeline_id)
    return done


def _enqueue(app: App, pipeline_id: str, done: Tick) -> None:
    """Enqueue a run of a pipeline whose slot this tick won, noting the outcome in `done`."""
    if runs.live_run(app.engine, pipeline_id) is not None:
        done.already_live.append(pipeline_id)
        return
    try:
        run = runner.enqueue(app, pipeline_id)
    except Conflict:
        # A run went live (run now, a webhook) or the pipeline was disabled between our
        # look and our insert; the database refused the second run, as it must.
        done.already_live.append(pipeline_id)
        return
    # Disabling drops queued runs; if it happened between `enqueue`'s check and its
    # insert, our run escaped that drop.  Looking again after the insert closes the gap.
    try:
        disabled = not manage.get(app, pipeline_id).enabled
        if disabled:
            schedules.drop_queued_runs(
                app.engine, pipeline_id, utcnow(), "dropped: the pipeline was disabled"
            )
    except Exception as exc:
        # The run is queued, so the slot is used: given back, it would run twice.  A
        # run of a pipeline disabled meanwhile ends cancelled as it starts
        # (`runner.execute_claimed`).
        log.warning("run %s: the look after enqueueing it failed (%s)", run.id, describe_error(exc))
        disabled = False
    if disabled:
        done.disabled.append(pipeline_id)
    else:
        done.enqueued.append(run.id)


def reslot(app: App, clock: Clock, batch: int = TICK_BATCH) -> list[str]:
    """Move back each of the workspace's slots that lies more than its period and
    `AHEAD_MARGIN` after `clock`'s now, to its next slot after now (enqueueing nothing);
    the pipelines moved.

    No slot is that far ahead unless it was set by a clock ahead of this one (a machine
    before its time sync, a clock set wrong, then corrected): without this the pipeline
    ran nothing until the right clock reached that slot, hours later perhaps.  The
    margin keeps machines whose clocks differ a little from moving each other's slots."""
    now = clock.now()
    moved = []
    limits = {schedule: period + AHEAD_MARGIN for schedule, period in PERIODS.items()}
    for ahead in schedules.ahead_slots(app.engine, app.workspace().id, now, limits, batch):
        following = next_slot(ahead.schedule, ahead.pipeline_id, now)
        if schedules.advance(app.engine, ahead, following):
            log.warning(
                "pipeline %s: its next run (%s) was ahead of the clock",
                ahead.pipeline_id,
                ahead.slot,
            )
            moved.append(ahead.pipeline_id)
    return moved


def reslot_all(app: App, clock: Clock, batch: int = TICK_BATCH) -> list[str]:
    """`reslot` for every workspace of the store."""
    moved: list[str] = []
    for workspace in objects.find(app.engine, Workspace):
        moved += reslot(app.in_workspace(workspace.id), clock, batch)
    return moved


def tick_all(app: App, clock: Clock, batch: int = TICK_BATCH) -> Tick:
    """`tick` for every workspace of the store, the outcomes added together."""
    done = Tick()
    for workspace in objects.find(app.engine, Workspace):
        done.add(tick(app.in_workspace(workspace.id), clock, batch))
    return done
