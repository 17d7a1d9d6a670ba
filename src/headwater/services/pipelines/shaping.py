"""Filter → transform → validate: raw source records become warehouse rows.

A failing record never fails the batch: its error is recorded under its step.  A batch
that breaks a runtime's limit (time, memory, a worker that died) is retried in parts
(`bisection`), so only the record(s) that broke it fail.  A transformation that breaks
its limits on every record of several batches in a row stops the run.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from headwater.adapters.transformations.contract import Transformation
from headwater.kernel.errors import TerminalError
from headwater.kernel.model import CustomerModel
from headwater.kernel.records import IdentityRow, Record, Step
from headwater.services.pipelines.bisection import GIVE_UP_LEVEL, transform_apart
from headwater.services.pipelines.landing import Failed, land
from headwater.services.pipelines.lease import RunStop
from headwater.services.pipelines.recorder import Recorder
from headwater.services.pipelines.writer import RunStopped

#: After this many batches in a row of which no record got through the runtime (every
#: call of the batch, retries in parts included, broke a limit) the run fails fast.
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
    #: The run's stop: a stop requested while a batch is retried in parts ends it there.
    stop: RunStop | None = None
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
        # After a batch that gave nothing, retrying the next one stops as soon as both
        # halves fail: code that breaks its limits on every record costs few calls.
        give_up = 1 if self._failures_in_a_row else GIVE_UP_LEVEL
        apart = transform_apart(self.transformation, kept, give_up_level=give_up, check=self._check)
        self._failures_in_a_row = 0 if apart.passed else self._failures_in_a_row + 1
        to_columns = self.model.to_columns
        for record, at, outcome in zip(kept, kept_at, apart.outcomes, strict=True):
            source_id = record["id"]
            landed = land(outcome, to_columns)
            if landed is None:
                self.recorder.counters.skipped += 1
                out.dropped.append(source_id)
            elif isinstance(landed, Failed):
                self.recorder.error(source_id, landed.step, landed.message)
                out.failed.append(source_id)
            else:
                out.rows.append(IdentityRow(source_id, at, landed))
        if self._failures_in_a_row >= MAX_CONSECUTIVE_BATCH_FAILURES and apart.failure:
            raise TransformationBroken(
                f"the transformation failed {self._failures_in_a_row} batches in a row, "
                f"every record of them (last: {apart.failure.message}); stopping the run"
            ) from apart.failure

    def _check(self) -> None:
        """Before each retry of a batch: a requested stop ends the batch, unrecorded."""
        if self.stop is not None and self.stop.is_set():
            raise RunStopped(self.stop.message)
