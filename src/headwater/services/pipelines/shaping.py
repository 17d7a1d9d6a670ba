"""Filter → transform → validate: raw source records become warehouse rows.

A failing record never fails the batch: its error is recorded under its step.  Only a
transformation that fails whole batches several times in a row stops the run.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from headwater.adapters.transformations.contract import BatchFailed, Transformation
from headwater.kernel.errors import TerminalError
from headwater.kernel.model import ConversionError, CustomerModel
from headwater.kernel.records import IdentityRow, Record, Step, TransformFailure
from headwater.services.pipelines.recorder import Recorder

#: After this many consecutive whole-batch failures the run fails fast.
MAX_CONSECUTIVE_BATCH_FAILURES = 3


def created_max(records: Sequence[Record], current: int) -> int:
    """The newest ``created`` of `records`, or `current` if that is newer."""
    for r in records:
        created = r.get("created")
        if isinstance(created, int) and created > current:
            current = created
    return current


class TransformationBroken(TerminalError):
    """The transformation failed whole batches repeatedly; the run stops."""


@dataclass
class Shaped:
    rows: list[IdentityRow] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)  # filtered out or skipped
    failed: list[str] = field(default_factory=list)


@dataclass
class Shaper:
    keep: Callable[[Record], bool]
    transformation: Transformation
    model: CustomerModel
    recorder: Recorder
    _failures_in_a_row: int = 0
    _batches: int = 0

    def shape(self, records: Sequence[Record], updated_at: Sequence[datetime | None]) -> Shaped:
        out = Shaped()
        counters = self.recorder.counters
        kept: list[Record] = []
        kept_at: list[datetime | None] = []
        for record, at in zip(records, updated_at, strict=True):
            source_id = record.get("id") if isinstance(record, dict) else None
            if not isinstance(source_id, str):
                self.recorder.error(None, Step.READ, f"record without a string id: {record!r:.80}")
                continue
            try:
                keep = self.keep(record)
            except Exception as exc:  # a filter must never fail the run
                self.recorder.error(source_id, Step.TRANSFORM, f"filter failed: {exc}")
                out.failed.append(source_id)
                continue
            if keep:
                kept.append(record)
                kept_at.append(at)
            else:
                counters.filtered_out += 1
                out.dropped.append(source_id)
        if kept:
            self._transform(kept, kept_at, out)
        return out

    def _transform(self, kept: list[Record], kept_at: list[datetime | None], out: Shaped) -> None:
        self._batches += 1
        try:
            outcomes = self.transformation.transform(kept)
        except BatchFailed as exc:
            self._failures_in_a_row += 1
            for record in kept:
                self.recorder.error(record["id"], Step.TRANSFORM, exc.message)
                out.failed.append(record["id"])
            if self._failures_in_a_row >= MAX_CONSECUTIVE_BATCH_FAILURES:
                raise TransformationBroken(
                    f"the transformation failed {self._failures_in_a_row} batches in a row "
                    f"(last: {exc.message}); stopping the run"
                ) from exc
            return
        self._failures_in_a_row = 0
        to_columns = self.model.to_columns
        for record, at, outcome in zip(kept, kept_at, outcomes, strict=True):
            source_id = record["id"]
            if outcome is None:
                self.recorder.counters.skipped += 1
                out.dropped.append(source_id)
            elif isinstance(outcome, TransformFailure):
                self.recorder.error(source_id, Step.TRANSFORM, outcome.message)
                out.failed.append(source_id)
            else:
                try:
                    values = to_columns(outcome)
                except ConversionError as exc:
                    self.recorder.error(source_id, Step.VALIDATE, str(exc))
                    out.failed.append(source_id)
                    continue
                out.rows.append(IdentityRow(source_id, at, values))
