"""Webhook endpoints through the official SDK: create (pinned version), retrieve,
disable (deliveries stop), delete, and the Webhook Endpoints: Write permission."""

from __future__ import annotations

import json
import time

import pytest
import stripe
from tests.sandbox.test_sandbox_faults import _Receiver

from headwater.sandbox.testing import start_sandbox


def test_endpoint_lifecycle_through_the_sdk(fresh, sdk) -> None:
    receiver = _Receiver()
    receiver.attempts = 1  # accept every delivery
    try:
        client = sdk(fresh)
        made = client.v1.webhook_endpoints.create(
            {
                "url": receiver.url,
                "enabled_events": ["customer.created", "customer.updated"],
                "api_version": "2024-06-20",
            }
        )
        assert made.secret.startswith("whsec_")
        assert made.api_version == "2024-06-20"
        assert made.status == "enabled"
        shown = client.v1.webhook_endpoints.retrieve(made.id)
        assert shown.url == receiver.url
        assert "secret" not in shown.to_dict()

        client.v1.customers.create({"email": "one@example.com"})
        deadline = time.monotonic() + 10
        while not receiver.received and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(receiver.received) == 1

        disabled = client.v1.webhook_endpoints.update(made.id, {"disabled": True})
        assert disabled.status == "disabled"
        client.v1.customers.create({"email": "two@example.com"})
        fresh.set_webhook_disabled(made.id, False)
        client.v1.customers.create({"email": "three@example.com"})
        while len(receiver.received) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        emails = [json.loads(body)["data"]["object"]["email"] for body, _ in receiver.received]
        assert emails == ["one@example.com", "three@example.com"]

        deleted = client.v1.webhook_endpoints.delete(made.id)
        assert deleted.deleted is True
        with pytest.raises(stripe.InvalidRequestError):
            client.v1.webhook_endpoints.retrieve(made.id)
    finally:
        receiver.close()


def test_a_wrong_api_version_is_refused(fresh, sdk) -> None:
    with pytest.raises(stripe.InvalidRequestError) as caught:
        sdk(fresh).v1.webhook_endpoints.create(
            {"url": "https://example.com/h", "enabled_events": ["*"], "api_version": "1999-01-01"}
        )
    assert caught.value.param == "api_version"


def test_a_key_without_webhook_write_is_refused(sdk) -> None:
    keys = {"rk_test_readonly": "customers:read,events:read"}
    with start_sandbox(keys=keys) as sandbox, pytest.raises(stripe.PermissionError) as caught:
        sdk(sandbox, "rk_test_readonly").v1.webhook_endpoints.create(
            {"url": "https://example.com/h", "enabled_events": ["*"]}
        )
    assert "Webhook Endpoints: Write" in str(caught.value)


@pytest.mark.parametrize("how", ["deleted", "disabled"])
def test_retries_stop_once_the_endpoint_is_deleted_or_disabled(how: str, sdk) -> None:
    """As at Stripe: a deleted or disabled endpoint gets nothing more, not even the
    retries of deliveries that failed before (they kept coming, signed with the old
    endpoint's secret, to a receiver that had moved on)."""
    receiver = _Receiver()
    receiver.attempts = -100  # fail every delivery
    try:
        with start_sandbox(webhook_retry_seconds=0.3) as sandbox:
            client = sdk(sandbox)
            made = client.v1.webhook_endpoints.create(
                {"url": receiver.url, "enabled_events": ["customer.created"]}
            )
            client.v1.customers.create({"email": "failing@example.com"})
            deadline = time.monotonic() + 10
            while receiver.attempts < -99 and time.monotonic() < deadline:
                time.sleep(0.02)
            assert receiver.attempts == -99  # the first attempt failed; retries are due
            if how == "deleted":
                client.v1.webhook_endpoints.delete(made.id)
            else:
                client.v1.webhook_endpoints.update(made.id, {"disabled": True})
            time.sleep(0.3 + 0.6 + 1.2 + 0.5)  # three retries' worth
            assert receiver.attempts == -99
    finally:
        receiver.close()
