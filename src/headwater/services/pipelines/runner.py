"""Starting, executing and cancelling runs: the entry the CLI, the API and the
scheduler share.

A run is a row first (`enqueue`), then executed by whoever claims it (`execute_run`):
today the process that enqueued it, later a service worker.  While it executes, a
`LeaseKeeper` thread renews its lease (see `lease.py` for that concurrency boundary).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from headwater.adapters.store import queue, run_queries, runs
from headwater.adapters.warehouse.contract import ModelChanged, Warehouse
from headwater.kernel.entities import Pipeline, Run, RunKind, RunStatus, utcnow
from headwater.kernel.errors import Conflict
from headwater.kernel.records import RecordError, Step
from headwater.services import profiles
from headwater.services.app import App
from headwater.services.connections import get_connection, open_source
from headwater.services.pipelines import manage
from headwater.services.pipelines.definition import compile_predicate, compile_transformation
from headwater.services.pipelines.ending import retried
from headwater.services.pipelines.engine import RunContext, execute, next_run_kind
from headwater.services.pipelines.lease import (
    LeaseKeeper,
    RunStop,
    cancel_here,
    new_owner,
    transient_summary,
)
from headwater.services.pipelines.recorder import Progress, Recorder
from headwater.services.pipelines.shaping import Shaper
from headwater.services.text import known_id


def run_pipeline(
    app: App, pipeline_id: str, *, full: bool = False, on_progress: Progress | None = None
) -> Run:
    """Run a pipeline now, in this process, and return the finished run.

    Refused (`Conflict`) when the pipeline is disabled or already has a live run.
    Ctrl-C (`KeyboardInterrupt`) ends the run `cancelled`, then propagates.
    """
    pipeline = _runnable(app, pipeline_id)
    lease = _lease(app)
    owner = new_owner()
    run = runs.create_run(
        app.engine, pipeline.id, next_run_kind(pipeline, full), owner, utcnow() + lease
    )
    return _execute_claimed(app, run, owner, lease, full, on_progress, RunStop())


def run_here(
    app: App, pipeline_id: str, *, full: bool = False, on_progress: Progress | None = None
) -> Run:
    """Run the pipeline now in this process (no service is up to take a queued run):
    its queued run when it has one (one put back when a service stopped, a retry
    waiting its turn: it blocked every run of the pipeline until cancelled), else a new
    one (`run_pipeline`)."""
    live = runs.live_run(app.engine, pipeline_id)
    if (
        live is not None
        and live.status == RunStatus.QUEUED
        and (not full or live.kind == RunKind.FULL)
    ):
        owner, lease = new_owner(), _lease(app)
        claimed = runs.claim_run(app.engine, live.id, owner, utcnow() + lease)
        if claimed is not None:
            return execute_claimed(app, claimed, owner, stop=RunStop(), on_progress=on_progress)
    return run_pipeline(app, pipeline_id, full=full, on_progress=on_progress)


def enqueue(
    app: App, pipeline_id: str, *, full: bool = False, retry: runs.Retry | None = None
) -> Run:
    """Insert a queued run of the pipeline (the `retry` of an earlier one, if given);
    refused when disabled or already live."""
    pipeline = _runnable(app, pipeline_id)
    kind = next_run_kind(pipeline, full)
    return runs.create_run(app.engine, pipeline.id, kind, retry=retry)


def execute_run(
    app: App,
    run_id: str,
    *,
    full: bool = False,
    on_progress: Progress | None = None,
    stop: RunStop | None = None,
) -> Run:
    """Claim a queued run and execute it here, holding its lease until it ends.

    Refused (`Conflict`) when the run is no longer queued (cancelled, claimed elsewhere).
    """
    lease = _lease(app)
    owner = new_owner()
    run = runs.claim_run(app.engine, run_id, owner, utcnow() + lease)
    if run is None:
        current = runs.get_run(app.engine, run_id, 0)
        raise Conflict(f"run {run_id} is {current.status}, not queued: it cannot start")
    return _execute_claimed(app, run, owner, lease, full, on_progress, stop or RunStop())


def execute_claimed(
    app: App, run: Run, owner: str, *, stop: RunStop, on_progress: Progress | None = None
) -> Run:
    """Execute a run that `owner` already claimed (a service worker), holding its lease
    until it ends.  A full run was asked for when its kind is full though the pipeline
    alone would not make it so."""
    pipeline = manage.get(app, run.pipeline_id)
    if not pipeline.enabled:
        # Disabling drops queued runs, but a retry or a webhook's follow-up may have
        # been queued by a check made just before: it ends as those dropped did.
        reason = f"cancelled: pipeline {pipeline.id} was disabled before the run started"
        return _end(app, run, owner, RunStatus.CANCELLED, reason)
    full = run.kind == RunKind.FULL and next_run_kind(pipeline) != RunKind.FULL
    return _execute_claimed(app, run, owner, _lease(app), full, on_progress, stop)


def _runnable(app: App, pipeline_id: str) -> Pipeline:
    pipeline = manage.get(app, pipeline_id)
    if not pipeline.enabled:
        raise Conflict(f"pipeline {pipeline.id} is disabled; enable it before running it")
    return pipeline


def _lease(app: App) -> timedelta:
    return timedelta(seconds=app.settings.run_lease_seconds)


def _execute_claimed(
    app: App,
    run: Run,
    owner: str,
    lease: timedelta,
    full: bool,
    on_progress: Progress | None,
    stop: RunStop,
) -> Run:
    """Execute a run this process claimed, renewing its lease until it ended."""
    recorder = Recorder(
        app.engine, run.id, on_progress, stored=_stored_errors(app, run), owner=owner
    )
    with LeaseKeeper(app.engine, run.id, owner, lease, stop):
        try:
            pipeline = manage.get(app, run.pipeline_id)
            with _parts(app, pipeline, recorder, run, owner, stop) as ctx:
                return execute(ctx, full)
        except KeyboardInterrupt:  # Ctrl-C before the engine started: nothing was written
            _end(app, run, owner, RunStatus.CANCELLED, "cancelled: interrupted (Ctrl-C)")
            raise
        except Exception as exc:  # setup failed (warehouse unreachable, bad key, ...),
            # or a stop interrupted it (a wait on the warehouse): it ends as that stop.
            status, message, transient = stop.ending(exc, run.id)
            summary = transient_summary(exc) if transient else {}
            return _end(app, run, owner, status, message, summary)


def _stored_errors(app: App, run: Run) -> list[RecordError]:
    """The errors an earlier attempt of `run` stored, if it is resuming (it counted)."""
    if not run.counters:
        return []
    earlier = retried(
        run.id,
        "reading its stored errors",
        lambda: runs.get_run(app.engine, run.id, runs.MAX_STORED_ERRORS),
    ).errors
    return [RecordError(e["source_id"], Step(e["step"]), e["message"]) for e in earlier]


def cancel_run(app: App, run_id: str) -> Run:
    """Cancel a run: a queued one ends `cancelled` at once; a running one is asked to
    stop and ends `cancelled` at its next page or batch boundary (at once when this
    process runs it, else within `lease.CANCEL_CHECK_SECONDS` and a page), keeping
    what committed.
    Refused (`Conflict`) when the run already ended."""
    run_id = known_id(run_id, "run")
    runs.get_run(app.engine, run_id, 0, app.workspace_id)  # NotFound for another's
    asked = runs.request_cancel(app.engine, run_id)
    if asked.status == RunStatus.RUNNING:
        cancel_here(run_id)
    return asked


def _end(
    app: App,
    run: Run,
    owner: str,
    status: RunStatus,
    message: str,
    summary: dict[str, Any] | None = None,
) -> Run:
    """End a run that never reached the engine, and read it back: both retried while
    the store is away (its failure may be why the run ends), as the engine's are."""

    def end() -> Run:
        if status == RunStatus.QUEUED:  # the service stopped during setup: back to the queue
            queue.requeue(app.engine, run.id, owner, message)
        else:  # a no-op when an earlier try recorded it (the run is no longer held)
            runs.finish_run(
                app.engine,
                run.id,
                owner,
                status=status.value,
                message=message,
                summary=summary or {},
            )
        return runs.get_run(app.engine, run.id)

    return retried(run.id, "ending it", end)


@contextlib.contextmanager
def _parts(
    app: App, pipeline: Pipeline, recorder: Recorder, run: Run, owner: str, stop: RunStop
) -> Iterator[RunContext]:
    connection = get_connection(app, pipeline.connection_id)
    model = app.model()
    keep = compile_predicate(pipeline.filter)  # compiled once per run
    with contextlib.ExitStack() as stack:
        source = open_source(app, connection)
        stack.callback(source.close)
        stop.when_requested(source.interrupt)  # a stop need not wait on Stripe
        if run.kind == RunKind.FULL and pipeline.incremental and connection.events_read:
            # Its first request's round trip overlaps opening the warehouse (`engine`'s
            # `run_full` reads the full read, then its event position).
            source.read_full_ahead()
        # Nor on the warehouse (a lock another session holds, a resolution): the
        # statement under way ends and rolls back; what committed stays (state rule 1).
        warehouse = app.warehouse(opened=lambda opened: stop.when_requested(opened.interrupt))
        stack.callback(warehouse.close)
        # The tables as of the model this run compiles with (read once, above): a model
        # a rename or drop replaced since is refused here, and its generation rides in
        # every write, which a rename or drop committed meanwhile refuses (`model_state`).
        tables = warehouse.ensure_columns(model.columns)
        if tables.outdated:
            raise ModelChanged(
                "the Customer Model changed (a property renamed or dropped) as this run "
                "started, after it read the model: nothing was written; a retry imports "
                "with the new model"
            )
        transformation = compile_transformation(pipeline.transformation, model)
        stack.callback(transformation.close)
        yield RunContext(
            pipeline=pipeline,
            run=run,
            source=source,
            warehouse=warehouse,
            shaper=Shaper(keep, transformation, model, recorder, stop=stop),
            recorder=recorder,
            events_read=connection.events_read,
            owner=owner,
            model_generation=tables.generation,
            stop=stop,
            resolve=lambda: _resolve(app, warehouse, run.id, stop),
            release=stack.close,  # before the final status; the exit then has nothing left
        )


def _resolve(app: App, warehouse: Warehouse, run_id: str, stop: RunStop) -> dict[str, Any]:
    """Identity resolution after the run's writes (`profiles.resolve_after_run`).  A
    stop meanwhile (a cancel, the service stopping) interrupts it (`_parts`), waits
    included (for another resolution's lock): its transaction rolls back, the run's
    identities stay pending for the next resolution, and the run, whose every write
    committed, ends as it would have, saying so (`ending.resolve_into`)."""
    done = profiles.resolve_after_run(app, warehouse, run_id)
    if "error" not in done or not stop.is_set():
        return done
    # Not "re-queued": a run that only resolves has imported everything; it ends as such.
    why = "the service stopped" if stop.status == RunStatus.QUEUED else stop.message
    return {"stopped": why, "note": "the run's identities stay pending for the next"}


def list_runs(
    app: App, pipeline_id: str | None = None, limit: int = 50, status: RunStatus | None = None
) -> list[Run]:
    """The newest runs of the workspace, or of one of its pipelines (`NotFound` for
    one that is not the workspace's, an empty id included), optionally of one status."""
    if pipeline_id is not None:
        ids = [manage.get(app, pipeline_id).id]
    else:
        ids = [p.id for p in manage.list_pipelines(app)]
    if status is None:
        return runs.list_runs(app.engine, ids, limit)
    return run_queries.page_runs(app.engine, ids, limit, status=status.value).runs


def get_run(app: App, run_id: str, error_limit: int = 20) -> Run:
    """A run of this workspace with its first `error_limit` errors (`NotFound` for a
    run of another workspace, as for one that does not exist)."""
    run_id = known_id(run_id, "run")
    return runs.get_run(app.engine, run_id, error_limit, app.workspace_id)
