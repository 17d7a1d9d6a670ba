"""The time a service loop acts on, passed in rather than read from a global, so that
the scheduler's ticks are the same code whatever clock drives them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    """Tells the current time as an aware UTC datetime; never goes backwards by design
    of the caller (a clock that does only makes pipelines look not yet due)."""

    def now(self) -> datetime: ...


class SystemClock:
    """The machine's wall clock, in UTC."""

    def now(self) -> datetime:
        return datetime.now(UTC)
