"""Rate limits, injected faults and request statistics."""

from __future__ import annotations

import random
import time
from collections import Counter
from typing import Any

from headwater.sandbox.config import Knobs
from headwater.sandbox.errors import ApiError


class TokenBucket:
    """A per-second budget with a one-second burst; a rate of 0 means unlimited."""

    def __init__(self) -> None:
        self.tokens = 0.0
        self.stamp = time.monotonic()

    def take(self, rate: float) -> bool:
        if rate <= 0:
            return True
        now = time.monotonic()
        self.tokens = min(rate, self.tokens + (now - self.stamp) * rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False

    def reset(self, rate: float) -> None:
        self.tokens = rate
        self.stamp = time.monotonic()


def rate_limited() -> ApiError:
    return ApiError(
        429,
        "Too many requests hit the API too quickly. We recommend an exponential backoff "
        "of your requests.",
        code="rate_limit",
        headers={"stripe-should-retry": "true"},
    )


class Faults:
    """Decides, per API request, whether to answer with a rate limit or a fault."""

    def __init__(self, knobs: Knobs, seed: int) -> None:
        self.knobs = knobs
        self.rng = random.Random(f"{seed}:faults")
        self.buckets = {False: TokenBucket(), True: TokenBucket()}
        self.buckets[False].reset(knobs.rate_limit)
        self.buckets[True].reset(knobs.live_rate_limit)

    def check_rate(self, live: bool) -> None:
        rate = self.knobs.live_rate_limit if live else self.knobs.rate_limit
        if not self.buckets[live].take(rate):
            raise rate_limited()

    def delay_seconds(self) -> float:
        k = self.knobs
        jitter = self.rng.uniform(0, k.jitter_ms) if k.jitter_ms else 0.0
        return (k.latency_ms + jitter) / 1000.0

    def injected_error(self) -> ApiError | None:
        k = self.knobs
        if k.rate_limit_error_rate and self.rng.random() < k.rate_limit_error_rate:
            return rate_limited()
        if k.error_rate and self.rng.random() < k.error_rate:
            if self.rng.random() < 0.5:
                return ApiError(
                    500,
                    "An unknown error occurred (injected by the sandbox).",
                    type_="api_error",
                    headers={"stripe-should-retry": "true"},
                )
            return ApiError(
                503,
                "The service is temporarily unavailable (injected by the sandbox).",
                type_="api_error",
                headers={"stripe-should-retry": "true"},
            )
        return None

    def malform(self, body: bytes) -> bytes | None:
        """A truncated or garbled copy of `body`, for a fraction of responses."""
        k = self.knobs
        if not (k.malformed_rate and self.rng.random() < k.malformed_rate):
            return None
        if self.rng.random() < 0.5 and len(body) > 2:
            return body[: self.rng.randrange(1, len(body) - 1)]
        return b'{"object": "list", "data": [{"id": "cus_' + b"\xff\xfe<html>oops"


class Stats:
    """Counters that tests and benchmarks read through ``/_sandbox/stats``."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.requests = 0
        self.by_path: Counter[str] = Counter()
        self.by_status: Counter[int] = Counter()
        self.rate_limited = 0
        self.server_errors = 0
        self.malformed = 0
        self.webhook_attempts = 0
        self.webhook_deliveries = 0
        self.webhook_failures = 0

    def record(self, route: str, status: int) -> None:
        self.requests += 1
        self.by_path[route] += 1
        self.by_status[status] += 1
        if status == 429:
            self.rate_limited += 1
        elif status >= 500:
            self.server_errors += 1

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "by_path": dict(self.by_path),
            "by_status": {str(k): v for k, v in self.by_status.items()},
            "rate_limited": self.rate_limited,
            "server_errors": self.server_errors,
            "malformed": self.malformed,
            "webhook_attempts": self.webhook_attempts,
            "webhook_deliveries": self.webhook_deliveries,
            "webhook_failures": self.webhook_failures,
        }
