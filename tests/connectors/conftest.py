"""Fixtures for the connector tests: a scripted HTTP server and the Stripe sandbox."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import stripe
from tests.connectors.scripted_http import ScriptedServer

from headwater.adapters.connectors.stripe import StripeSettings, StripeSource
from headwater.adapters.connectors.stripe.concurrency import ConcurrencySettings, Outcome
from headwater.adapters.connectors.stripe.flight import Gate
from headwater.adapters.connectors.stripe.full import _Run
from headwater.adapters.connectors.stripe.http import StripeHTTP
from headwater.adapters.connectors.stripe.ratelimit import RequestBudget
from headwater.sandbox.testing import RunningSandbox, start_sandbox


@pytest.fixture
def scripted() -> Iterator[ScriptedServer]:
    server = ScriptedServer()
    yield server
    server.close()


@pytest.fixture(scope="module")
def big_sandbox() -> Iterator[RunningSandbox]:
    """3,000 customers over the default created span; tests must not mutate it."""
    with start_sandbox(customers=3000, seed=11) as sandbox:
        yield sandbox


@pytest.fixture
def sandbox() -> Iterator[RunningSandbox]:
    """A small private sandbox that a test may mutate and fault as it likes."""
    with start_sandbox(
        customers=120,
        seed=5,
        keys={
            "rk_test_events_only": "events:read",
            "rk_test_customers_events": "customers:read,events:read",
        },
    ) as running:
        yield running


def stripe_client(sandbox: RunningSandbox) -> stripe.StripeClient:
    """The official SDK pointed at the sandbox, as a merchant's own code would be."""
    return stripe.StripeClient(sandbox.secret_key, base_addresses={"api": sandbox.url})


def source_for(sandbox: RunningSandbox, **overrides: Any) -> StripeSource:
    """A source with fast backoff, so fault tests do not sleep for long."""
    options: dict[str, Any] = {
        "base_url": sandbox.url,
        "api_key": sandbox.secret_key,
        "requests_per_second": 500.0,
        "backoff_base": 0.01,
        "backoff_cap": 0.05,
        "timeout": 10.0,
    }
    options.update(overrides)
    return StripeSource(StripeSettings(**options))


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def warm_gate(clock: FakeClock, latency: float, cap: int = 20) -> Gate:
    """A gate (25 requests/s) that has seen 30 answers, one at a time, `latency` s each."""
    gate = Gate(ConcurrencySettings(budget=25.0, cap=cap, initial=8), clock)
    for _ in range(30):
        gate.acquire()
        flight = gate.sent()
        clock.now += latency
        gate.done(flight, Outcome.ANSWERED)
    return gate


def run_on(gate: Gate, workers: int = 20) -> tuple[_Run, StripeHTTP]:
    """A full read's state over `gate` (nothing is sent: the tests ask it to plan)."""
    settings = StripeSettings(base_url="http://127.0.0.1:9", api_key="sk_test_x" * 3)
    http = StripeHTTP(settings, limiter=RequestBudget(25.0), gate=gate)
    return _Run(http, page_size=100, workers=workers), http


def eventually(check: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True
