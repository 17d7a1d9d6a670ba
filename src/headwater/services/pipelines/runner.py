"""Starting runs: the one entry the CLI, the API and the scheduler share."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from headwater.adapters.store import runs
from headwater.kernel.entities import Pipeline, Run, utcnow
from headwater.kernel.errors import Conflict, HeadwaterError, redact
from headwater.services.app import App
from headwater.services.connections import get_connection, open_source
from headwater.services.pipelines import manage
from headwater.services.pipelines.definition import compile_predicate, compile_transformation
from headwater.services.pipelines.engine import RunContext, execute
from headwater.services.pipelines.recorder import Progress, Recorder
from headwater.services.pipelines.shaping import Shaper


def planned_kind(pipeline: Pipeline, full: bool) -> str:
    if full or pipeline.needs_full or not pipeline.incremental:
        return "full"
    return "incremental"


def run_pipeline(
    app: App, pipeline_id: str, *, full: bool = False, on_progress: Progress | None = None
) -> Run:
    """Run a pipeline now, in this process, and return the finished run.

    Refused (`Conflict`) when the pipeline is disabled or already has a live run.
    """
    pipeline = manage.get(app, pipeline_id)
    if not pipeline.enabled:
        raise Conflict(f"pipeline {pipeline.id} is disabled; enable it before running it")
    run = runs.create_run(app.engine, pipeline.id, planned_kind(pipeline, full))
    recorder = Recorder(app.engine, run.id, on_progress)
    try:
        with _parts(app, pipeline, recorder, run) as ctx:
            finished = execute(ctx, full)
    except HeadwaterError as exc:  # setup failed: warehouse unreachable, bad key, ...
        return _fail(app, run, exc.message)
    except Exception as exc:
        return _fail(app, run, redact(f"{type(exc).__name__}: {exc}"))
    kind = finished.summary.get("kind")
    if kind and kind != finished.kind:
        runs.update_run(app.engine, run.id, kind=kind, heartbeat_at=finished.heartbeat_at)
        finished.kind = kind
    return finished


def enqueue(app: App, pipeline_id: str, *, full: bool = False) -> Run:
    """Insert a queued run of the pipeline; refused when disabled or already live."""
    pipeline = manage.get(app, pipeline_id)
    if not pipeline.enabled:
        raise Conflict(f"pipeline {pipeline.id} is disabled; enable it before running it")
    return runs.create_run(app.engine, pipeline.id, planned_kind(pipeline, full))


def _fail(app: App, run: Run, message: str) -> Run:
    runs.update_run(app.engine, run.id, status="failed", message=message, finished_at=utcnow())
    return runs.get_run(app.engine, run.id)


@contextlib.contextmanager
def _parts(app: App, pipeline: Pipeline, recorder: Recorder, run: Run) -> Iterator[RunContext]:
    connection = get_connection(app, pipeline.connection_id)
    model = app.model()
    keep = compile_predicate(pipeline.filter)  # compiled once per run
    with contextlib.ExitStack() as stack:
        warehouse = app.warehouse()
        stack.callback(warehouse.close)
        source = open_source(app, connection)
        stack.callback(source.close)
        transformation = compile_transformation(pipeline.transformation, model)
        stack.callback(transformation.close)
        yield RunContext(
            pipeline=pipeline,
            run=run,
            source=source,
            warehouse=warehouse,
            shaper=Shaper(keep, transformation, model, recorder),
            recorder=recorder,
            events_read=connection.events_read,
        )


def list_runs(app: App, pipeline_id: str | None = None, limit: int = 50) -> list[Run]:
    if pipeline_id:
        ids = [manage.get(app, pipeline_id).id]
    else:
        ids = [p.id for p in manage.list_pipelines(app)]
    return runs.list_runs(app.engine, ids, limit)


def get_run(app: App, run_id: str, error_limit: int = 20) -> Run:
    return runs.get_run(app.engine, run_id, error_limit)
