"""A profile's values: per property, the latest non-null value among its identities.

"Latest" is by ``_source_updated_at`` (the source's own change time, not the import
time).  Ties go to the pipeline earlier in the pipeline order, then to the smaller
identity key, so the result never depends on import order.  An identity without a
``_source_updated_at`` counts as older than every dated one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from headwater.services.identity.records import Identity


def pipeline_ranks(order: Sequence[str]) -> dict[str, int]:
    return {pipeline_id: i for i, pipeline_id in enumerate(order)}


def by_priority(members: Sequence[Identity], ranks: Mapping[str, int]) -> list[Identity]:
    """`members` ordered from the one whose values win to the one whose values lose."""
    unranked = len(ranks)

    def newest_first(identity: Identity) -> tuple[bool, float, int, str, str]:
        at: datetime | None = identity.source_updated_at
        rank = ranks.get(identity.key.pipeline_id, unranked)
        stamp = -at.timestamp() if at is not None else 0.0
        return (at is None, stamp, rank, *identity.key)

    return sorted(members, key=newest_first)


def profile_values(members: Sequence[Identity], ranks: Mapping[str, int]) -> dict[str, Any]:
    """Per column, the non-null value of the winning identity (``None`` if none has one)."""
    if len(members) == 1:
        return dict(members[0].values)
    out: dict[str, Any] = {}
    for identity in by_priority(members, ranks):
        for column, value in identity.values.items():
            if out.get(column) is None:
                out[column] = value
    return out
