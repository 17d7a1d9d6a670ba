"""The pipelines table of a connection and its row actions: Enable, Run now, Schedule,
Delete. Each action answers with the row re-rendered (htmx swaps it in place)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from headwater.entrypoints.console import views
from headwater.entrypoints.console.flash import Kind
from headwater.entrypoints.console.web import (
    CurrentViewer,
    Viewer,
    redirect,
    redirect_telling,
    render,
)
from headwater.kernel.entities import Pipeline
from headwater.kernel.errors import Conflict, InvalidInput
from headwater.services import connections
from headwater.services.pipelines import manage, runner, saving
from headwater.services.pipelines.definition import filter_text

router = APIRouter()


def row_context(who: Viewer, pipeline: Pipeline, message: str | None = None) -> dict[str, Any]:
    """What one row of the pipelines table shows."""
    recent = runner.list_runs(who.app, pipeline.id, 1)
    last = recent[0] if recent else None
    return {
        "pipeline": pipeline,
        "filter_text": filter_text(pipeline.filter) if pipeline.filter else "—",
        "live": last if last is not None and last.live else None,
        "last": last if last is not None and not last.live else None,
        "views": views,
        "message": message,
    }


def row(
    request: Request, who: Viewer, pipeline: Pipeline, message: str | None = None, status: int = 200
) -> Response:
    return render(
        request, "pipeline_row.html", who, status=status, **row_context(who, pipeline, message)
    )


@router.get("/connections/{connection_id}")
def connection(connection_id: str, who: CurrentViewer) -> Response:
    connections.get_connection(who.app, connection_id)
    return redirect(f"/connections/{connection_id}/pipelines")


@router.get("/connections/{connection_id}/pipelines")
def pipelines_tab(request: Request, connection_id: str, who: CurrentViewer) -> Response:
    conn = connections.get_connection(who.app, connection_id)
    rows = [row_context(who, p) for p in manage.list_pipelines(who.app, conn.id)]
    return render(
        request,
        "connection_pipelines.html",
        who,
        connection=conn,
        rows=rows,
        tab="pipelines",
        schedules=views.SCHEDULE_CHOICES,
    )


@router.post("/pipelines/{pipeline_id}/enable")
def enable(
    request: Request, pipeline_id: str, who: CurrentViewer, enabled: Annotated[str, Form()]
) -> Response:
    changes = manage.PipelineChanges(enabled=enabled == "true")
    saved = saving.save_changes(who.app, pipeline_id, changes)
    return row(request, who, saved.pipeline)


@router.post("/pipelines/{pipeline_id}/schedule")
def schedule(
    request: Request, pipeline_id: str, who: CurrentViewer, schedule: Annotated[str, Form()]
) -> Response:
    """Answers the row's "Next run" line only: the select stays as the user left it (a
    refusal is that line with the reason, also told in the page's status line, and the
    select goes back)."""
    try:
        saved = saving.save_changes(who.app, pipeline_id, manage.PipelineChanges(schedule=schedule))
    except InvalidInput as exc:
        pipeline = manage.get(who.app, pipeline_id)
        return render(
            request, "next_run.html", who, status=400, pipeline=pipeline, refusal=exc.message
        )
    return render(request, "next_run.html", who, pipeline=saved.pipeline)


@router.post("/pipelines/{pipeline_id}/run")
def run_now(request: Request, pipeline_id: str, who: CurrentViewer) -> Response:
    try:
        runner.enqueue(who.app, pipeline_id)
    except Conflict as exc:
        return row(request, who, manage.get(who.app, pipeline_id), exc.message, 409)
    return row(request, who, manage.get(who.app, pipeline_id))


@router.post("/pipelines/{pipeline_id}/delete")
def delete(
    request: Request, pipeline_id: str, who: CurrentViewer, confirm: Annotated[str, Form()] = ""
) -> Response:
    """The delete dialog's form (a whole-page post): back to the pipelines table, which
    says what was done or why not."""
    pipeline = manage.get(who.app, pipeline_id)
    table = f"/connections/{pipeline.connection_id}/pipelines"
    if confirm != pipeline.name:
        refusal = f"“{pipeline.name}” was not deleted: type the pipeline's name to delete it"
        return redirect_telling(request, who, table, refusal, Kind.ERROR)
    try:
        manage.delete(who.app, pipeline.id)
    except Conflict as exc:
        refusal = f"“{pipeline.name}” was not deleted: {exc.message}"
        return redirect_telling(request, who, table, refusal, Kind.ERROR)
    return redirect_telling(request, who, table, f"Pipeline “{pipeline.name}” deleted")
