"""Pipeline documents (`services.pipelines.documents.pipeline_document`)."""

from __future__ import annotations

from typing import Any, Literal, get_args

from pydantic import BaseModel, Field

from headwater.entrypoints.api.schemas import Body, Patch
from headwater.kernel.entities import SCHEDULES

Schedule = Literal["off", "5m", "15m", "30m", "1h", "2h", "3h", "6h", "8h", "12h", "24h"]
assert get_args(Schedule) == SCHEDULES, "the API's schedules are the product's"

FILTER = (
    "Which customers to import, evaluated on the Stripe customer before the "
    'transformation: `{"logical": "and"|"or", "conditions": [...]}`, each condition '
    '`{"property": "address.country", "operator": "is", "values": ["IT"]}` or a nested '
    "filter. Null: every customer."
)
TRANSFORMATION = (
    'Exactly one kind: `{"kind": "mapping", "mapping": {property: expression}}`, '
    '`{"kind": "javascript", "source": "function transform(customer) {…}"}` or '
    '`{"kind": "python", "source": "def transform(customer): …"}`. Checked against the '
    "Customer Model when saved."
)


class MappingTransformation(Body):
    kind: Literal["mapping"] = Field(description="A mapping of expressions.")
    mapping: dict[str, str] = Field(
        description="Customer Model property path → expression over the Stripe customer "
        '(`{"email": "lower(email)"}`).'
    )


class CodeTransformation(Body):
    kind: Literal["javascript", "python"] = Field(description="The language of `source`.")
    source: str = Field(
        max_length=1_000_000,
        description="Code defining `transform(customer)`, returning an object keyed by "
        "Customer Model paths, or null to skip the customer.",
    )


Transformation = MappingTransformation | CodeTransformation


class PipelineCreate(Body):
    connection_id: str = Field(min_length=1, max_length=40, description="The connection read.")
    name: str = Field(min_length=1, max_length=200, description="The pipeline's name.")
    description: str = Field(default="", max_length=10_000, description="What it is for.")
    filter: dict[str, Any] | None = Field(default=None, description=FILTER)
    transformation: Transformation | None = Field(
        default=None, description=TRANSFORMATION + " Absent: the suggested mapping."
    )
    incremental: bool | None = Field(
        default=None,
        description="Whether runs import only what changed since the last one (absent: "
        "yes); a pipeline's first run, and the next after a change of definition, is full.",
    )
    schedule: Schedule | None = Field(
        default=None, description="How often it runs by itself (absent: `off`)."
    )
    enabled: bool = Field(
        default=True, description="A disabled pipeline never runs, scheduled or not."
    )


class PipelineUpdate(Patch):
    NULLABLE = frozenset({"filter"})

    name: str | None = Field(default=None, min_length=1, max_length=200, description="New name.")
    description: str | None = Field(default=None, max_length=10_000, description="New text.")
    filter: dict[str, Any] | None = Field(
        default=None, description=FILTER + " Absent keeps it; null removes it."
    )
    transformation: Transformation | None = Field(
        default=None, description=TRANSFORMATION + " Absent keeps it."
    )
    incremental: bool | None = Field(default=None, description="Absent keeps it.")
    schedule: Schedule | None = Field(default=None, description="Absent keeps it.")
    enabled: bool | None = Field(default=None, description="Absent keeps it.")


class ScheduleSet(Body):
    schedule: Schedule = Field(description="How often it runs by itself; `off`: only when asked.")


class RunRequest(Body):
    full: bool = Field(
        default=False, description="Force a full run (re-read everything, purge the rest)."
    )


class LastRun(BaseModel):
    id: str = Field(description="The run's id (`run_…`).")
    status: str = Field(description="queued, running, succeeded, failed or cancelled.")
    kind: str = Field(description="`full` or `incremental`.")


class PipelinePublic(BaseModel):
    id: str = Field(description="The pipeline's id (`pl_…`).")
    name: str = Field(description="Its name.")
    description: str = Field(description="What it is for.")
    connection_id: str = Field(description="The connection it reads.")
    enabled: bool = Field(description="Whether it may run.")
    schedule: str = Field(description="`off`, `5m` … `24h`.")
    next_run_at: str | None = Field(
        description="When the schedule runs it next (ISO 8601); null when off or disabled."
    )
    incremental: bool = Field(description="Whether its runs import only changes.")
    filter: dict[str, Any] | None = Field(description=FILTER)
    filter_text: str | None = Field(description="The filter as readable text; null: none.")
    transformation: dict[str, Any] = Field(description=TRANSFORMATION)
    next_run_kind: str = Field(description="What its next run will be: `full` or `incremental`.")
    state: dict[str, Any] = Field(description="Its saved position (for display).")
    warnings: list[str] = Field(description="What its reader must not miss.")
    last_run: LastRun | None = Field(description="Its newest run, or null.")
    created_at: str = Field(description="When it was created (ISO 8601).")
    updated_at: str = Field(description="When it last changed (ISO 8601).")


class PipelineSaved(PipelinePublic):
    save_warnings: list[str] = Field(
        description="What trying the saved definition on live sample customers found "
        "(most of them fail, the source unreachable); saving never depends on it."
    )


class PipelineList(BaseModel):
    data: list[PipelinePublic] = Field(description="Pipelines, newest first.")
    has_more: bool = Field(description="Whether more pipelines follow this page.")


class PipelineDeleted(BaseModel):
    id: str = Field(description="The deleted pipeline's id.")
    deleted: Literal[True] = Field(description="Always true.")
    identities_removed: int = Field(description="Imported customers removed from the warehouse.")
