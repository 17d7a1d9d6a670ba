"""The per-connection delivery rate limit (a token bucket with an injected clock), and
ids that name no connection unable to push real connections' buckets out."""

from __future__ import annotations

import pytest

from headwater.services.webhooks.limits import (
    MAX_BUCKETS,
    DeliveryLimits,
    RateLimiter,
    retry_after,
)


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


def test_made_up_ids_do_not_give_a_drained_connection_a_fresh_burst() -> None:
    now = [0.0]
    limiter = RateLimiter(DeliveryLimits(per_second=0.1, burst=5.0), clock=lambda: now[0])
    assert [limiter.take("conn_real", known=True) for _ in range(5)] == [0.0] * 5
    assert limiter.take("conn_real", known=True) == pytest.approx(10.0)  # drained
    for n in range(MAX_BUCKETS + 1):  # forged deliveries, each to a made-up id of its own
        assert limiter.take(f"conn_forged_{n}", known=False) == 0.0  # each has its burst
    # No time passed: still drained (before, forgotten and back with a full burst of 5).
    assert limiter.take("conn_real", known=True) == pytest.approx(10.0)
    now[0] = 10.0
    assert limiter.take("conn_real", known=True) == 0.0  # refilled at its rate only
    assert limiter.take("conn_real", known=True) > 0
    # Made-up ids are still limited per id (the newest refilled to 5 by now); the
    # oldest of them was forgotten.
    taken = [limiter.take(f"conn_forged_{MAX_BUCKETS}", known=False) for _ in range(6)]
    assert taken[:5] == [0.0] * 5
    assert taken[5] > 0
    assert limiter.take("conn_forged_0", known=False) == 0.0


def test_unknown_ids_are_kept_up_to_their_own_bound() -> None:
    limiter = RateLimiter(DeliveryLimits(per_second=1.0, burst=1.0), max_keys=1, max_unknown=2)
    limiter.take("real", known=True)
    for key in ("x", "y", "x", "z"):  # z pushes out y, not x (used since), nor "real"
        limiter.take(key, known=False)
    assert limiter.take("x", known=False) > 0
    assert limiter.take("y", known=False) == 0.0
    assert limiter.take("real", known=True) > 0


def test_an_id_keeps_its_bucket_when_it_becomes_a_connection_or_stops_being_one() -> None:
    limiter = RateLimiter(DeliveryLimits(per_second=1.0, burst=1.0), clock=lambda: 0.0)
    limiter.take("conn_1", known=False)  # probed before its secret was stored
    assert limiter.take("conn_1", known=True) > 0  # not a fresh burst for switching
    limiter.take("conn_1", known=False)  # its secret removed
    limiter.take("other", known=False)
    assert limiter.take("conn_1", known=True) > 0


@pytest.mark.parametrize(("wait", "seconds"), [(0.01, 1), (1.0, 1), (1.2, 2), (30.0, 30)])
def test_retry_after_is_whole_seconds(wait: float, seconds: int) -> None:
    assert retry_after(wait) == seconds
