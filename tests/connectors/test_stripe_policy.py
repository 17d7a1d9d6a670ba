"""Pure parts of the Stripe connector: rate limiter, retry policy, declaration, keys."""

from __future__ import annotations

import re
import threading
from datetime import UTC, datetime

import pytest

from headwater.adapters.connectors.stripe import STRIPE, MalformedKey, StripeSettings
from headwater.adapters.connectors.stripe.declaration import Action
from headwater.adapters.connectors.stripe.keys import check_key_format
from headwater.adapters.connectors.stripe.ratelimit import TokenBucket
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


def test_token_bucket_spaces_requests_at_the_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(10.0, burst=1.0, clock=clock)
    waits = [bucket.reserve() for _ in range(5)]
    # The first token is in the bucket; each later one queues 0.1 s behind the last.
    assert waits == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4])


def test_token_bucket_refills_after_idle_time_up_to_burst() -> None:
    clock = FakeClock()
    bucket = TokenBucket(5.0, burst=3.0, clock=clock)
    assert [bucket.reserve() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.reserve() == pytest.approx(0.2)
    clock.now += 100  # a long idle period refills only up to the burst
    assert [bucket.reserve() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.reserve() > 0


def test_a_budget_handed_over_keeps_the_combined_rate() -> None:
    """The reading child's bucket starts where the parent's would next allow a request."""
    clock = FakeClock()
    parent = TokenBucket(10.0, clock=clock)
    assert parent.next_free() == clock.now  # a full bucket: now
    assert parent.reserve() == 0.0  # the parent sends one request...
    handed = parent.next_free()
    assert handed == pytest.approx(clock.now + 0.1)
    child = TokenBucket(10.0, clock=clock)
    child.not_before(handed)
    # ...so the child's first request waits the rest of that 0.1 s, then keeps the rate.
    assert [child.reserve() for _ in range(3)] == pytest.approx([0.1, 0.2, 0.3])
    late = TokenBucket(10.0, clock=clock)
    late.not_before(clock.now - 5)  # a time already past changes nothing
    assert late.reserve() == 0.0


def test_token_bucket_holds_the_rate_across_threads() -> None:
    clock = FakeClock()
    bucket = TokenBucket(20.0, clock=clock, sleep=lambda s: None)
    waits: list[float] = []
    lock = threading.Lock()

    def take() -> None:
        for _ in range(25):
            wait = bucket.reserve()
            with lock:
                waits.append(wait)

    threads = [threading.Thread(target=take) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # 100 reservations at 20/s without the clock moving: slots 0, 0.05, ..., 4.95.
    assert sorted(waits) == pytest.approx([i * 0.05 for i in range(100)])


def test_token_bucket_rejects_bad_rates() -> None:
    for rate in (0, -1.0):
        with pytest.raises(ValueError, match=re.escape(f"rate must be positive, got {rate!r}")):
            TokenBucket(rate)
    with pytest.raises(ValueError, match=r"burst must be at least 1, got 0\.5"):
        TokenBucket(1.0, burst=0.5)


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
