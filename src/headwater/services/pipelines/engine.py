"""The run engine: the only place that knows the order of steps.

read → filter → transform → validate → write, for full and incremental runs, under the
state rules of DESIGN.md §6:

1. the saved position advances only with the write it covers: a `PipelineState` rides
   in the batch (or the purge) whose rows it covers and commits in its transaction;
2. a full run records the event position before it starts reading;
3. only a full run that read everything purges unseen identities;
4. a changed definition makes the next run full (`needs_full`);
5. the position is the one saved in *this* warehouse (`RunContext.claim` reads it):
   none there (new warehouse, dropped schema, replaced file) makes the run full;
6. a run first claims the pipeline in the warehouse; every write, purge and position
   save checks in its transaction that the run still owns it, so a run that another
   run took over fails (`OwnershipLost`) without writing anything more.

Every batch also carries the Customer Model generation its rows were shaped under; a
rename or drop committed since refuses it (`ModelChanged`, transient: nothing written).
The metadata store keeps a copy of the state for display only (`RunContext.save_state`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from headwater.adapters.connectors.contract import Change, HistoryExpired, PermissionMissing, Source
from headwater.adapters.store import objects
from headwater.adapters.store.database import describe_error
from headwater.adapters.warehouse.contract import Warehouse, WriteBatch, WriteResult
from headwater.kernel.entities import Pipeline, Run, RunKind, RunStatus, utcnow
from headwater.kernel.errors import redact
from headwater.kernel.records import Record, Step
from headwater.kernel.state import PipelineState
from headwater.services.pipelines.ending import LAPSED_AFTER_WRITES, record_ending, resolve_into
from headwater.services.pipelines.garbage import fewer_collections
from headwater.services.pipelines.lease import RunStop, transient_summary
from headwater.services.pipelines.recorder import Recorder
from headwater.services.pipelines.shaping import Shaper, created_max
from headwater.services.pipelines.writer import RunStopped, Writer

log = logging.getLogger(__name__)

#: Rows per warehouse transaction.
WRITE_BATCH = 5000
EVENTS_PERMISSION_WARNING = (
    "this connection's key lacks Events: Read, so incremental runs only pick up new "
    "customers (by created date) and cannot see updates or deletions; add Events: Read "
    "to the restricted key to import them"
)


@dataclass
class RunContext:
    pipeline: Pipeline
    run: Run
    source: Source
    warehouse: Warehouse
    shaper: Shaper
    recorder: Recorder
    events_read: bool
    owner: str  # the lease holder executing the run (`lease.new_owner`)
    model_generation: int  # of the tables the shaper's model matched (`model_state`)
    stop: RunStop  # set when the run must stop at its next batch boundary
    summary: dict[str, Any] = field(default_factory=dict)
    rejected: set[str] = field(default_factory=set)  # rows the warehouse refused
    #: Identity resolution once the run's writes committed (its outcome, for the summary).
    resolve: Callable[[], dict[str, Any]] | None = None
    #: Closes what the run opened (the warehouse, the reading process), before the final
    #: status is recorded: whoever sees the run ended finds the embedded DuckDB file free.
    release: Callable[[], None] | None = None
    #: The state committed in the warehouse, as of the last commit this run saw.  Set
    #: by `claim` and by `save_state`, both on the engine's thread (the writer hands each
    #: commit's result back to it: `writer.py`), current after `Writer.finish`/`abort`.
    state: PipelineState | None = None
    claimed: bool = False
    #: Rows upserted by changes: if the history expires midway, the full run that follows
    #: deletes those it does not write (rule 3; they carry this run's id, so no purge would).
    own_rows: set[str] = field(default_factory=set)

    def claim(self) -> PipelineState | None:
        """Make this run the pipeline's owner in the warehouse (once per run) and return
        the state saved there; None when this warehouse holds none (rule 5)."""
        if not self.claimed:
            self.state = self.warehouse.claim(self.pipeline.id, self.run.id)
            self.claimed = True
        return self.state

    def batch(
        self,
        rows: Sequence[Any] = (),
        deletes: Sequence[str] = (),
        state: PipelineState | None = None,
    ) -> WriteBatch:
        p, run, generation = self.pipeline, self.run.id, self.model_generation
        return WriteBatch(p.id, p.connection_id, run, [*rows], [*deletes], state, generation)

    def writer(self) -> Writer:
        """A writer for this run: its batch boundaries honour the run's stop requests."""
        return Writer(self.warehouse, stop=self.stop)

    def count(self, result: WriteResult) -> None:
        """Count a committed write (on the engine's thread: see `writer.py`)."""
        for source_id, message in result.rejected:
            # The warehouse refused this row; the rest of the batch committed.
            self.recorder.error(source_id, Step.WRITE, message)
            self.rejected.add(source_id)
        c = self.recorder.counters
        c.written += result.written
        c.created += result.inserted
        c.updated += result.updated
        c.deleted += result.deleted
        self.recorder.flush()

    def save_state(self, state: PipelineState, *, full_done: bool = False) -> None:
        """`state` committed in the warehouse: remember it, and copy it to the metadata
        store for display (never read back as the position).  `full_done` also clears
        the pipeline's need for a full run, unless its definition changed meanwhile.
        A copy that failed (the store locked or away) is logged, not raised: the rows and
        position committed, and a need for a full run left uncleared is only safe."""
        self.state = state
        self.pipeline.state = state
        engine = self.recorder.engine
        try:
            if full_done:
                self.pipeline.needs_full = not objects.full_run_done(engine, self.pipeline)
            else:
                objects.save(engine, self.pipeline, only=["state"])
        except Exception as exc:
            log.warning("run %s: state copy not saved (%s)", self.run.id, describe_error(exc))


def run_full(ctx: RunContext, reason: str) -> None:
    ctx.claim()
    # Only this run writes the pipeline's identities now (rule 6): none there means none
    # unseen at the end, where a purge would scan (twice) every row written, for nothing.
    first = ctx.warehouse.count(ctx.pipeline.id) == 0
    ctx.summary.update(kind="full", reason=reason)
    read_errors = ctx.recorder.counters.failed.get(Step.READ.value, 0)
    # The read is prepared first: it reads nothing before its first page or position, and
    # a position taken with it precedes its every page (rule 2); Stripe's process starts.
    pages = ctx.source.read_full()
    try:
        position = None
        if ctx.pipeline.incremental and ctx.events_read:
            position = ctx.source.event_position()  # rule 2: before every page read
        max_created, failed = _write_full(ctx, pages)
    finally:
        pages.close()
    # Rule 3: everything was read without a read error, so unseen identities are gone
    # (or fail the filter); failed records keep their rows.  The position commits with
    # the purge (rules 1, 5), not after a stop (a cancel, a lapsed lease: rule 6).
    if ctx.stop.is_set():
        raise RunStopped(ctx.stop.message)
    state = PipelineState(position=position, max_created=max_created, last_full_run=ctx.run.id)
    read_errors = ctx.recorder.counters.failed.get(Step.READ.value, 0) - read_errors
    if read_errors and not first:
        _save_without_purge(ctx, state, read_errors)
        return
    keep = failed | ctx.rejected
    if first:  # nothing to purge: the position commits alone, fenced like any write
        purged = ctx.warehouse.write(ctx.batch(state=state)).deleted
    else:
        gone = sorted(ctx.own_rows)  # fenced too; never in `keep` (`_write_full`)
        purged = ctx.warehouse.write(ctx.batch(deletes=gone)).deleted if gone else 0
        purged += ctx.warehouse.purge_unseen(ctx.pipeline.id, ctx.run.id, keep=keep, state=state)
    ctx.recorder.counters.deleted += purged
    ctx.summary["purged"] = purged
    ctx.save_state(state, full_done=True)


def _save_without_purge(ctx: RunContext, state: PipelineState, read_errors: int) -> None:
    """Rule 3 for a full run with read errors: a record it could not read may be any
    identity, so "unseen" proves nothing and nothing is purged.  The position covering its
    committed rows commits alone (fenced); it completed no full import: the earlier one
    stays the last, and the pipeline's need for a full run (if any) stays."""
    last = ctx.state.last_full_run if ctx.state else None
    state = replace(state, last_full_run=last)
    ctx.warehouse.write(ctx.batch(state=state))
    ctx.summary["purged"] = 0
    ctx.summary.setdefault("warnings", []).append(
        f"{read_errors:,} record(s) could not be read, so nothing was purged: customers "
        "deleted in Stripe (or no longer matching the filter) stay until a full run "
        "reads every customer"
    )
    ctx.save_state(state)


def _write_full(ctx: RunContext, pages: Iterable[list[Record]]) -> tuple[int, set[str]]:
    """Shape and write every page; the newest `created` seen and the records that failed."""
    read_at = ctx.source.read_time() or utcnow()  # Stripe's clock, as changes' times are
    max_created = 0
    failed: set[str] = set()
    pending: list[Any] = []
    writer = ctx.writer()
    try:
        for page in pages:
            writer.check()  # every page is a boundary to stop at, not only a write
            ctx.recorder.counters.read += len(page)
            max_created = created_max(page, max_created)
            shaped = ctx.shaper.shape(page, [read_at] * len(page))
            failed.update(shaped.failed)
            if ctx.own_rows:
                ctx.own_rows.difference_update(
                    [*shaped.failed, *(r.source_id for r in shaped.rows)]
                )
            pending.extend(shaped.rows)
            if len(pending) >= WRITE_BATCH:
                writer.submit(ctx.batch(pending), ctx.count)
                pending = []
            ctx.recorder.flush()
        if pending:
            writer.submit(ctx.batch(pending), ctx.count)
        writer.finish()
    except BaseException:
        writer.abort()
        raise
    return max_created, failed


def run_incremental(ctx: RunContext) -> None:
    state = ctx.claim()
    if ctx.pipeline.needs_full:
        return run_full(ctx, "the pipeline is new or its filter or transformation changed")
    if state is None:
        return run_full(
            ctx,
            "no saved position in this warehouse (a new warehouse, or its schema or file "
            "was replaced); importing everything",
        )
    if not ctx.events_read:
        ctx.summary.setdefault("warnings", []).append(EVENTS_PERMISSION_WARNING)
        return _run_created_since(ctx, state)
    if not state.position:
        return run_full(ctx, "no saved event position yet")
    ctx.summary.update(kind="incremental", reason="changes since the last run")
    try:
        _apply_changes(ctx, state, state.position)
    except HistoryExpired as exc:
        return run_full(ctx, f"incremental history is gone ({exc.message}); re-importing all")
    except PermissionMissing as exc:
        ctx.summary.setdefault("warnings", []).append(EVENTS_PERMISSION_WARNING)
        log.warning("%s", redact(exc.message))
        # From what committed before the permission went missing (the writer has ended).
        return _run_created_since(ctx, ctx.state or state)
    return None


def _apply_changes(ctx: RunContext, start: PipelineState, position: dict[str, Any]) -> None:
    """Apply change batches from `position`, merged across pages into writes of up to
    `WRITE_BATCH`; each write carries `start` moved to the position it covers.

    One write per page would cost a warehouse transaction per 100 events; merging keeps
    only each customer's latest change, so one write never both upserts and deletes it.
    """
    writer = ctx.writer()
    pending: dict[str, Change] = {}
    last = position
    try:
        for change_batch in ctx.source.read_changes(position):
            writer.check()
            ctx.recorder.counters.read += len(change_batch.changes)
            for change in change_batch.changes:
                pending.pop(change.source_id, None)  # re-insert: chronological order
                pending[change.source_id] = change
            if len(pending) >= WRITE_BATCH:
                state = replace(start, position=change_batch.position)
                _submit_changes(ctx, writer, list(pending.values()), state)
                pending = {}
            last = change_batch.position
        if pending or last != position:  # a quiet read saves how far it read too
            _submit_changes(ctx, writer, list(pending.values()), replace(start, position=last))
        writer.finish()
    except BaseException:
        writer.abort()
        raise


def _submit_changes(
    ctx: RunContext, writer: Writer, changes: list[Change], state: PipelineState
) -> None:
    records = [(c.record, c.at) for c in changes if c.record is not None]
    deletes = [c.source_id for c in changes if c.record is None]
    stamps = [datetime.fromtimestamp(at, UTC) for _, at in records]
    # An empty record ({}) is shaped too: a read error, never a run failure.
    shaped = ctx.shaper.shape([record for record, _ in records], stamps)
    ctx.own_rows.update(row.source_id for row in shaped.rows)
    # A customer that no longer passes the filter (or is skipped) is removed.
    deletes.extend(shaped.dropped)

    writer.submit(ctx.batch(shaped.rows, deletes, state), _committed(ctx, state))
    ctx.recorder.flush()


def _run_created_since(ctx: RunContext, start: PipelineState) -> None:
    ctx.summary.update(kind="incremental", reason="new customers by created date")
    read_at = utcnow()
    max_created = start.max_created
    writer = ctx.writer()
    pages = ctx.source.read_created_since(start.max_created)
    try:
        # Pages come newest first (and windows side by side): the position moves only
        # once every page is written (rule 1), never past a customer not written yet.
        for page in pages:
            ctx.recorder.counters.read += len(page)
            max_created = created_max(page, max_created)
            shaped = ctx.shaper.shape(page, [read_at] * len(page))
            writer.submit(ctx.batch(shaped.rows), ctx.count)
        writer.finish()
    except BaseException:
        writer.abort()
        raise
    finally:
        pages.close()
    if ctx.stop.is_set():  # rule 6: no position after a stop (a cancel, a lost lease)
        raise RunStopped(ctx.stop.message)
    # `created` has one-second resolution: re-reading the last second next time is
    # harmless (idempotent merge) and never misses a customer created in it.
    state = replace(start, max_created=max_created)
    ctx.warehouse.write(ctx.batch(state=state))
    ctx.save_state(state)


def _committed(ctx: RunContext, state: PipelineState) -> Callable[[WriteResult], None]:
    """After a batch that carried `state` committed: count it and keep the state."""

    def commit(result: WriteResult) -> None:
        ctx.count(result)
        ctx.save_state(state)

    return commit


def next_run_kind(pipeline: Pipeline, full: bool = False) -> RunKind:
    """The kind of the pipeline's next run (rule 4: a changed definition makes it full).

    An incremental run may still turn full while it runs (no saved position yet, or the
    event history expired); its summary then says why."""
    if full or pipeline.needs_full or not pipeline.incremental:
        return RunKind.FULL
    return RunKind.INCREMENTAL


def _full_reason(pipeline: Pipeline, full: bool) -> str:
    if full:
        return "a full run was requested"
    if not pipeline.incremental:
        return "the pipeline is not incremental"
    return "the pipeline is new or its filter or transformation changed"


def execute(ctx: RunContext, full: bool) -> Run:
    """Run a claimed run to its end and record the outcome; never raises for run
    failures.  A `KeyboardInterrupt` (Ctrl-C) ends the run `cancelled`, then propagates.
    """
    with fewer_collections():
        return _execute(ctx, full)


def _execute(ctx: RunContext, full: bool) -> Run:
    run = ctx.run
    status, message = RunStatus.SUCCEEDED, None
    interrupted: KeyboardInterrupt | None = None
    try:
        if next_run_kind(ctx.pipeline, full) == RunKind.FULL:
            run_full(ctx, _full_reason(ctx.pipeline, full))
        else:
            run_incremental(ctx)
    except KeyboardInterrupt as exc:
        status, message, interrupted = RunStatus.CANCELLED, "cancelled: interrupted (Ctrl-C)", exc
    except Exception as exc:  # stopped, failed, or a surprise: the run still ends cleanly
        status, message, transient = ctx.stop.ending(exc, run.id)
        if transient:  # the service retries it (issue 11); why, when a model change
            ctx.summary.update(transient_summary(exc))
    if status != RunStatus.SUCCEEDED:
        ctx.summary["purged"] = 0
        ctx.summary["note"] = (
            f"the run {'was ' if status == RunStatus.CANCELLED else ''}{status}: nothing was "
            "purged and the position stayed at the last committed batch"
        )
    # A stopped run (cancelled, Ctrl-C, put back in the queue, its lease lost: rule 6,
    # even after its last write) ends now: its identities stay pending for the next
    # resolution (a rebuild delayed a cancel; a run that lost its lease wrote profiles).
    lease_lost = ctx.stop.is_set() and ctx.stop.status == RunStatus.FAILED
    message = LAPSED_AFTER_WRITES if lease_lost and message is None else message
    ended = status in (RunStatus.SUCCEEDED, RunStatus.FAILED)
    if ctx.resolve is not None and ended and not lease_lost:
        resolve_into(ctx.resolve, ctx.summary)  # a stop now ends it (`runner._resolve`)
    if ctx.release is not None:
        try:
            ctx.release()
        except Exception:  # a close that failed must not keep the outcome unrecorded
            log.exception("run %s: closing its warehouse or source failed", run.id)
    ended_run = record_ending(ctx.run, ctx.owner, ctx.recorder, ctx.summary, status, message)
    if interrupted is not None:
        raise interrupted
    return ended_run
