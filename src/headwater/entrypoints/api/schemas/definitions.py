"""Preview and validation documents: what the pipeline editor asks while one types."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from headwater.entrypoints.api.schemas import Body
from headwater.entrypoints.api.schemas.pipelines import FILTER, TRANSFORMATION, Transformation
from headwater.services.pipelines.preview import MOST_SAMPLES


class PreviewRequest(Body):
    pipeline_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=40,
        description="A saved pipeline to preview; `filter` and `transformation`, when "
        "given, replace its own (to try a change before saving it).",
    )
    connection_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=40,
        description="Without a pipeline: the connection to read sample customers from "
        "(with one, absent or the pipeline's own).",
    )
    filter: dict[str, Any] | None = Field(default=None, description=FILTER)
    transformation: Transformation | None = Field(
        default=None, description=TRANSFORMATION + " Absent: the pipeline's, or the suggested."
    )
    limit: int = Field(default=20, ge=1, le=MOST_SAMPLES, description="How many samples to show.")


class Sample(BaseModel):
    source_id: str = Field(description="The Stripe customer's id.")
    input: dict[str, Any] = Field(description="The customer as Stripe returned it.")
    status: str = Field(description="`ok`, `skipped` (the code returned null) or `error`.")
    output: dict[str, Any] | None = Field(
        description="The row a run would write to the warehouse for this customer: every "
        "Customer Model column (objects flattened, `address.city` → `address_city`), in "
        "the model's order, with the values converted to their types as the import "
        "converts them (datetimes and dates in ISO 8601, decimals as text, null where the "
        "transformation gave nothing). Null when the customer is skipped or fails."
    )
    error: str | None = Field(
        description="Why this customer fails, or null: the error a run would record for "
        "it (a value that cannot become its property's type names the property)."
    )
    step: str | None = Field(
        description="Where it fails: `transform`, `validate`, or `write` (a value the "
        "warehouse cannot store, such as text holding NUL on PostgreSQL)."
    )
    returned: dict[str, Any] | None = Field(
        default=None,
        description="What the transformation returned, before conversion (keyed by "
        "Customer Model path); null when it skipped the customer or failed.",
    )


class PreviewPublic(BaseModel):
    scanned: int = Field(description="Customers read to find the samples.")
    filtered_out: int = Field(description="Of those, how many the filter left out.")
    logs: list[str] = Field(description="What the code logged (console.log, print).")
    samples: list[Sample] = Field(description="Input and output side by side, newest first.")


class ValidateRequest(Body):
    filter: Any = Field(default=None, description=FILTER + " Absent: not checked.")
    mapping: Any = Field(
        default=None,
        description="A mapping `{property: expression}` to check against the Customer "
        "Model. Absent: not checked.",
    )
    transformation: Any = Field(default=None, description=TRANSFORMATION + " Absent: not checked.")


class Problem(BaseModel):
    field: str | None = Field(
        description="Where: `filter.conditions[1]`, `mapping.email`, `transformation`."
    )
    message: str = Field(description="What is wrong.")
    line: int | None = Field(description="The line in the expression or code (1-based).")
    column: int | None = Field(description="The column in that line (1-based).")


class ValidatePublic(BaseModel):
    valid: bool = Field(description="True when nothing is wrong.")
    errors: list[Problem] = Field(description="Every problem found, each located.")
