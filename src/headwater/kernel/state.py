"""Where a pipeline's imports stand: a typed value, kept in the warehouse beside its rows.

DESIGN.md §6 rule 5: the position belongs to the warehouse that holds the rows it covers,
so it is saved in the same warehouse transaction as those rows (`WriteBatch.state`, the
purge) and read back when a run claims the pipeline.  The metadata store keeps a copy
for display only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson


@dataclass(frozen=True)
class PipelineState:
    """A pipeline's saved position; change it with `dataclasses.replace`."""

    #: The connector's event position after the last committed change (opaque to us);
    #: None until a full run of an incremental pipeline recorded one (rule 2).
    position: dict[str, Any] | None = None
    #: The newest `created` (unix seconds) read so far, for reading by created date
    #: when the key cannot read events.
    max_created: int = 0
    #: The run that last completed a full import into this warehouse.
    last_full_run: str | None = None

    def as_dict(self) -> dict[str, Any]:
        # What `dataclasses.asdict` gives, without its generic deep copy (pages of
        # pipelines show every state): the position is copied through JSON, which it is.
        position = None if self.position is None else orjson.loads(orjson.dumps(self.position))
        return {
            "position": position,
            "max_created": self.max_created,
            "last_full_run": self.last_full_run,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> PipelineState:
        """Read a stored state; unknown keys (from a newer version) are ignored."""
        data = data or {}
        position = data.get("position")
        return cls(
            position=dict(position) if isinstance(position, dict) else None,
            max_created=int(data.get("max_created") or 0),
            last_full_run=data.get("last_full_run") or None,
        )

    def to_json(self) -> str:
        return orjson.dumps(self.as_dict()).decode()

    @classmethod
    def from_json(cls, text: str) -> PipelineState:
        data = orjson.loads(text)
        return cls.from_dict(data if isinstance(data, dict) else None)
