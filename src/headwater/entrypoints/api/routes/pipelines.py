"""``/pipelines``: create, list, show, change, enable/disable, schedule, delete, and
run now (``POST /pipelines/{id}/runs``).  Saving goes through
`services.pipelines.saving`, as the CLI's does: the definition is checked, then tried
on live sample customers (its warnings come back as `save_warnings`).

The read routes (``GET``) are `async` on purpose: they make a few short reads of the
store that never wait for a lock (SQLite's WAL, PostgreSQL's MVCC), which cost less on
the event loop than a trip through the thread pool; they are what dashboards poll.
Every route that writes, or reaches Stripe or the warehouse, stays a plain `def`
(FastAPI runs it in the thread pool)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Query, Response
from starlette.concurrency import run_in_threadpool

from headwater.entrypoints.api.deps import CheckedInput, WorkspaceApp
from headwater.entrypoints.api.json_route import StrictJsonRoute
from headwater.entrypoints.api.paging import Limit, StartingAfter
from headwater.entrypoints.api.params import (
    PipelineId,
)
from headwater.entrypoints.api.routes import runs as runs_routes
from headwater.entrypoints.api.schemas import json_bytes, plain
from headwater.entrypoints.api.schemas.pipelines import (
    PipelineCreate,
    PipelineDeleted,
    PipelineList,
    PipelinePublic,
    PipelineSaved,
    PipelineUpdate,
    RunRequest,
    ScheduleSet,
)
from headwater.entrypoints.api.schemas.runs import RunList, RunPublic
from headwater.kernel.entities import Pipeline, RunStatus
from headwater.services.app import App
from headwater.services.pipelines import manage, runner, saving
from headwater.services.pipelines.documents import pipeline_documents, run_document

router = APIRouter(
    route_class=StrictJsonRoute,
    dependencies=[CheckedInput],
    prefix="/pipelines",
    tags=["pipelines"],
)


def _public(app: App, pipeline: Pipeline) -> PipelinePublic:
    return PipelinePublic.model_validate(plain(pipeline_documents(app, [pipeline])[0]))


def _saved(app: App, saved: saving.Saved) -> PipelineSaved:
    doc = pipeline_documents(app, [saved.pipeline])[0] | {"save_warnings": saved.warnings}
    return PipelineSaved.model_validate(plain(doc))


@router.post("", status_code=201, summary="Add a pipeline")
def create_pipeline(body: PipelineCreate, app: WorkspaceApp) -> PipelineSaved:
    """Check the filter and transformation (every problem is reported, located), save
    the pipeline, then try it on live sample customers."""
    transformation = None if body.transformation is None else body.transformation.model_dump()
    saved = saving.save_new(
        app,
        body.connection_id,
        body.name,
        transformation,
        description=body.description,
        filter=body.filter,
        schedule=body.schedule,
        incremental=body.incremental,
        enabled=body.enabled,
    )
    return _saved(app, saved)


@router.get("", summary="List pipelines", response_model=PipelineList)
async def list_pipelines(
    app: WorkspaceApp,
    connection_id: Annotated[
        str | None, Query(max_length=40, description="Only pipelines reading this connection.")
    ] = None,
    limit: Limit = 20,
    starting_after: StartingAfter = None,
) -> Response:
    """The workspace's pipelines, newest first, each with its last run."""
    items, has_more = manage.page_pipelines(app, connection_id, limit, starting_after)
    # Written straight to JSON: what dashboards poll skips a second validation of
    # documents the services built (their shape is the declared `PipelineList`).
    page = {"data": pipeline_documents(app, items), "has_more": has_more}
    return Response(json_bytes(page), media_type="application/json")


@router.get("/{pipeline_id}", summary="Show a pipeline")
async def show_pipeline(pipeline_id: PipelineId, app: WorkspaceApp) -> PipelinePublic:
    """A pipeline's definition, schedule, state and last run."""
    return _public(app, manage.get(app, pipeline_id))


@router.patch("/{pipeline_id}", summary="Change a pipeline")
def update_pipeline(
    pipeline_id: PipelineId, body: PipelineUpdate, app: WorkspaceApp
) -> PipelineSaved:
    """Change the fields given (absent ones are kept; `"filter": null` removes the
    filter). A new filter or transformation makes the next run a full one and is tried
    on live sample customers."""
    given = body.model_fields_set
    changes = manage.PipelineChanges(
        name=body.name,
        description=body.description,
        schedule=body.schedule,
        incremental=body.incremental,
        enabled=body.enabled,
        filter=body.filter,
        clear_filter="filter" in given and body.filter is None,
        transformation=None if body.transformation is None else body.transformation.model_dump(),
    )
    return _saved(app, saving.save_changes(app, pipeline_id, changes))


def _changed(app: App, pipeline_id: str, changes: manage.PipelineChanges) -> PipelinePublic:
    return _public(app, manage.update(app, pipeline_id, changes))


@router.post("/{pipeline_id}/enable", summary="Enable a pipeline")
def enable_pipeline(pipeline_id: PipelineId, app: WorkspaceApp) -> PipelinePublic:
    """Let the pipeline run (now when asked, and on its schedule)."""
    return _changed(app, pipeline_id, manage.PipelineChanges(enabled=True))


@router.post("/{pipeline_id}/disable", summary="Disable a pipeline")
def disable_pipeline(pipeline_id: PipelineId, app: WorkspaceApp) -> PipelinePublic:
    """It never runs, scheduled or not; its queued runs are dropped, a running one ends."""
    return _changed(app, pipeline_id, manage.PipelineChanges(enabled=False))


@router.put("/{pipeline_id}/schedule", summary="Set a pipeline's schedule")
def set_schedule(pipeline_id: PipelineId, body: ScheduleSet, app: WorkspaceApp) -> PipelinePublic:
    """How often it runs by itself; applies at once (`next_run_at` follows)."""
    return _changed(app, pipeline_id, manage.PipelineChanges(schedule=body.schedule))


@router.delete("/{pipeline_id}", summary="Delete a pipeline")
def delete_pipeline(pipeline_id: PipelineId, app: WorkspaceApp) -> PipelineDeleted:
    """Delete the pipeline, its runs and the customers it imported; a queued run is
    cancelled first (409 while a run of it is running)."""
    removed = manage.delete(app, pipeline_id)
    return PipelineDeleted(id=pipeline_id, deleted=True, identities_removed=removed)


@router.post("/{pipeline_id}/runs", status_code=202, summary="Run a pipeline now")
def run_pipeline(
    pipeline_id: PipelineId,
    app: WorkspaceApp,
    body: Annotated[RunRequest | None, Body()] = None,
) -> RunPublic:
    """Queue a run; a worker of `headwater serve` (or `headwater worker`) starts it.
    Follow it with `GET /runs/{id}`. 409 when the pipeline is disabled or already has
    a live run. `{"full": true}` forces a full run."""
    full = body.full if body is not None else False
    run = runner.enqueue(app, pipeline_id, full=full)
    return RunPublic.model_validate(plain(run_document(run)))


@router.get("/{pipeline_id}/runs", summary="List a pipeline's runs", response_model=RunList)
async def list_pipeline_runs(
    pipeline_id: PipelineId,
    app: WorkspaceApp,
    status: Annotated[RunStatus | None, Query(description="Only runs with this status.")] = None,
    limit: Limit = 20,
    starting_after: StartingAfter = None,
) -> Response:
    """The pipeline's runs, newest first: `GET /runs?pipeline_id=` for a pipeline that
    exists (404 for one that does not, or another workspace's)."""
    await run_in_threadpool(manage.get, app, pipeline_id)
    return await runs_routes.list_runs(app, pipeline_id, status, limit, starting_after)
