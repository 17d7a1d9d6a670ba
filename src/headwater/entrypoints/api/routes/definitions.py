"""``POST /pipelines/preview`` and ``POST /validate``: what the pipeline editor asks
while one types.  Both write nothing."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from headwater.entrypoints.api.deps import CheckedInput, WorkspaceApp
from headwater.entrypoints.api.json_route import StrictJsonRoute
from headwater.entrypoints.api.schemas import plain
from headwater.entrypoints.api.schemas.definitions import (
    PreviewPublic,
    PreviewRequest,
    Problem,
    ValidatePublic,
    ValidateRequest,
)
from headwater.services.pipelines import preview as preview_service
from headwater.services.pipelines.definition import validate_definition

router = APIRouter(route_class=StrictJsonRoute, dependencies=[CheckedInput], tags=["pipelines"])


@router.post("/pipelines/preview", summary="Preview a definition on live customers")
def preview(body: PreviewRequest, app: WorkspaceApp) -> PreviewPublic:
    """Run a saved pipeline's definition, or an unsaved one on a connection, on the
    newest live customers the filter keeps: input and output side by side, per-record
    errors, and what the code logged. An invalid definition is a 422 naming where."""
    transformation = None if body.transformation is None else body.transformation.model_dump()
    result = preview_service.preview(
        app,
        pipeline_id=body.pipeline_id,
        connection_id=body.connection_id,
        transformation=transformation,
        filter=body.filter,
        limit=body.limit,
    )
    return PreviewPublic.model_validate(plain(result.as_dict()))


@router.post("/validate", summary="Check a filter, mapping or transformation")
def validate(body: ValidateRequest, app: WorkspaceApp) -> ValidatePublic:
    """Every problem of each part given, each located (`filter.conditions[1]`,
    `mapping.email` with the line and column in its expression). Always 200: the
    answer is the list of problems, empty when all is well."""
    given: dict[str, Any] = {k: getattr(body, k) for k in body.model_fields_set}
    problems = validate_definition(app.model(), **given)
    errors = [
        Problem(field=p.location, message=p.message, line=p.line, column=p.column) for p in problems
    ]
    return ValidatePublic(valid=not errors, errors=errors)
