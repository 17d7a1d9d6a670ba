"""The delivery rate limit of real `headwater serve` processes: token buckets per
connection and per serving process, refused deliveries apart from verified ones
(decided in `services/webhooks/limits.py`: no shared counter in the store), that refill
at their rate and say when to retry."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from tests.serving import Service, start_serve

BODY = b'{"id":"evt_x","type":"customer.created"}'
#: One token per 10 s: none comes back while a test sends its few requests.
ENV = {"HEADWATER_WEBHOOK_RATE": "0.1", "HEADWATER_WEBHOOK_BURST": "5"}


def _statuses(served: Service, connection_id: str, count: int) -> list[int]:
    url = f"{served.url}/api/v1/webhooks/stripe/{connection_id}"
    headers = {"content-type": "application/json", "stripe-signature": "t=1,v1=00"}
    return [httpx.post(url, content=BODY, headers=headers).status_code for _ in range(count)]


def _burst_then_refused(statuses: list[int]) -> None:
    assert statuses[:5] == [400] * 5
    # A token may come back while a loaded machine sends the rest (one per 10 s).
    assert statuses[5:].count(429) >= len(statuses[5:]) - 1


@pytest.mark.slow
def test_each_serving_process_limits_each_connection_and_refills(home: Path) -> None:
    with (
        start_serve(home, workers=0, env=ENV) as one,
        start_serve(home, workers=0, env=ENV) as two,
    ):
        # The burst of refusals (400), then 429.
        _burst_then_refused(_statuses(one, "conn_a", 7))
        # Another connection has its own bucket; so has another process (its share of
        # the deliveries, behind a load balancer, is limited by it alone).
        assert _statuses(one, "conn_b", 1) == [400]
        _burst_then_refused(_statuses(two, "conn_a", 7))
        refused = httpx.post(f"{one.url}/api/v1/webhooks/stripe/conn_a", content=BODY)
        assert refused.status_code == 429
        wait = int(refused.headers["retry-after"])
        assert 1 <= wait <= 10  # one token at 0.1 per second
        time.sleep(wait)
        assert _statuses(one, "conn_a", 1) == [400]  # refilled: checked again
