"""Property: the parallel full read (`read_windows`: threads, windows planned from first
pages, streams split while paged) reads every customer exactly once, whatever the
`created` seconds, the page size, the workers, and customers created or deleted while
it reads.  Stripe's list is imitated in memory (`MemoryList`) for speed; the sandbox
tests in test_stripe_full_read.py read over HTTP."""

from __future__ import annotations

import bisect
import random
import threading
from collections import Counter

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.connectors.wires import HandlerWire

from headwater.adapters.connectors.stripe import StripeSettings
from headwater.adapters.connectors.stripe.full import read_windows
from headwater.adapters.connectors.stripe.http import StripeHTTP
from headwater.adapters.connectors.stripe.windows import Window

NOW = 1_700_000_000


class MemoryList:
    """GET /v1/customers over sorted ``(created, sequence)`` keys: newest first,
    ``created[gte|lt]``, ``starting_after`` (a deleted customer's id still places the
    cursor), ``limit``.  Before answering, with probability `churn`, a customer is
    created (at `NOW`, the newest second) or deleted (any)."""

    def __init__(self, createds: list[int], churn: float, seed: int) -> None:
        self.lock = threading.Lock()
        self.rng = random.Random(seed)
        self.churn = churn
        self.keys: list[tuple[int, int]] = []
        self.ids: dict[str, tuple[int, int]] = {}  # listed customers
        self.gone: dict[str, tuple[int, int]] = {}  # deleted customers
        self.touched: set[str] = set()  # created or deleted during the read
        for created in sorted(createds):
            self._create(created)
        self.before = set(self.ids)

    def _create(self, created: int) -> str:
        key = (created, len(self.ids) + len(self.gone))
        customer_id = f"cus_{key[1]:07d}"
        bisect.insort(self.keys, key)
        self.ids[customer_id] = key
        return customer_id

    def _churn(self) -> None:
        if self.rng.random() >= self.churn:
            return
        if self.rng.random() < 0.5 or not self.ids:
            self.touched.add(self._create(NOW))
            return
        customer_id = self.rng.choice(sorted(self.ids))
        key = self.ids.pop(customer_id)
        self.keys.remove(key)
        self.gone[customer_id] = key
        self.touched.add(customer_id)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        with self.lock:
            self._churn()
            params = request.url.params
            limit = int(params["limit"])
            lo = bisect.bisect_left(self.keys, (int(params.get("created[gte]", 0)), -1))
            hi = len(self.keys)
            if "created[lt]" in params:
                hi = bisect.bisect_left(self.keys, (int(params["created[lt]"]), -1))
            if "starting_after" in params:
                after = params["starting_after"]
                hi = min(hi, bisect.bisect_left(self.keys, self.ids.get(after) or self.gone[after]))
            names = {key: name for name, key in self.ids.items()}
            page = self.keys[max(lo, hi - limit) : hi][::-1] if hi > lo else []
            data = [{"id": names[k], "object": "customer", "created": k[0]} for k in page]
            body = {"object": "list", "data": data, "has_more": hi - lo > limit}
            return httpx.Response(200, json=body)


def seconds(kind: str, count: int, seed: int) -> list[int]:
    """`count` `created` seconds: all in one, a few crowded ones side by side, or spread
    over three years."""
    rng = random.Random(seed)
    if kind == "one":
        return [NOW - 5] * count
    if kind == "crowded":
        picks = [NOW - rng.randrange(1, 40) for _ in range(rng.randrange(1, 5))]
        return [rng.choice(picks) for _ in range(count)]
    return [NOW - rng.randrange(1, 3 * 365 * 86400) for _ in range(count)]


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    kind=st.sampled_from(["one", "crowded", "spread"]),
    count=st.sampled_from([0, 1, 2, 99, 100, 101, 250, 600]),
    page_size=st.sampled_from([1, 2, 3, 10, 100]),
    workers=st.sampled_from([1, 2, 3, 8]),
    churn=st.sampled_from([0.0, 0.1, 0.3]),
    seed=st.integers(0, 2**16),
)
def test_the_parallel_read_returns_each_customer_exactly_once(
    kind: str, count: int, page_size: int, workers: int, churn: float, seed: int
) -> None:
    stripe = MemoryList(seconds(kind, count, seed), churn, seed)
    config = StripeSettings(
        base_url="http://stripe.test", api_key="sk_test_x", requests_per_second=1e6
    )
    http = StripeHTTP(config, wire=HandlerWire(stripe))
    try:
        pages = read_windows(http, Window(0), page_size=page_size, workers=workers)
        ids = [str(c["id"]) for page in pages for c in page]
    finally:
        http.close()
    twice = [i for i, n in Counter(ids).items() if n > 1]
    assert not twice
    # Every customer listed throughout the read is read; one created or deleted while
    # it ran may be read or not (the next incremental run has its event).
    assert stripe.before - stripe.touched <= set(ids)
    assert set(ids) <= stripe.before | stripe.touched
