"""When a scheduled pipeline runs next (DESIGN.md §7).  Pure functions, no I/O.

A schedule of period P (say 1 h) runs a pipeline at the slots ``epoch + offset + k*P``:
the slots are aligned to the Unix epoch (so a 24 h pipeline runs at the same time of
day) and shifted by an offset in ``[0, P)`` derived from the pipeline's id.  The offset
is a hash of the id, not a random draw: every process, on every machine, computes the
same slots for a pipeline, and a thousand hourly pipelines spread over the hour instead
of starting in the same second.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

#: Each schedule's period; ``off`` has none.
PERIODS: dict[str, timedelta] = {
    "5m": timedelta(minutes=5),
    "15m": timedelta(minutes=15),
    "30m": timedelta(minutes=30),
    "1h": timedelta(hours=1),
    "2h": timedelta(hours=2),
    "3h": timedelta(hours=3),
    "6h": timedelta(hours=6),
    "8h": timedelta(hours=8),
    "12h": timedelta(hours=12),
    "24h": timedelta(hours=24),
}

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def schedule_offset(pipeline_id: str, period: timedelta) -> timedelta:
    """The pipeline's stable shift within `period`, in whole seconds.

    SHA-256 rather than `hash()`: Python salts `hash()` per process, and the offset must
    be the same in every worker.
    """
    digest = hashlib.sha256(pipeline_id.encode()).digest()
    seconds = int(period.total_seconds())
    return timedelta(seconds=int.from_bytes(digest[:8], "big") % seconds)


def next_slot(schedule: str, pipeline_id: str, after: datetime) -> datetime | None:
    """The pipeline's first slot strictly after `after` (an aware datetime), or None
    when `schedule` is ``off``.

    After downtime this is the next *future* slot: the slots missed meanwhile are not
    returned one by one, which is what makes a catch-up one run, not a burst.
    """
    period = PERIODS.get(schedule)
    if period is None:
        return None
    start = _EPOCH + schedule_offset(pipeline_id, period)
    elapsed = after - start
    slots_passed = elapsed // period  # floor division: negative before the first slot
    return start + (slots_passed + 1) * period
