"""The transformation interface: mapping, JavaScript and Python all implement it.

A transformation is compiled once per run from its saved source and then called
with batches of raw Stripe records.  For each input record it returns exactly one
`Outcome`, in the same order:

- a dict keyed by Customer Model property path (``"address.city"``; an ``object``
  property may also be given as a nested dict) with JSON-ish values; the run engine
  converts them to the model's types (`CustomerModel.to_columns`);
- ``None`` to skip the record (counted as skipped);
- `TransformFailure` when the code raised, returned a wrong type, etc. for that record.

When a whole batch fails (time limit, memory limit, worker crash) `transform` raises
`BatchFailed` and must be ready to take the next batch (a new worker or context).  The
engine retries such a batch in parts to find the record(s) that broke the limit
(`services/pipelines/bisection.py`), so a call may get any sub-sequence of a batch, and
records of a failed call may be sent again.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from headwater.kernel.errors import HeadwaterError
from headwater.kernel.records import Outcome, Record


class BatchFailed(HeadwaterError):
    """A whole batch failed: `reason` is what happened (``time limit of 5 s exceeded``),
    `runtime` which runtime (``JavaScript transformation``); the message says both and
    which batch.  `records_at_fault` is False when the records played no part (the
    runtime could not start): retrying them in parts would fail the same way."""

    def __init__(
        self,
        reason: str,
        *,
        runtime: str | None = None,
        batch: int | None = None,
        records_at_fault: bool = True,
    ) -> None:
        where = f"{runtime}, batch {batch}" if batch is not None else runtime
        super().__init__(f"{where}: {reason}" if where else reason)
        self.reason = reason
        self.runtime = runtime or "the transformation"
        self.records_at_fault = records_at_fault


class Transformation(Protocol):
    def transform(self, records: Sequence[Record]) -> list[Outcome]: ...

    def logs(self) -> list[str]:
        """Captured ``console.log`` / ``print`` output since the last call (capped)."""

    def close(self) -> None: ...


class CappedLog:
    """Captured user output (``console.log`` / ``print``): at most `cap` lines are kept
    between two `take` calls; the rest are counted and reported as one line."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self._lines: list[str] = []
        self._dropped = 0

    def add(self, lines: list[str], dropped: int = 0) -> None:
        room = max(self.cap - len(self._lines), 0)
        self._lines.extend(lines[:room])
        self._dropped += dropped + max(len(lines) - room, 0)

    def take(self) -> list[str]:
        lines, self._lines = self._lines, []
        if self._dropped:
            lines.append(f"… {self._dropped} more lines not shown")
            self._dropped = 0
        return lines
