"""Fixtures for the connector tests: a scripted HTTP server and the Stripe sandbox."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import stripe
from tests.connectors.scripted_http import ScriptedServer

from headwater.adapters.connectors.stripe import StripeSettings, StripeSource
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
