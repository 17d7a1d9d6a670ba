"""The per-connection delivery rate limit (a token bucket with an injected clock)."""

from __future__ import annotations

import pytest

from headwater.services.webhooks.limits import DeliveryLimits, RateLimiter, retry_after


def test_a_burst_then_the_rate_per_connection() -> None:
    now = [0.0]
    limiter = RateLimiter(DeliveryLimits(per_second=2.0, burst=3.0), clock=lambda: now[0])
    assert [limiter.take("conn_a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take("conn_a") == pytest.approx(0.5)
    assert limiter.take("conn_b") == 0.0  # another connection has its own bucket
    now[0] = 0.5
    assert limiter.take("conn_a") == 0.0
    assert limiter.take("conn_a") > 0
    now[0] = 100.0
    assert [limiter.take("conn_a") for _ in range(4)][:3] == [0.0, 0.0, 0.0]  # refilled to 3


def test_only_so_many_keys_are_remembered() -> None:
    limiter = RateLimiter(DeliveryLimits(per_second=1.0, burst=1.0), max_keys=2)
    limiter.take("a")
    limiter.take("b")
    limiter.take("c")  # forgets "a", the oldest
    assert limiter.take("a") == 0.0
    assert limiter.take("c") > 0


@pytest.mark.parametrize(("wait", "seconds"), [(0.01, 1), (1.0, 1), (1.2, 2), (30.0, 30)])
def test_retry_after_is_whole_seconds(wait: float, seconds: int) -> None:
    assert retry_after(wait) == seconds
