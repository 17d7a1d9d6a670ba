"""When to retry a Stripe request and how long to wait: pure decisions, no I/O."""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from headwater.adapters.connectors.stripe.declaration import STRIPE, Action, Declaration

#: Never sleep longer than this for a single `Retry-After`, whatever the server says.
MAX_RETRY_AFTER = 60.0


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter, bounded by `max_retries`."""

    max_retries: int = 6
    base: float = 0.5
    cap: float = 20.0
    declaration: Declaration = STRIPE

    def action(self, status: int, headers: Mapping[str, str]) -> Action:
        """The action for a response; `Stripe-Should-Retry` overrides the status table."""
        action = self.declaration.action_for(status)
        hint = headers.get("stripe-should-retry", "").strip().lower()
        if action is Action.RETRY and hint == "false":
            return Action.FAIL
        if action is Action.FAIL and hint == "true":
            return Action.RETRY
        return action

    def backoff(self, attempt: int, rand: Callable[[], float] = random.random) -> float:
        """Full-jitter delay before retry number `attempt` (1-based)."""
        ceiling = min(self.cap, self.base * 2.0 ** (attempt - 1))
        return rand() * ceiling

    def delay(
        self,
        attempt: int,
        headers: Mapping[str, str],
        rand: Callable[[], float] = random.random,
        now: datetime | None = None,
    ) -> float:
        """Seconds to wait before retry `attempt`: the backoff, or longer if told so."""
        delay = self.backoff(attempt, rand)
        after = retry_after_seconds(headers.get("retry-after"), now)
        if after is not None:
            delay = max(delay, min(after, MAX_RETRY_AFTER))
        return delay


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """Parse `Retry-After` (delta seconds or an HTTP date); None when absent or bad."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if seconds != seconds:  # NaN
        return None
    return max(0.0, seconds)
