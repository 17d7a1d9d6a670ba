"""Public representations (pipelines, runs), shared by the CLI, the API and the console."""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from typing import Any

from headwater.adapters.store import objects, run_queries
from headwater.kernel.entities import Pipeline, Run, RunStatus
from headwater.services.app import App
from headwater.services.connections import get_connection
from headwater.services.pipelines.definition import filter_text
from headwater.services.pipelines.engine import EVENTS_PERMISSION_WARNING, next_run_kind


def warnings(app: App, pipeline: Pipeline) -> list[str]:
    events_read = get_connection(app, pipeline.connection_id).events_read
    return _warnings(pipeline, events_read)


def _warnings(pipeline: Pipeline, events_read: bool) -> list[str]:
    out = []
    if pipeline.incremental and not events_read:
        out.append(EVENTS_PERMISSION_WARNING)
    if not pipeline.enabled:
        out.append("the pipeline is disabled: it will not run, scheduled or not")
    return out


def pipeline_document(app: App, pipeline: Pipeline) -> dict[str, Any]:
    return pipeline_documents(app, [pipeline])[0]


def pipeline_documents(app: App, pipelines: Sequence[Pipeline]) -> list[dict[str, Any]]:
    """The documents of `pipelines` (of this workspace), with two store queries in all:
    their connections' permissions and their last runs."""
    events_read = objects.events_read(app.engine, app.workspace_id)
    last_runs = run_queries.latest_runs(app.engine, [p.id for p in pipelines])
    return [_document(p, events_read[p.connection_id], last_runs.get(p.id)) for p in pipelines]


def _document(
    pipeline: Pipeline, events_read: bool, last: run_queries.RunHead | None
) -> dict[str, Any]:
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
        "next_run_kind": next_run_kind(pipeline).value,
        "state": pipeline.state.as_dict(),
        "warnings": _warnings(pipeline, events_read),
        "last_run": {"id": last.id, "status": last.status, "kind": last.kind} if last else None,
        "created_at": pipeline.created_at,
        "updated_at": pipeline.updated_at,
    }


class RunOutcome(StrEnum):
    """How a run ended, as shown (DESIGN.md §6): a run that succeeded while some records
    failed is told apart, shown as a warning."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    SUCCEEDED_WITH_ERRORS = "succeeded_with_errors"
    FAILED = "failed"
    CANCELLED = "cancelled"


def run_outcome(run: Run) -> RunOutcome:
    if run.status == RunStatus.SUCCEEDED and run.record_errors:
        return RunOutcome.SUCCEEDED_WITH_ERRORS
    return RunOutcome(run.status.value)


def run_warnings(run: Run) -> list[str]:
    """What a reader of the run must not miss: per-record failures, then the run's own."""
    out = []
    if run.status == RunStatus.SUCCEEDED and run.record_errors:
        failed = run.counters.get("failed", {})
        steps = ", ".join(f"{step} {n:,}" for step, n in failed.items() if n)
        out.append(
            f"{run.record_errors:,} of {run.counters.get('read', 0):,} records failed "
            f"({steps}) and were not imported; the first errors are listed"
        )
    out.extend(str(w) for w in run.summary.get("warnings", []))
    resolution = run.summary.get("profiles")
    if isinstance(resolution, dict) and resolution.get("error"):
        out.append(
            f"profiles were not updated after this run ({resolution['error']}); its "
            "identities stay pending for the next run or `headwater profiles rebuild`"
        )
    return out


def run_document(run: Run) -> dict[str, Any]:
    return {
        "id": run.id,
        "pipeline_id": run.pipeline_id,
        "kind": run.kind,
        "status": run.status.value,
        "outcome": run_outcome(run).value,
        "message": run.message,
        "warnings": run_warnings(run),
        "cancel_requested": run.cancel_requested,
        "attempt": run.attempt,
        "retry_of": run.retry_of,
        "not_before": run.not_before,
        "counters": run.counters,
        "summary": run.summary,
        "created_at": run.created_at,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "lease_expires_at": run.lease_expires_at,
        "host": run.host,
        "errors": run.errors,
    }
