"""Plain record types that flow through a run."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

#: A source record exactly as the source API returns it (JSON values only).
Record = dict[str, Any]


class Step(StrEnum):
    """The step of a run at which a record failed."""

    READ = "read"
    TRANSFORM = "transform"
    VALIDATE = "validate"
    WRITE = "write"


@dataclass(frozen=True, slots=True)
class RecordError:
    """A per-record failure; it never fails the run by itself."""

    source_id: str | None
    step: Step
    message: str


@dataclass(frozen=True, slots=True)
class TransformFailure:
    """Returned in place of an output when a transformation failed for one record."""

    message: str


#: What a transformation returns per input record: the Customer Model values keyed
#: by dotted property path, ``None`` to skip the record, or a failure.
Outcome = dict[str, Any] | None | TransformFailure


@dataclass(slots=True)
class IdentityRow:
    """One row for the warehouse ``identities`` table, already typed and flattened."""

    source_id: str
    source_updated_at: datetime | None
    values: dict[str, Any]  # flattened column name -> typed value


@dataclass(slots=True)
class Counters:
    """Run counters (DESIGN.md §6); `failed` is split by step."""

    read: int = 0
    filtered_out: int = 0
    skipped: int = 0
    written: int = 0
    deleted: int = 0
    created: int = 0
    updated: int = 0
    failed: dict[str, int] = field(default_factory=lambda: {s.value: 0 for s in Step})

    def fail(self, step: Step, n: int = 1) -> None:
        self.failed[step.value] = self.failed.get(step.value, 0) + n

    @property
    def failed_total(self) -> int:
        return sum(self.failed.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "read": self.read,
            "filtered_out": self.filtered_out,
            "skipped": self.skipped,
            "failed": dict(self.failed),
            "failed_total": self.failed_total,
            "written": self.written,
            "created": self.created,
            "updated": self.updated,
            "deleted": self.deleted,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Counters:
        c = cls()
        for name in ("read", "filtered_out", "skipped", "written", "deleted", "created", "updated"):
            setattr(c, name, int(data.get(name, 0)))
        c.failed.update({k: int(v) for k, v in dict(data.get("failed", {})).items()})
        return c
