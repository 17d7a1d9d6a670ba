"""Recording a run's outcome in the metadata store, once the engine is done with it."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

from headwater.adapters.store import queue, runs
from headwater.adapters.store.database import describe_error, store_error
from headwater.kernel.entities import Run, RunStatus, utcnow
from headwater.services.pipelines.recorder import Recorder

log = logging.getLogger(__name__)

T = TypeVar("T")

#: How long the run's ending is retried while the store is locked or away.
ENDING_ATTEMPTS = 12

#: The account of a run whose lease lapsed after its import's every write committed (its
#: process stalled then): it succeeded as far as it knew, but resolves no identities.
LAPSED_AFTER_WRITES = (
    "every write had committed when it learnt its lease had lapsed (this process was "
    "stalled); it stopped before resolving identities, which the next run resolves"
)


def resolve_into(resolve: Callable[[], dict[str, Any]], summary: dict[str, Any]) -> None:
    """Resolve the run's identities (`resolve`), its outcome and time in `summary`;
    one a stop ended (its ``stopped`` says which) is also a warning: the run imported
    every customer, only their profiles wait for the next resolution."""
    began = time.monotonic()
    profiles = resolve()
    summary["profiles"] = {**profiles, "seconds": round(time.monotonic() - began, 3)}
    if "stopped" in profiles:
        summary.setdefault("warnings", []).append(
            f"identity resolution was stopped ({profiles['stopped']}) after every write "
            "committed: the run's customers are imported; their profiles are resolved by "
            "the next run (or profiles rebuild)"
        )


def record_ending(
    run: Run,
    owner: str,
    recorder: Recorder,
    summary: dict[str, Any],
    status: RunStatus,
    message: str | None,
) -> Run:
    """Record the outcome; unlike progress it is retried (a lock may be held a while).
    A run the service put back (`QUEUED`) returns to the queue; a run closed as lost
    meanwhile stays closed, with this account added to it.  The run as the store then
    keeps it (read back, retried too); when the store stayed full, locked or away, the
    run as it ended here (`unrecorded`)."""
    engine = recorder.engine
    recorder.flush(force=True)
    if recorder.skipped_updates:  # the store was locked or away for a while
        summary["progress_updates_skipped"] = recorder.skipped_updates
    kind = summary.get("kind") or run.kind

    def record() -> None:
        recorder.store_errors()  # those the last progress update could not store
        if status == RunStatus.QUEUED:  # the service is stopping: back to the queue
            if queue.requeue(engine, run.id, owner, message or "") is None:
                runs.note_after_loss(engine, run.id, owner, message or "")
            return
        ended = runs.finish_run(
            engine,
            run.id,
            owner,
            status=status.value,
            message=message,
            summary=summary,
            counters=recorder.counters.as_dict(),
            kind=kind,
        )
        if not ended:  # closed as lost meanwhile: it stays closed, with our account
            runs.note_after_loss(engine, run.id, owner, message or "")

    try:
        retried(run.id, "recording its ending", record, every_error=True)
    except Exception as exc:
        log.error("run %s: its ending could not be recorded; its lease will lapse", run.id)
        return unrecorded(run, recorder, summary, status, message, describe_error(exc))
    return retried(run.id, "reading its ending back", lambda: runs.get_run(engine, run.id))


def retried(run_id: str, what: str, action: Callable[[], T], *, every_error: bool = False) -> T:
    """`action` on the metadata store for run `run_id`, tried again (`ENDING_ATTEMPTS`
    times, waiting longer each time) while the store is locked, full or away: a dropped
    connection is replaced at the next try (the pool pings first).  Other errors are
    raised at once unless `every_error`; the last failure is raised."""
    for attempt in range(ENDING_ATTEMPTS - 1):
        try:
            return action()
        except Exception as exc:
            if not (every_error or store_error(exc)):
                raise
            log.warning("run %s: %s failed, trying again (%s)", run_id, what, describe_error(exc))
            time.sleep(min(2.0**attempt, 10.0))
    return action()  # the last try: its failure is raised


def unrecorded(
    run: Run,
    recorder: Recorder,
    summary: dict[str, Any],
    status: RunStatus,
    message: str | None,
    why: str,
) -> Run:
    """The run as it ended, though the store could not record it (`why`): the caller
    learns its outcome from this process, not the store's stale "running", which its
    lease's lapse closes later as lost."""
    warning = (
        f"this outcome could not be recorded in the metadata store ({why}): the run "
        "shows as running there until its lease lapses, then as lost"
    )
    warnings = [*summary.get("warnings", []), warning]
    return dataclasses.replace(
        run,
        status=status,
        message=message,
        summary={**summary, "warnings": warnings},
        counters=recorder.counters.as_dict(),
        finished_at=utcnow(),
    )
