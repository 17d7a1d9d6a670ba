"""Run documents (`services.pipelines.documents.run_document`)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class RecordError(BaseModel):
    source_id: str | None = Field(description="The Stripe customer (`cus_…`), when known.")
    step: str = Field(description="Where it failed: read, transform, validate or write.")
    message: str = Field(description="What went wrong.")


class RunPublic(BaseModel):
    id: str = Field(description="The run's id (`run_…`).")
    pipeline_id: str = Field(description="The pipeline it runs.")
    kind: str = Field(description="`full` or `incremental`.")
    status: str = Field(description="queued, running, succeeded, failed or cancelled.")
    outcome: str = Field(
        description="The status, with `succeeded_with_errors` for a run that succeeded "
        "while some records failed."
    )
    message: str | None = Field(description="Why it failed or ended, or null.")
    warnings: list[str] = Field(description="What its reader must not miss.")
    cancel_requested: bool = Field(description="Whether cancelling was asked while it ran.")
    attempt: int = Field(description="1 for a run as asked; 2, 3, … for automatic retries.")
    retry_of: str | None = Field(
        description="The run this one retries after a transient failure, or null."
    )
    not_before: str | None = Field(
        description="A retry waits in the queue until then (ISO 8601), or null."
    )
    counters: dict[str, Any] = Field(
        description="Live counters: read, filtered_out, skipped, failed (by step), "
        "failed_total, written (created, updated), deleted."
    )
    summary: dict[str, Any] = Field(description="How it went, once it ended.")
    created_at: str = Field(description="When it was queued (ISO 8601).")
    started_at: str | None = Field(description="When a worker started it, or null.")
    finished_at: str | None = Field(description="When it ended, or null while live.")
    lease_expires_at: str | None = Field(description="Until when its worker holds it.")
    host: str | None = Field(description="The machine running it, or null.")
    errors: list[RecordError] = Field(description="Its first per-record errors.")


class RunList(BaseModel):
    data: list[RunPublic] = Field(description="Runs, newest first.")
    has_more: bool = Field(description="Whether more runs follow this page.")


class StoredError(RecordError):
    id: str = Field(description="The error's id, for `starting_after`.")


class ErrorList(BaseModel):
    data: list[StoredError] = Field(
        description="The run's per-record errors in the order they happened (the first "
        "1,000 are kept; counters count them all)."
    )
    has_more: bool = Field(description="Whether more errors follow this page.")
