"""Stripe-like limits and latency: per-operation and global rates, requests in flight,
latency as a distribution; through the official SDK and httpx against a real sandbox."""

from __future__ import annotations

import random
import statistics
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import stripe
from click.testing import CliRunner

from headwater.sandbox.command import sandbox as sandbox_command
from headwater.sandbox.config import Knobs
from headwater.sandbox.latency import lognormal_ms
from headwater.sandbox.limits import CONCURRENCY, ENDPOINT_RATE, GLOBAL_RATE, Limits
from headwater.sandbox.testing import RunningSandbox, start_sandbox


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _reasons(limits: Limits, key: str, operation: str, count: int) -> list[str | None]:
    """Admit `count` requests (each answered at once); the 429 reasons, None for admitted."""
    reasons: list[str | None] = []
    for _ in range(count):
        refused = limits.admit(key, False, operation)
        if refused is None:
            limits.release(key)
            reasons.append(None)
        else:
            assert refused.status == 429
            assert refused.code == "rate_limit"
            reasons.append(refused.headers["stripe-rate-limited-reason"])
    return reasons


def test_operation_buckets_are_independent_and_refusals_spend_nothing() -> None:
    clock = FakeClock()
    limits = Limits(Knobs(rate_limit=100, endpoint_rate_limit=5), clock)
    assert _reasons(limits, "k", "GET /v1/customers", 8) == [None] * 5 + [ENDPOINT_RATE] * 3
    # Another operation has its own bucket, and the refusals above took no global budget.
    assert _reasons(limits, "k", "GET /v1/events", 5) == [None] * 5
    assert _reasons(limits, "k", "GET /v1/customers/{id}", 5) == [None] * 5
    clock.now += 0.2  # one token back at 5/s
    assert _reasons(limits, "k", "GET /v1/customers", 2) == [None, ENDPOINT_RATE]


def test_global_cap_holds_across_operations() -> None:
    clock = FakeClock()
    limits = Limits(Knobs(rate_limit=6, endpoint_rate_limit=25), clock)
    answers = _reasons(limits, "k", "GET /v1/customers", 4)
    answers += _reasons(limits, "k", "GET /v1/events", 4)
    assert answers == [None] * 6 + [GLOBAL_RATE] * 2
    clock.now += 1.0
    assert _reasons(limits, "k", "GET /v1/events", 7) == [None] * 6 + [GLOBAL_RATE]


def test_concurrency_is_counted_per_key_and_released() -> None:
    limits = Limits(Knobs(rate_limit=0, endpoint_rate_limit=0, concurrency_limit=2), FakeClock())
    assert limits.admit("a", False, "op") is None
    assert limits.admit("a", False, "op") is None
    refused = limits.admit("a", False, "op")
    assert refused is not None
    assert refused.headers["stripe-rate-limited-reason"] == CONCURRENCY
    assert limits.admit("b", False, "op") is None  # another key has its own allowance
    limits.release("a")
    assert limits.admit("a", False, "op") is None


def test_lognormal_draws_have_the_asked_median_and_p99() -> None:
    rng = random.Random(5)
    draws = sorted(lognormal_ms(300.0, 900.0, rng) for _ in range(40_000))
    assert statistics.median(draws) == pytest.approx(300.0, rel=0.03)
    assert draws[int(0.99 * len(draws))] == pytest.approx(900.0, rel=0.06)
    assert lognormal_ms(300.0, 0.0, rng) == 300.0  # no spread asked: the median itself


def test_knobs_refuse_inconsistent_latency_and_fractional_concurrency() -> None:
    knobs = Knobs()
    with pytest.raises(ValueError, match="at least latency_median_ms"):
        knobs.update({"latency_median_ms": 300, "latency_p99_ms": 100})
    with pytest.raises(ValueError, match="needs latency_median_ms"):
        knobs.update({"latency_p99_ms": 100})
    with pytest.raises(ValueError, match="whole number"):
        knobs.update({"concurrency_limit": 2.5})
    with pytest.raises(ValueError, match="out of range"):
        knobs.update({"latency_median_ms": float("nan")})
    assert knobs.latency_median_ms == 0  # nothing applied
    assert knobs.latency_p99_ms == 0
    result = CliRunner().invoke(sandbox_command, ["--latency-p99-ms", "50"])
    assert result.exit_code == 2
    assert "latency_median_ms" in result.output


def test_per_operation_limit_through_the_sdk(sdk) -> None:
    with start_sandbox(customers=30, endpoint_rate_limit=4, rate_limit=100) as sandbox:
        client = sdk(sandbox)
        first = client.v1.customers.list({"limit": 1}).data[0].id
        started = time.monotonic()
        listed = [_outcome(lambda: client.v1.customers.list({"limit": 1})) for _ in range(12)]
        elapsed = time.monotonic() - started
        # The other operations have buckets of their own, still full.
        events = [_outcome(lambda: client.v1.events.list()) for _ in range(4)]
        retrieved = [_outcome(lambda: client.v1.customers.retrieve(first)) for _ in range(4)]
        stats = sandbox.stats()
    admitted = listed.count("ok")
    assert 3 <= admitted <= 3 + 4 * elapsed + 1  # a burst of 4 (one spent), 4/s refill
    assert listed.count(ENDPOINT_RATE) == 12 - admitted
    assert events == ["ok"] * 4
    assert retrieved == ["ok"] * 4
    assert stats["rate_limited_by_reason"] == {ENDPOINT_RATE: 12 - admitted}


def test_global_limit_through_the_sdk_caps_all_operations_together(sdk) -> None:
    with start_sandbox(customers=30, rate_limit=6, endpoint_rate_limit=25) as sandbox:
        client = sdk(sandbox)
        first = client.v1.customers.list({"limit": 1}).data[0].id
        calls = [
            lambda: client.v1.customers.list({"limit": 1}),
            lambda: client.v1.events.list(),
            lambda: client.v1.customers.retrieve(first),
        ]
        started = time.monotonic()
        answers = [_outcome(calls[i % 3]) for i in range(18)]
        elapsed = time.monotonic() - started
    admitted = answers.count("ok")
    assert admitted <= 5 + 6 * elapsed + 1  # a burst of 6 (one spent above), refilled at 6/s
    assert answers.count(GLOBAL_RATE) == 18 - admitted
    assert answers.count(GLOBAL_RATE) >= 1


def _outcome(call: Callable[[], object]) -> str:
    """ "ok", or the 429's Stripe-Rate-Limited-Reason (after checking Stripe's error body)."""
    refused: stripe.RateLimitError | None = None
    try:
        call()
    except stripe.RateLimitError as error:
        refused = error
    if refused is None:
        return "ok"
    assert refused.http_status == 429
    assert refused.json_body is not None
    assert refused.json_body["error"]["code"] == "rate_limit"  # the SDK leaves .code unset
    assert refused.json_body["error"]["type"] == "invalid_request_error"
    assert refused.headers is not None
    reason: str = refused.headers["stripe-rate-limited-reason"]
    return reason


def test_concurrency_limit_answers_429_with_the_hint(sdk) -> None:
    with start_sandbox(concurrency_limit=3, latency_ms=1500) as sandbox:
        gate = threading.Barrier(8)

        def call(_: int) -> str:
            client = sdk(sandbox)
            gate.wait()
            return _outcome(lambda: client.v1.customers.list())

        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(call, range(8)))
        stats = sandbox.stats()
        # Slots come back when answers leave: the next request is admitted again.
        after = _outcome(lambda: sdk(sandbox).v1.customers.list())
    assert answers.count("ok") == 3, answers
    assert answers.count(CONCURRENCY) == 5
    assert stats["peak_in_flight"] == 3
    assert stats["rate_limited_by_reason"] == {CONCURRENCY: 5}
    assert after == "ok"


def _timed_gets(sandbox: RunningSandbox, path: str, count: int, workers: int) -> list[float]:
    """`count` GETs from `workers` threads, each with its own client; seconds per request."""
    headers = {"Authorization": f"Bearer {sandbox.secret_key}"}

    def worker(share: int) -> list[float]:
        seconds: list[float] = []
        with httpx.Client(base_url=sandbox.url, headers=headers, timeout=30) as http:
            for _ in range(share):
                started = time.perf_counter()
                response = http.get(path)
                seconds.append(time.perf_counter() - started)
                assert response.status_code == 200
        return seconds

    shares = [count // workers + (i < count % workers) for i in range(workers)]
    with ThreadPoolExecutor(workers) as pool:
        return [s for seconds in pool.map(worker, shares) for s in seconds]


def test_latency_distribution_median_and_p99() -> None:
    with start_sandbox(latency_median_ms=100, latency_p99_ms=300) as sandbox:
        seen = _timed_gets(sandbox, "/v1/customers?limit=1", 400, 16)
        stats = sandbox.stats()
        # The distribution is the server's: from admission to answer, as its timeline
        # has it.  The clients' own times add 16 threads' scheduling on a busy machine
        # (CI once saw a p99 of 0.612 s from them).
        seconds = sorted(answered - admitted for admitted, answered, _, _ in sandbox.timeline())
    assert len(seconds) == 400
    median = statistics.median(seconds)
    p99 = seconds[int(0.99 * len(seconds))]
    # Statistical bounds for 400 draws, with the server's own time on a busy machine.
    assert 0.09 <= median <= 0.14, median
    assert 0.2 <= p99 <= 0.5, p99
    assert 0.045 <= seconds[len(seconds) // 10] <= 0.08  # p10: 55 ms in theory
    assert statistics.median(seen) >= median  # the clients wait at least that long
    assert stats["rate_limited"] == 0


def test_latency_per_object_and_runtime_control(sdk) -> None:
    with start_sandbox(customers=150) as sandbox:
        knobs = sandbox.control(latency_per_object_ms=4)
        assert knobs["latency_per_object_ms"] == 4
        page = _timed_gets(sandbox, "/v1/customers?limit=100", 1, 1)[0]
        single = _timed_gets(sandbox, "/v1/customers?limit=1", 1, 1)[0]
        assert page >= 0.4  # the configured 100 x 4 ms
        assert single < page
        with pytest.raises(RuntimeError, match="latency_p99_ms"):
            sandbox.control(latency_median_ms=200, latency_p99_ms=100)
        sandbox.control(latency_per_object_ms=0, concurrency_limit=1, endpoint_rate_limit=2)
        assert sandbox.knobs()["concurrency_limit"] == 1
        client = sdk(sandbox)
        answers = [_outcome(lambda: client.v1.customers.list({"limit": 1})) for _ in range(4)]
    assert answers[:2] == ["ok", "ok"]
    assert ENDPOINT_RATE in answers[2:]
