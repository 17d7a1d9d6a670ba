"""The full-screen pipeline editor ("Add pipeline..." / "Manage..."): the page, its
preview and saving (validation as you type is the API's ``POST /api/v1/validate``).

The editor's script sends the pipeline document the REST API takes (`connection_id`,
`name`, `description`, `filter`, `transformation`, `incremental`); saving calls
`services.pipelines.saving` as the API does, and a refusal answers the API's error
document, with every problem located (``conditions[1]``, a Customer Model path) so the
editor shows it on its row.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from headwater.entrypoints.console.web import FORMS, CurrentViewer, Viewer, render
from headwater.kernel import json_text
from headwater.kernel.entities import Connection, Pipeline
from headwater.kernel.errors import HeadwaterError, InvalidInput, NotFound, Problem
from headwater.services import connections
from headwater.services.pipelines import authoring, definition, manage, preview, saving

router = APIRouter()


def _problem(p: Problem) -> dict[str, Any]:
    return {"location": p.location, "message": p.message, "line": p.line, "column": p.column}


def _error(exc: HeadwaterError) -> JSONResponse:
    """The API's error document; 404 for an object not found (another workspace's as a
    missing one, DESIGN §8), else 400."""
    status = 404 if isinstance(exc, NotFound) else 400
    problems = [_problem(p) for p in exc.problems] if isinstance(exc, InvalidInput) else []
    field = exc.location if isinstance(exc, InvalidInput) else None
    body = {
        "type": type(exc).__name__,
        "message": exc.message,
        "field": field,
        "problems": problems,
    }
    return JSONResponse({"error": body}, status_code=status)


async def _body(request: Request) -> dict[str, Any]:
    if request.headers.get("content-type", "").startswith(FORMS):
        # Not JSON (and its body was read already, for the form's workspace field).
        raise InvalidInput("the body must be a JSON object")
    try:
        data = json_text.loads(await request.body())
    except (ValueError, RecursionError):
        raise InvalidInput("the body must be a JSON object") from None
    if not isinstance(data, dict):
        raise InvalidInput("the body must be a JSON object")
    return data


def _editor(request: Request, who: Viewer, conn: Connection, pipeline: Pipeline | None) -> Response:
    model = who.app.model()
    # A new pipeline starts with an empty mapping; "Use suggested mapping" fills it.
    spec = pipeline.transformation if pipeline else {"kind": "mapping", "mapping": {}}
    data = {
        "connection_id": None if pipeline else conn.id,
        "pipeline_connection": conn.id,
        "filter": pipeline.filter if pipeline else None,
        "properties": authoring.filter_properties(),
        "suggested": definition.suggested_mapping(model),
        "templates": authoring.TEMPLATES,
        "save_url": f"/pipelines/{pipeline.id}"
        if pipeline
        else f"/connections/{conn.id}/pipelines",
        "preview_url": "/editor/preview",
        "validate_url": "/api/v1/validate",
    }
    return render(
        request,
        "editor.html",
        who,
        connection=conn,
        pipeline=pipeline,
        fields=authoring.model_fields(model),
        functions=authoring.mapping_functions(),
        spec=spec,
        templates=authoring.TEMPLATES,
        editor_data=data,
    )


@router.get("/connections/{connection_id}/pipelines/new")
def new_pipeline(request: Request, connection_id: str, who: CurrentViewer) -> Response:
    return _editor(request, who, connections.get_connection(who.app, connection_id), None)


@router.get("/pipelines/{pipeline_id}/manage")
def manage_pipeline(request: Request, pipeline_id: str, who: CurrentViewer) -> Response:
    pipeline = manage.get(who.app, pipeline_id)
    conn = connections.get_connection(who.app, pipeline.connection_id)
    return _editor(request, who, conn, pipeline)


@router.post("/connections/{connection_id}/pipelines")
async def add(request: Request, connection_id: str, who: CurrentViewer) -> Response:
    try:
        doc = await _body(request)
        saved = saving.save_new(
            who.app,
            connection_id,
            str(doc.get("name") or ""),
            doc.get("transformation"),
            description=str(doc.get("description") or ""),
            filter=doc.get("filter"),
            incremental=bool(doc.get("incremental", True)),
        )
    except HeadwaterError as exc:
        return _error(exc)
    return _saved(saved)


@router.post("/pipelines/{pipeline_id}")
async def save(request: Request, pipeline_id: str, who: CurrentViewer) -> Response:
    try:
        doc = await _body(request)
        changes = manage.PipelineChanges(
            name=str(doc.get("name") or ""),
            description=str(doc.get("description") or ""),
            filter=doc.get("filter"),
            clear_filter=doc.get("filter") is None,
            transformation=doc.get("transformation"),
            incremental=bool(doc.get("incremental", True)),
        )
        saved = saving.save_changes(who.app, pipeline_id, changes)
    except HeadwaterError as exc:
        return _error(exc)
    return _saved(saved)


def _saved(saved: saving.Saved) -> JSONResponse:
    pipeline = saved.pipeline
    return JSONResponse(
        {
            "id": pipeline.id,
            "warnings": saved.warnings,
            "location": f"/connections/{pipeline.connection_id}/pipelines",
        }
    )


@router.post("/editor/preview")
async def preview_samples(request: Request, who: CurrentViewer) -> Response:
    try:
        doc = await _body(request)
        result = preview.preview(
            who.app,
            connection_id=str(doc.get("connection_id") or ""),
            transformation=doc.get("transformation"),
            filter=doc.get("filter"),
            limit=5,
        )
    except HeadwaterError as exc:
        problems = exc.problems if isinstance(exc, InvalidInput) else ()
        return render(
            request,
            "preview.html",
            who,
            result=None,
            error=exc.message,
            problems=[str(p) for p in problems],
        )
    return render(request, "preview.html", who, result=result, error=None, problems=[])
