"""Public representations of pipelines, shared by the CLI, the API and the console."""

from __future__ import annotations

from typing import Any

from headwater.adapters.store import runs
from headwater.kernel.entities import Pipeline
from headwater.services.app import App
from headwater.services.connections import get_connection
from headwater.services.pipelines.definition import filter_text
from headwater.services.pipelines.engine import EVENTS_PERMISSION_WARNING


def warnings(app: App, pipeline: Pipeline) -> list[str]:
    out = []
    if pipeline.incremental and not get_connection(app, pipeline.connection_id).events_read:
        out.append(EVENTS_PERMISSION_WARNING)
    if not pipeline.enabled:
        out.append("the pipeline is disabled: it will not run, scheduled or not")
    return out


def pipeline_document(app: App, pipeline: Pipeline) -> dict[str, Any]:
    last = runs.list_runs(app.engine, [pipeline.id], limit=1)
    return {
        "id": pipeline.id,
        "name": pipeline.name,
        "description": pipeline.description,
        "connection_id": pipeline.connection_id,
        "enabled": pipeline.enabled,
        "schedule": pipeline.schedule,
        "next_run_at": pipeline.next_run_at,
        "incremental": pipeline.incremental,
        "filter": pipeline.filter,
        "filter_text": filter_text(pipeline.filter) if pipeline.filter else None,
        "transformation": pipeline.transformation,
        "next_run_kind": "full"
        if pipeline.needs_full or not pipeline.incremental
        else "incremental",
        "state": pipeline.state.as_dict(),
        "warnings": warnings(app, pipeline),
        "last_run": {"id": last[0].id, "status": last[0].status, "kind": last[0].kind}
        if last
        else None,
        "created_at": pipeline.created_at,
        "updated_at": pipeline.updated_at,
    }
