"""Pipelines: create, update, enable/disable, delete.  Definitions are checked on save.

The rules every entry point shares live here: the default transformation (the suggested
mapping), the default schedule and mode, and "at most one kind of transformation".
Entry points save through `services.pipelines.saving`, which also tries the definition
on live sample customers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from headwater.adapters.store import objects, schedules
from headwater.kernel.entities import SCHEDULES, Pipeline, new_id, utcnow
from headwater.kernel.errors import InvalidInput
from headwater.kernel.model import CustomerModel
from headwater.kernel.schedules import next_slot
from headwater.kernel.state import PipelineState
from headwater.services import profiles
from headwater.services.app import App
from headwater.services.auth.names import checked_name
from headwater.services.connections import get_connection
from headwater.services.pipelines.definition import (
    check_filter,
    check_transformation,
    suggested_mapping,
)
from headwater.services.text import known_id, refuse_nul

#: A new pipeline runs only when asked, and incrementally once it has a position.
DEFAULT_SCHEDULE = "off"
DEFAULT_INCREMENTAL = True

#: What an update writes when neither the schedule nor `enabled` changed: everything
#: but `next_run_at`, which the scheduler may be advancing meanwhile (writing back the
#: value read here would undo its compare-and-swap and run the slot twice).
#: What `update` may change (besides `updated_at` and `next_run_at`).
_EDITABLE = (
    "name",
    "description",
    "schedule",
    "enabled",
    "incremental",
    "filter",
    "transformation",
    "needs_full",
)


def next_run_at(pipeline: Pipeline, now: datetime) -> datetime | None:
    """The pipeline's first schedule slot after `now`; None when disabled or `off`
    (DESIGN.md §7: a disabled pipeline never runs)."""
    if not pipeline.enabled:
        return None
    return next_slot(pipeline.schedule, pipeline.id, now)


def default_transformation(model: CustomerModel) -> dict[str, Any]:
    """The transformation of a pipeline created without one: the suggested mapping."""
    return {"kind": "mapping", "mapping": suggested_mapping(model)}


def choose_transformation(
    model: CustomerModel,
    *,
    mapping: object = None,
    suggested: bool = False,
    javascript: str | None = None,
    python: str | None = None,
) -> dict[str, Any] | None:
    """The transformation given as at most one of: a mapping, the suggested mapping,
    JavaScript source, Python source; ``None`` when none is given (keep or default)."""
    given = {
        "mapping": mapping is not None,
        "suggested mapping": suggested,
        "javascript": javascript is not None,
        "python": python is not None,
    }
    chosen = [name for name, present in given.items() if present]
    if len(chosen) > 1:
        raise InvalidInput(
            "give at most one of mapping, suggested mapping, javascript, python; "
            f"got {' and '.join(chosen)}",
            "transformation",
        )
    if mapping is not None:
        return {"kind": "mapping", "mapping": mapping}
    if javascript is not None:
        return {"kind": "javascript", "source": javascript}
    if python is not None:
        return {"kind": "python", "source": python}
    return default_transformation(model) if suggested else None


@dataclass
class PipelineChanges:
    """Fields to change; ``None`` leaves a field as it is (use `clear_filter` to remove)."""

    name: str | None = None
    description: str | None = None
    schedule: str | None = None
    incremental: bool | None = None
    enabled: bool | None = None
    filter: dict[str, Any] | None = None
    clear_filter: bool = False
    transformation: dict[str, Any] | None = None


def _check_schedule(schedule: str) -> str:
    if schedule not in SCHEDULES:
        raise InvalidInput(f"must be one of {', '.join(SCHEDULES)}; got {schedule!r}", "schedule")
    return schedule


def _check_name(name: str) -> str:
    """The same rule everywhere (the API's schema had it alone: the CLI and the console
    took 100,000 characters, or an escape sequence)."""
    return checked_name(name, "pipeline")


#: Longest description of a pipeline.
MAX_DESCRIPTION = 10_000


def _check_description(description: str) -> str:
    refuse_nul(description, "description")
    if len(description) > MAX_DESCRIPTION:
        raise InvalidInput(
            f"a description is at most {MAX_DESCRIPTION:,} characters (got {len(description):,})",
            "description",
        )
    return description


def create(
    app: App,
    connection_id: str,
    name: str,
    transformation: dict[str, Any] | None = None,
    *,
    description: str = "",
    filter: dict[str, Any] | None = None,
    schedule: str | None = None,
    incremental: bool | None = None,
    enabled: bool = True,
) -> Pipeline:
    """Validate and store a new pipeline; ``None`` takes the default (see the module).

    Entry points call `saving.save_new`, which also tries it on sample customers.
    """
    connection = get_connection(app, connection_id)
    model = app.model()
    now = utcnow()
    pipeline = Pipeline(
        id=new_id("pl"),
        workspace_id=connection.workspace_id,
        connection_id=connection.id,
        name=_check_name(name),
        description=_check_description(description),
        enabled=enabled,
        schedule=_check_schedule(DEFAULT_SCHEDULE if schedule is None else schedule),
        incremental=DEFAULT_INCREMENTAL if incremental is None else incremental,
        filter=check_filter(filter),
        transformation=check_transformation(
            default_transformation(model) if transformation is None else transformation, model
        ),
        state=PipelineState(),
        needs_full=True,
        created_at=now,
        updated_at=now,
    )
    pipeline.next_run_at = next_run_at(pipeline, now)
    return objects.add(app.engine, pipeline)


def get(app: App, pipeline_id: str) -> Pipeline:
    pipeline_id = known_id(pipeline_id, "pipeline")
    return objects.get(app.engine, Pipeline, pipeline_id, app.workspace_id)


def list_pipelines(app: App, connection_id: str | None = None) -> list[Pipeline]:
    """The workspace's pipelines, or those of one of its connections (`NotFound` for a
    connection that is not the workspace's, an empty id included: a filter naming
    nothing is never taken as no filter)."""
    where: dict[str, Any] = {"workspace_id": app.workspace_id}
    if connection_id is not None:
        where["connection_id"] = get_connection(app, connection_id).id
    return objects.find(app.engine, Pipeline, **where)


def page_pipelines(
    app: App, connection_id: str | None = None, limit: int = 20, starting_after: str | None = None
) -> tuple[list[Pipeline], bool]:
    """The workspace's pipelines (of one connection, if given), newest first, a page of
    `limit` after the pipeline `starting_after`; and whether more follow."""
    where: dict[str, Any] = {"workspace_id": app.workspace_id}
    if connection_id is not None:
        where["connection_id"] = get_connection(app, connection_id).id
    if starting_after is not None:
        refuse_nul(starting_after, "starting_after")
    return objects.find_page(app.engine, Pipeline, limit, starting_after, **where)


def update(app: App, pipeline_id: str, changes: PipelineChanges) -> Pipeline:
    """Apply `changes`; entry points call `saving.save_changes` (it tries the result).

    A changed schedule or `enabled` applies at once: `next_run_at` is recomputed from
    now.  Disabling drops the pipeline's queued runs; a running one finishes.
    """
    if changes.clear_filter and changes.filter is not None:
        # Either one would silently drop the other (the CLI takes both options).
        raise InvalidInput("give a new filter or clear the filter, not both", "filter")
    pipeline = get(app, pipeline_id)
    timing_before = (pipeline.schedule, pipeline.enabled)
    before = {name: getattr(pipeline, name) for name in _EDITABLE}
    if changes.name is not None:
        pipeline.name = _check_name(changes.name)
    if changes.description is not None:
        pipeline.description = _check_description(changes.description)
    if changes.schedule is not None:
        pipeline.schedule = _check_schedule(changes.schedule)
    if changes.enabled is not None:
        pipeline.enabled = changes.enabled
    if changes.incremental is not None:
        pipeline.incremental = changes.incremental
    definition_changed = False
    if changes.clear_filter or changes.filter is not None:
        new_filter = None if changes.clear_filter else check_filter(changes.filter)
        definition_changed |= new_filter != pipeline.filter
        pipeline.filter = new_filter
    if changes.transformation is not None:
        spec = check_transformation(changes.transformation, app.model())
        definition_changed |= spec != pipeline.transformation
        pipeline.transformation = spec
    if definition_changed:
        # State rule 4: a changed filter or transformation makes the next run a full run.
        pipeline.needs_full = True
    now = utcnow()
    pipeline.updated_at = now
    # Only what this change changed is written: a rename saved at the same moment as a
    # disable wrote `enabled` back as it had read it (with no next run: never due).  A
    # changed definition always writes `needs_full` (a full run ending meanwhile clears
    # it for the definition it read).
    only = [n for n in _EDITABLE if getattr(pipeline, n) != before[n]]
    if definition_changed and "needs_full" not in only:
        only.append("needs_full")
    only.append("updated_at")
    if (pipeline.schedule, pipeline.enabled) == timing_before:
        return objects.save(app.engine, pipeline, only=only)
    pipeline.next_run_at = next_run_at(pipeline, now)
    saved = objects.save(app.engine, pipeline, only=[*only, "next_run_at"])
    if not pipeline.enabled:
        schedules.drop_queued_runs(
            app.engine, pipeline.id, now, "dropped: the pipeline was disabled before it started"
        )
    return saved


def delete(app: App, pipeline_id: str) -> int:
    """Delete the pipeline, its runs and its identities; returns identities removed.

    Its queued runs end `cancelled` first, and it is disabled, in one transaction that
    a running run refuses (`Conflict`, nothing changed); so no worker starts a run of a
    pipeline being deleted.  If a later step fails (the warehouse is unreachable), the
    pipeline stays, disabled: deleting it again finishes the job."""
    pipeline = get(app, pipeline_id)
    reason = f"cancelled: pipeline {pipeline.id} was deleted before the run started"
    schedules.retire(app.engine, pipeline.id, utcnow(), reason)
    warehouse = app.warehouse()
    try:
        removed = warehouse.delete_pipeline(pipeline.id)
        objects.remove(app.engine, Pipeline, pipeline.id)
        # Its identities left their profiles (a failure leaves them pending).
        profiles.resolve_after_run(app, warehouse, new_id("delete"))
    finally:
        warehouse.close()
    return removed
