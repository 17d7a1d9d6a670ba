"""Fixtures: sandboxes started in subprocesses on free loopback ports."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import stripe

from headwater.sandbox.testing import RunningSandbox, start_sandbox

SEEDED_CUSTOMERS = 437  # not a multiple of any page size used in the tests


@pytest.fixture(scope="module")
def seeded() -> Iterator[RunningSandbox]:
    """A read-only sandbox with generated customers, shared by a module's tests."""
    with start_sandbox(customers=SEEDED_CUSTOMERS, seed=7) as sandbox:
        yield sandbox


@pytest.fixture
def fresh() -> Iterator[RunningSandbox]:
    """An empty sandbox of the test's own, free to mutate and to fault."""
    with start_sandbox(customers=0, seed=3) as sandbox:
        yield sandbox


SdkFactory = Callable[..., stripe.StripeClient]


@pytest.fixture
def sdk() -> SdkFactory:
    """``sdk(sandbox, key=None)``: the official Stripe SDK pointed at a sandbox.

    SDK-side retries are off so that tests see every injected fault.
    """

    def make(sandbox: RunningSandbox, key: str | None = None) -> stripe.StripeClient:
        return stripe.StripeClient(
            key or sandbox.secret_key, base_addresses={"api": sandbox.url}, max_network_retries=0
        )

    return make
