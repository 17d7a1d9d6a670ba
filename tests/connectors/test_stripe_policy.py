"""Pure parts of the Stripe connector: rate limiter, retry policy, declaration, keys."""

from __future__ import annotations

import bisect
import itertools
import math
import multiprocessing
import random
import re
import threading
import time
from datetime import UTC, datetime
from multiprocessing.queues import Queue
from pathlib import Path

import pytest

from headwater.adapters.connectors.stripe import STRIPE, MalformedKey, StripeSettings
from headwater.adapters.connectors.stripe.declaration import Action
from headwater.adapters.connectors.stripe.keys import check_key_format
from headwater.adapters.connectors.stripe.ratelimit import RequestBudget
from headwater.adapters.connectors.stripe.retry import RetryPolicy, retry_after_seconds
from headwater.kernel.errors import InvalidInput


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.lock = threading.Lock()

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self.lock:
            self.now += seconds


def _sends(budget: RequestBudget, clock: FakeClock, reservations: int) -> list[float]:
    """Reserve `reservations` send times now; the times they were given."""
    return [clock.now + budget.reserve() for _ in range(reservations)]


def _most_in_any(sends: list[float], span: float) -> int:
    """The most send times in any half-open interval of `span` seconds."""
    ordered = sorted(sends)
    return max(bisect.bisect_left(ordered, at + span - 1e-9) - i for i, at in enumerate(ordered))


def test_a_budget_never_sends_more_than_its_rate_in_any_second() -> None:
    """Whatever the pattern of waits and bursts of demand, any second holds at most
    `rate` requests, two are never closer than half the spacing, and the long-run rate
    is the budget."""
    rng = random.Random(16)
    for rate in (1.0, 2.5, 10.0, 25.0):
        clock = FakeClock()
        budget = RequestBudget(rate, clock=clock)
        sends: list[float] = []
        for _ in range(200):
            sends += _sends(budget, clock, rng.randint(1, 3 * math.ceil(rate)))
            clock.now += rng.choice([0.0, 0.01, 0.3, 1.7]) + rng.random() / rate
        assert _most_in_any(sends, budget.span) <= budget.count
        assert _most_in_any(sends, 1.0) <= max(1, math.ceil(rate))
        assert min(b - a for a, b in itertools.pairwise(sends)) >= 0.5 / rate - 1e-9
        # Demand always waiting: exactly the rate, over a long run.
        start = len(sends)
        sends += _sends(budget, clock, int(50 * rate))
        assert (sends[-1] - sends[start]) == pytest.approx((50 * rate - 1) / rate, abs=1.0)


def test_a_budget_spends_later_the_requests_a_wait_left_unsent() -> None:
    """A read waits for its first answer before it can ask for more: the requests that
    could not go meanwhile go later in the same second (half the spacing apart), and
    the next second starts where the first did.  A token bucket would have spread the
    same ten requests over 1.25 s."""
    clock = FakeClock()
    budget = RequestBudget(10.0, clock=clock)
    assert budget.reserve() == 0.0  # the first page, alone
    clock.now += 0.35  # its answer
    waits = [budget.reserve() for _ in range(11)]
    assert waits[:9] == pytest.approx([0.05 * i for i in range(9)])  # 100.35 ... 100.75
    assert waits[9] == pytest.approx(0.65)  # 101.0: a second after the first request
    assert waits[10] == pytest.approx(1.0)  # 101.35: a second after the second


def test_a_budget_handed_over_keeps_the_combined_rate() -> None:
    """The reading child's budget counts the parent's last requests, and the parent's
    counts the child's when it hands them back."""
    clock = FakeClock()
    parent = RequestBudget(10.0, clock=clock)
    assert parent.history() == []
    sends = _sends(parent, clock, 4)
    child = RequestBudget(10.0, clock=clock)
    child.adopt(parent.history())
    sends += _sends(child, clock, 12)
    assert sends[4] == pytest.approx(clock.now + 0.2)  # half a spacing after the parent's
    parent.adopt(child.history())
    sends += _sends(parent, clock, 5)
    assert _most_in_any(sends, 1.0) <= 10
    assert sends[-1] > sends[-6]  # the parent queued behind the child's requests
    late = RequestBudget(10.0, clock=clock)
    late.adopt([clock.now - 5])  # requests long past change nothing
    assert late.reserve() == 0.0


def test_a_budget_holds_the_rate_across_threads() -> None:
    clock = FakeClock()
    budget = RequestBudget(20.0, clock=clock, sleep=lambda s: None)
    waits: list[float] = []
    lock = threading.Lock()

    def take() -> None:
        for _ in range(25):
            wait = budget.reserve()
            with lock:
                waits.append(wait)

    threads = [threading.Thread(target=take) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # 100 reservations at 20/s without the clock moving: 20 a second, 25 ms apart.
    expected = [second + 0.025 * i for second in range(5) for i in range(20)]
    assert sorted(waits) == pytest.approx(expected)


def test_a_budget_rejects_bad_rates() -> None:
    for rate in (0, -1.0, math.inf, math.nan):
        with pytest.raises(ValueError, match=re.escape(f"rate must be positive, got {rate!r}")):
            RequestBudget(rate)
    slow = RequestBudget(0.5)  # one request every two seconds
    assert (slow.count, slow.span) == (1, 2.0)


def test_status_actions_come_from_the_declaration() -> None:
    policy = RetryPolicy()
    assert policy.action(200, {}) is Action.OK
    assert policy.action(429, {}) is Action.RETRY
    assert policy.action(503, {}) is Action.RETRY
    assert policy.action(599, {}) is Action.RETRY
    assert policy.action(401, {}) is Action.INVALID_KEY
    assert policy.action(403, {}) is Action.PERMISSION
    assert policy.action(400, {}) is Action.FAIL
    assert policy.action(404, {}) is Action.FAIL


def test_stripe_should_retry_header_overrides_the_status() -> None:
    policy = RetryPolicy()
    assert policy.action(500, {"stripe-should-retry": "false"}) is Action.FAIL
    assert policy.action(429, {"stripe-should-retry": "false"}) is Action.FAIL
    assert policy.action(400, {"stripe-should-retry": "true"}) is Action.RETRY
    # It never turns an auth failure into a retry loop.
    assert policy.action(401, {"stripe-should-retry": "true"}) is Action.INVALID_KEY


def test_backoff_is_exponential_full_jitter_and_capped() -> None:
    policy = RetryPolicy(max_retries=10, base=0.5, cap=4.0)
    assert [policy.backoff(n, lambda: 1.0) for n in range(1, 6)] == [0.5, 1.0, 2.0, 4.0, 4.0]
    assert policy.backoff(3, lambda: 0.0) == 0.0
    assert policy.backoff(2, lambda: 0.5) == 0.5


def test_retry_after_is_honoured_when_longer_than_the_backoff() -> None:
    policy = RetryPolicy(base=0.5, cap=4.0)
    assert policy.delay(1, {"retry-after": "3"}, lambda: 1.0) == 3.0
    assert policy.delay(4, {"retry-after": "1"}, lambda: 1.0) == 4.0
    assert policy.delay(1, {"retry-after": "100000"}, lambda: 0.0) == 60.0  # bounded


def test_retry_after_parsing() -> None:
    now = datetime(2024, 6, 20, 12, 0, 0, tzinfo=UTC)
    assert retry_after_seconds("2.5") == 2.5
    assert retry_after_seconds("Thu, 20 Jun 2024 12:00:07 GMT", now) == 7.0
    assert retry_after_seconds("Thu, 20 Jun 2024 11:00:00 GMT", now) == 0.0
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds(None) is None
    assert retry_after_seconds("-3") == 0.0


def test_declaration_is_data() -> None:
    assert STRIPE.api_version == "2024-06-20"
    assert STRIPE.rate_limits["test"]["global"] == 25.0
    assert STRIPE.permission_for("/v1/events") == "Events: Read"
    assert STRIPE.permission_for("/v1/customers") == "Customers: Read"
    props = STRIPE.settings_schema["properties"]
    assert props["base_url"]["default"] == "https://api.stripe.com"
    assert set(props) == {"base_url", "requests_per_second", "timeout", "workers"}


@pytest.mark.parametrize(
    ("field", "value", "where"),
    [
        ("requests_per_second", 0.0, "requests_per_second"),
        ("timeout", float("nan"), "timeout"),
        ("workers", 0, "workers"),
        ("page_size", 101, "page_size"),
        ("base_url", "ftp://x", "base_url"),
        ("max_retries", -1, "max_retries"),
    ],
)
def test_settings_reject_bad_values_naming_the_field(field: str, value: object, where: str) -> None:
    with pytest.raises(InvalidInput) as info:
        StripeSettings(**{"api_key": "sk_test_abcdefgh1234", field: value})  # type: ignore[arg-type]
    assert info.value.location == where


@pytest.mark.parametrize(
    ("key", "prefix"),
    [
        ("sk_live_51Habc123XYZ", "sk_live_"),
        ("sk_test_4eC39HqLyjWDarjtT1zdp7dc", "sk_test_"),
        ("rk_live_abcdefgh", "rk_live_"),
        ("rk_test_x1234567", "rk_test_"),
        ("sk_test_sandbox", "sk_test_"),  # the sandbox's documented key
    ],
)
def test_key_formats_accepted(key: str, prefix: str) -> None:
    assert check_key_format(key) == prefix


@pytest.mark.parametrize(
    ("key", "fragment"),
    [
        ("", "an API key is required"),
        ("pk_test_abcdefgh1234", "publishable key"),
        ("whsec_abcdefgh1234", "not a Stripe secret or restricted key"),
        ("sk_test_", "truncated"),
        ("sk_test_abc$defgh", "invalid characters"),
        (" sk_test_abcdefgh1234", "spaces"),
        ("hello", "expected a key starting with sk_live_, sk_test_, rk_live_ or rk_test_"),
    ],
)
def test_malformed_keys_get_a_clear_message_without_the_key(key: str, fragment: str) -> None:
    with pytest.raises(MalformedKey) as info:
        check_key_format(key)
    assert fragment in info.value.message
    assert info.value.location == "api_key"
    if len(key.strip()) > 12:
        assert key.strip() not in info.value.message


def _reserved(path: str, count: int) -> list[float]:
    """`count` send times reserved on the budget shared through `path`, on the real
    clock (one machine-wide), each exactly as the budget gave it."""
    seen = [0.0]

    def clock() -> float:
        seen[0] = time.monotonic()
        return seen[0]

    budget = RequestBudget(10.0, clock=clock, shared=path)
    try:
        return [budget.reserve() + seen[0] for _ in range(count)]
    finally:
        budget.close()


def _reserve_in_a_process(path: str, count: int, out: Queue[list[float]]) -> None:
    out.put(_reserved(path, count))


def test_budgets_shared_through_a_file_keep_the_rate_together(tmp_path: Path) -> None:
    """Two runs of one connection at once (and their reading processes) each kept the
    connection's rate: twice it together.  Budgets naming one file keep it together,
    across processes and with the one in this process."""
    path = str(tmp_path / "budgets" / "conn_1")
    context = multiprocessing.get_context("spawn")
    out: Queue[list[float]] = context.Queue()
    workers = [
        context.Process(target=_reserve_in_a_process, args=(path, 15, out)) for _ in range(2)
    ]
    for worker in workers:
        worker.start()
    sends = _reserved(path, 10)
    sends += [at for _ in workers for at in out.get(timeout=60)]
    for worker in workers:
        worker.join(60)
    assert len(sends) == 40
    assert _most_in_any(sorted(sends), 1.0) <= 10
    assert max(sends) - min(sends) >= 3.0  # 40 requests at 10/s: about four seconds
    # A budget for another rate starts the file afresh (the slots are its count).
    assert RequestBudget(3.0, shared=path).reserve() >= 0.0
