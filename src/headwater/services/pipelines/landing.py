"""What the import makes of one transformation outcome: a row, a skip or a failure.

Runs (`shaping`) and previews (`preview`) both take it from here, so a preview shows
exactly the row a run writes and the error it records.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from headwater.kernel.model import ConversionError
from headwater.kernel.records import Outcome, Step, TransformFailure


@dataclass(frozen=True, slots=True)
class Failed:
    """A customer that does not land, and the step at which it failed."""

    step: Step
    message: str


def land(
    outcome: Outcome, to_columns: Callable[[Mapping[str, Any]], dict[str, Any]]
) -> dict[str, Any] | Failed | None:
    """The row's values by column, converted to the Customer Model's types by
    `to_columns` (`CustomerModel.to_columns`); None for a skipped customer (the code
    returned null); or its per-record failure: at step transform when the code failed
    on it, validate when a value cannot become its property's type (the message names
    the property)."""
    if outcome is None:
        return None
    if isinstance(outcome, TransformFailure):
        return Failed(Step.TRANSFORM, outcome.message)
    try:
        return to_columns(outcome)
    except ConversionError as exc:
        return Failed(Step.VALIDATE, str(exc))
