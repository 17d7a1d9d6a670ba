"""Injected faults and request statistics."""

from __future__ import annotations

import random
import time
from collections import Counter, deque
from typing import Any

from headwater.sandbox.config import Knobs
from headwater.sandbox.errors import ApiError
from headwater.sandbox.limits import rate_limited


class Faults:
    """Decides, per API request, whether to answer with an injected fault."""

    def __init__(self, knobs: Knobs, seed: int) -> None:
        self.knobs = knobs
        self.rng = random.Random(f"{seed}:faults")

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


#: Answered API requests kept in the timeline (the newest; about 2 MB of JSON at most).
TIMELINE_SIZE = 50_000


class Stats:
    """Counters that tests and benchmarks read through ``/_sandbox/stats``.

    The timeline lists each answered API request as ``[admitted, answered, status,
    operation]`` (wall-clock seconds, `time.time`, so that a benchmark can set it
    beside its own process's times): where a client's time went, request by request.
    """

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.requests = 0
        self.by_path: Counter[str] = Counter()
        self.by_status: Counter[int] = Counter()
        self.rate_limited = 0
        self.rate_limited_by_reason: Counter[str] = Counter()
        self.peak_in_flight = 0  # the most requests one key has had in flight
        self.server_errors = 0
        self.malformed = 0
        self.webhook_attempts = 0
        self.webhook_deliveries = 0
        self.webhook_failures = 0
        self.timeline: deque[tuple[float, float, int, str]] = deque(maxlen=TIMELINE_SIZE)

    def record(
        self, route: str, status: int, reason: str | None = None, admitted: float | None = None
    ) -> None:
        """One answered API request; `reason` is a 429's ``Stripe-Rate-Limited-Reason``,
        `admitted` when it arrived (`time.time`; now if not given)."""
        now = time.time()
        self.timeline.append((now if admitted is None else admitted, now, status, route))
        self.requests += 1
        self.by_path[route] += 1
        self.by_status[status] += 1
        if status == 429:
            self.rate_limited += 1
            self.rate_limited_by_reason[reason or "injected"] += 1
        elif status >= 500:
            self.server_errors += 1

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "by_path": dict(self.by_path),
            "by_status": {str(k): v for k, v in self.by_status.items()},
            "rate_limited": self.rate_limited,
            "rate_limited_by_reason": dict(self.rate_limited_by_reason),
            "peak_in_flight": self.peak_in_flight,
            "server_errors": self.server_errors,
            "malformed": self.malformed,
            "webhook_attempts": self.webhook_attempts,
            "webhook_deliveries": self.webhook_deliveries,
            "webhook_failures": self.webhook_failures,
        }

    def timeline_list(self) -> list[list[Any]]:
        return [list(entry) for entry in self.timeline]
