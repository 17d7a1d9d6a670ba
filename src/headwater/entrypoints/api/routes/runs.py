"""``/runs``: list (by pipeline and status), show with live counters, the per-record
errors page by page, cancel.

The read routes are `async`, as those of `pipelines` (short store reads that never
wait for a lock; `GET /runs/{id}` is what every follower of a run polls)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from headwater.entrypoints.api.deps import CheckedInput, WorkspaceApp
from headwater.entrypoints.api.json_route import StrictJsonRoute
from headwater.entrypoints.api.paging import Limit, StartingAfter
from headwater.entrypoints.api.params import (
    RunId,
)
from headwater.entrypoints.api.schemas import json_bytes, plain
from headwater.entrypoints.api.schemas.runs import ErrorList, RunList, RunPublic, StoredError
from headwater.kernel.entities import RunStatus
from headwater.services.pipelines import history, runner
from headwater.services.pipelines.documents import run_document

router = APIRouter(
    route_class=StrictJsonRoute, dependencies=[CheckedInput], prefix="/runs", tags=["runs"]
)


@router.get("", summary="List runs", response_model=RunList)
async def list_runs(
    app: WorkspaceApp,
    pipeline_id: Annotated[
        str | None, Query(max_length=40, description="Only runs of this pipeline.")
    ] = None,
    status: Annotated[RunStatus | None, Query(description="Only runs with this status.")] = None,
    limit: Limit = 20,
    starting_after: StartingAfter = None,
) -> Response:
    """The workspace's runs, newest first."""
    # Written straight to JSON (the shape is the declared `RunList`): polled often.
    found = history.page_runs(
        app,
        pipeline_id=pipeline_id,
        status=None if status is None else status.value,
        limit=limit,
        starting_after=starting_after,
    )
    page = {"data": [run_document(r) for r in found.items], "has_more": found.has_more}
    return Response(json_bytes(page), media_type="application/json")


@router.get("/{run_id}", summary="Show a run", response_model=RunPublic)
async def show_run(
    run_id: RunId,
    app: WorkspaceApp,
    errors: Annotated[
        int, Query(ge=0, le=100, description="How many of its first errors to include.")
    ] = 20,
) -> Response:
    """A run's status, live counters (updated while it runs) and first errors."""
    document = run_document(runner.get_run(app, run_id, errors))
    return Response(json_bytes(document), media_type="application/json")


@router.get("/{run_id}/errors", summary="List a run's errors")
async def list_run_errors(
    run_id: RunId, app: WorkspaceApp, limit: Limit = 20, starting_after: StartingAfter = None
) -> ErrorList:
    """The run's per-record errors in the order they happened (customer, step,
    message); the first 1,000 of a run are kept."""
    found = history.page_errors(app, run_id, limit=limit, starting_after=starting_after)
    return ErrorList(
        data=[StoredError.model_validate(e) for e in found.items], has_more=found.has_more
    )


@router.post("/{run_id}/cancel", summary="Cancel a run")
def cancel_run(run_id: RunId, app: WorkspaceApp) -> RunPublic:
    """A queued run ends `cancelled` at once; a running one stops at its next batch
    boundary (within seconds), keeping what it committed. 409 when it already ended."""
    return RunPublic.model_validate(plain(run_document(runner.cancel_run(app, run_id))))
