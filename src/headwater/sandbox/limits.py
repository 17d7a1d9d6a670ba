"""Stripe's limiters: a global rate, a rate per named operation, and requests in flight.

Stripe counts requests per second per account: a global limit (100/s live, 25/s test)
and, under it, a limit per named operation (25/s unless documented otherwise; ``GET
/v1/customers`` and ``GET /v1/customers/{id}`` are separate operations).  A concurrency
limiter also caps the requests in flight.  A refused request is answered 429 with
``code: rate_limit`` and a ``Stripe-Rate-Limited-Reason`` header saying which limiter
refused it; a refused request spends no budget of the limiters that would have let it
through.

All of this runs on the server's event loop thread: no locks are needed.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from headwater.sandbox.config import Knobs
from headwater.sandbox.errors import ApiError

GLOBAL_RATE = "global-rate"
ENDPOINT_RATE = "endpoint-rate"
CONCURRENCY = "global-concurrency"

Clock = Callable[[], float]


class TokenBucket:
    """A per-second budget with a one-second burst; a rate of 0 means unlimited."""

    def __init__(self, rate: float, clock: Clock = time.monotonic) -> None:
        self.clock = clock
        self.rate = rate
        self.tokens = rate
        self.stamp = clock()

    def ready(self) -> bool:
        """Whether a request may pass now (refills first; spends nothing)."""
        if self.rate <= 0:
            return True
        now = self.clock()
        self.tokens = min(self.rate, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        return self.tokens >= 1.0

    def spend(self) -> None:
        if self.rate > 0:
            self.tokens -= 1.0


def rate_limited(reason: str | None = None, message: str | None = None) -> ApiError:
    """Stripe's 429; `reason` becomes the ``Stripe-Rate-Limited-Reason`` header."""
    headers = {"stripe-should-retry": "true"}
    if reason is not None:
        headers["stripe-rate-limited-reason"] = reason
    return ApiError(
        429,
        message
        or "Too many requests hit the API too quickly. We recommend an exponential backoff "
        "of your requests.",
        code="rate_limit",
        headers=headers,
    )


class Limits:
    """Admits or refuses each API request; `release` when an admitted one is answered."""

    def __init__(self, knobs: Knobs, clock: Clock = time.monotonic) -> None:
        self.knobs = knobs
        self.clock = clock
        self.in_flight: dict[str, int] = {}
        self.configure()

    def configure(self) -> None:
        """Start every bucket afresh at the current knobs (a full one-second burst)."""
        k = self.knobs
        self.global_buckets = {
            False: TokenBucket(k.rate_limit, self.clock),
            True: TokenBucket(k.live_rate_limit, self.clock),
        }
        self.endpoint_buckets: dict[tuple[bool, str], TokenBucket] = {}

    def admit(self, key: str, live: bool, operation: str) -> ApiError | None:
        """None if the request may run (it then counts as in flight), else the 429."""
        k = self.knobs
        global_bucket = self.global_buckets[live]
        if not global_bucket.ready():
            return rate_limited(GLOBAL_RATE)
        endpoint_bucket = self.endpoint_buckets.get((live, operation))
        if endpoint_bucket is None:
            endpoint_bucket = TokenBucket(k.endpoint_rate_limit, self.clock)
            self.endpoint_buckets[(live, operation)] = endpoint_bucket
        if not endpoint_bucket.ready():
            return rate_limited(ENDPOINT_RATE)
        running = self.in_flight.get(key, 0)
        if k.concurrency_limit and running >= k.concurrency_limit:
            return rate_limited(
                CONCURRENCY,
                f"Too many concurrent requests for this API key ({int(k.concurrency_limit)} "
                "allowed in flight at once). We recommend an exponential backoff of your "
                "requests.",
            )
        global_bucket.spend()
        endpoint_bucket.spend()
        self.in_flight[key] = running + 1
        return None

    def release(self, key: str) -> None:
        """An admitted request has been answered."""
        running = self.in_flight[key] - 1
        if running:
            self.in_flight[key] = running
        else:
            del self.in_flight[key]
