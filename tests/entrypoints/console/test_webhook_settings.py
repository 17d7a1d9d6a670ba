"""A source's webhook on its Settings tab (issue 15), in Chromium against a real server
and the sandbox: the endpoint URL to copy, "Register with Stripe" (an endpoint lands in
the sandbox, whose signed deliveries then arrive), the status and last delivery time,
"Remove"; and for a key without Webhook Endpoints: Write, the clear message and the
manual path (an endpoint made by hand, its signing secret pasted). The signing secret is
never shown, only masked."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
import stripe
from playwright.sync_api import Page, expect
from tests.entrypoints.console.conftest import Site, sign_in

from headwater.adapters.store import webhooks as store
from headwater.services.webhooks.receive import secret_context

pytestmark = pytest.mark.slow


def _stored_secret(site: Site, connection_id: str) -> str:
    app = site.app()
    try:
        found = store.get_endpoint(app.engine, connection_id)
        assert found is not None
        return app.cipher.decrypt(found.secret_encrypted, context=secret_context(connection_id))
    finally:
        app.close()


def _change_a_customer(site: Site) -> None:
    client = stripe.StripeClient(site.sandbox.secret_key, base_addresses={"api": site.sandbox.url})
    client.v1.customers.create({"email": f"hook-{time.monotonic_ns()}@example.com"})


def _wait_for_a_delivery(page: Page) -> None:
    """Reload the tab until it shows a delivery (the sandbox posts within a second)."""
    last = page.get_by_role("definition").filter(has_text=re.compile(r"UTC$"))
    for _ in range(60):
        page.reload()
        if last.count():
            return
        time.sleep(0.5)
    raise AssertionError("no delivery arrived from the sandbox")


def test_register_with_stripe_copy_the_url_and_remove(page: Page, site: Site, shots: Path) -> None:
    conn = site.add_source("Hooked")
    receiver = f"{site.url}/api/v1/webhooks/stripe/{conn.id}"
    sign_in(page, site.url)
    page.goto(f"{site.url}/connections/{conn.id}/settings")
    webhook = page.get_by_role("region", name="Webhook")
    expect(webhook).to_contain_text("Off: changes arrive with scheduled runs")
    expect(webhook.get_by_label("Endpoint URL")).to_have_value(receiver)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=site.url)
    webhook.get_by_role("button", name="Copy").click()
    expect(page.get_by_role("status").filter(has_text="Copied")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == receiver

    expect(webhook.get_by_label("Public base URL")).to_have_value(site.url)
    with page.expect_response(re.compile(r"/webhook/register$")) as posted:
        webhook.get_by_role("button", name="Register with Stripe").click()
    assert posted.value.status == 303
    [endpoint] = [e for e in site.sandbox.webhooks() if conn.id in e["url"]]
    assert endpoint["url"] == receiver
    assert sorted(endpoint["enabled_events"]) == [
        "customer.created",
        "customer.deleted",
        "customer.updated",
    ]
    expect(page.get_by_role("status").filter(has_text="Registered")).to_contain_text(endpoint["id"])
    webhook = page.get_by_role("region", name="Webhook")
    expect(webhook).to_contain_text(f"On: registered with Stripe as {endpoint['id']}")
    expect(webhook).to_contain_text("None yet")
    secret = _stored_secret(site, conn.id)
    assert secret.startswith("whsec_")
    expect(webhook).to_contain_text(secret[-4:])  # masked: its last characters only
    assert secret not in page.content()

    _change_a_customer(site)  # the sandbox delivers the event, signed with that secret
    _wait_for_a_delivery(page)
    assert secret not in page.content()
    page.screenshot(path=shots / "15-webhook.png", full_page=True)

    # Stripe disables an endpoint whose deliveries keep failing: the status says so.
    site.sandbox.set_webhook_disabled(endpoint["id"])
    page.reload()
    webhook = page.get_by_role("region", name="Webhook")
    expect(webhook).to_contain_text(f"Stopped: endpoint {endpoint['id']} is disabled at Stripe")
    site.sandbox.set_webhook_disabled(endpoint["id"], False)
    page.reload()
    expect(webhook).to_contain_text(f"On: registered with Stripe as {endpoint['id']}")

    webhook.get_by_role("button", name="Remove").click()
    expect(page.get_by_role("status").filter(has_text="Webhook removed")).to_contain_text(
        endpoint["id"]
    )
    assert [e for e in site.sandbox.webhooks() if conn.id in e["url"]] == []
    expect(page.get_by_role("region", name="Webhook")).to_contain_text("Off:")
    expect(
        page.get_by_role("region", name="Webhook").get_by_role("button", name="Remove")
    ).to_have_count(0)


def test_a_key_without_webhook_write_gets_the_manual_path(page: Page, site: Site) -> None:
    conn = site.add_source("Read only", "rk_test_customers_only")
    receiver = f"{site.url}/api/v1/webhooks/stripe/{conn.id}"
    sign_in(page, site.url)
    page.goto(f"{site.url}/connections/{conn.id}/settings")
    webhook = page.get_by_role("region", name="Webhook")
    webhook.get_by_role("button", name="Register with Stripe").click()
    refusal = page.get_by_role("region", name="Webhook").get_by_role("alert")
    expect(refusal).to_contain_text("lacks Webhook Endpoints: Write")
    expect(refusal).to_contain_text("set the endpoint up by hand")
    expect(page.get_by_label("Public base URL")).to_have_attribute("aria-invalid", "true")
    assert [e for e in site.sandbox.webhooks() if conn.id in e["url"]] == []

    # By hand, as in the Stripe Dashboard, with the URL the tab gives to copy.
    expect(page.get_by_label("Endpoint URL")).to_have_value(receiver)
    made = site.sandbox.add_webhook(
        receiver, events=("customer.created", "customer.updated", "customer.deleted")
    )
    page.get_by_label("Signing secret").fill("not a secret")
    page.get_by_role("button", name="Save signing secret").click()
    expect(page.get_by_label("Signing secret")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_role("alert")).to_contain_text("starts with whsec_")
    page.get_by_label("Signing secret").fill(made["secret"])
    page.get_by_role("button", name="Save signing secret").click()
    expect(page.get_by_role("status").filter(has_text="Signing secret saved")).to_be_visible()
    expect(page.get_by_role("region", name="Webhook")).to_contain_text(
        "On: endpoint set up by hand"
    )
    assert made["secret"] not in page.content()
    _change_a_customer(site)
    _wait_for_a_delivery(page)
    page.get_by_role("button", name="Remove").click()  # only forgotten: Headwater did not make it
    expect(page.get_by_role("status").filter(has_text="Webhook removed")).to_be_visible()
    assert [e["id"] for e in site.sandbox.webhooks() if conn.id in e["url"]] == [made["id"]]


def test_deleting_a_source_says_which_endpoint_is_left_at_stripe(page: Page, site: Site) -> None:
    conn = site.add_source("Hand made", "rk_test_customers_only")
    receiver = f"{site.url}/api/v1/webhooks/stripe/{conn.id}"
    made = site.sandbox.add_webhook(receiver, events=("customer.updated",))
    sign_in(page, site.url)
    page.goto(f"{site.url}/connections/{conn.id}/settings")
    page.get_by_label("Signing secret").fill(made["secret"])
    page.get_by_role("button", name="Save signing secret").click()
    expect(page.get_by_role("status").filter(has_text="Signing secret saved")).to_be_visible()

    danger = page.get_by_role("region", name="Danger zone")
    danger.get_by_label("Type the source's name to confirm").fill("Hand made")
    danger.get_by_role("button", name="Delete source").click()
    told = page.get_by_role("status").filter(has_text="deleted")
    expect(told).to_contain_text("Hand made")
    expect(told).to_contain_text("still exists at Stripe: delete it in the Stripe Dashboard")
    expect(told).to_have_class(re.compile(r"\bwarning\b"))
    # Headwater did not make it, so it is left to the user, who was told.
    assert [e["id"] for e in site.sandbox.webhooks() if conn.id in e["url"]] == [made["id"]]


def _wait_for_text(page: Page, text: str) -> None:
    """Reload the tab until the Webhook section holds `text` (refusals are counted
    within about a second of the delivery)."""
    webhook = page.get_by_role("region", name="Webhook")
    for _ in range(60):
        page.reload()
        if text in webhook.inner_text():
            return
        time.sleep(0.5)
    raise AssertionError(f"the Webhook section never said {text!r}")


def test_a_wrong_signing_secret_shows_as_refused_deliveries(page: Page, site: Site) -> None:
    conn = site.add_source("Refusing")
    sign_in(page, site.url)
    page.goto(f"{site.url}/connections/{conn.id}/settings")
    page.get_by_role("region", name="Webhook").get_by_role(
        "button", name="Register with Stripe"
    ).click()
    expect(page.get_by_role("status").filter(has_text="Registered")).to_be_visible()
    right = _stored_secret(site, conn.id)
    refused = page.get_by_role("definition").filter(
        has_text=re.compile(r"^(None|\d+) since the secret was stored")
    )
    expect(refused).to_have_text(re.compile(r"^None since the secret was stored \(.+\)$"))

    # Another endpoint's secret pasted by mistake: every delivery of this one is refused.
    wrong = "whsec_another_endpoints_secret_0123"
    page.get_by_label("Signing secret").fill(wrong)
    page.get_by_role("button", name="Save signing secret").click()
    expect(page.get_by_role("status").filter(has_text="Signing secret saved")).to_be_visible()
    _change_a_customer(site)
    _wait_for_text(page, "Refusing deliveries")
    webhook = page.get_by_role("region", name="Webhook")
    expect(webhook).to_contain_text("Refusing deliveries: deliveries are refused")
    expect(webhook).to_contain_text("store the endpoint's own")
    expect(refused).to_have_text(
        re.compile(
            r"^[1-9]\d* since the secret was stored \(.+\); the latest at .+ UTC: "
            r"signature does not match the stored secret$"
        )
    )
    for secret in (right, wrong):
        assert secret not in page.content()

    # The right secret: counts start again and Stripe's deliveries are accepted.
    page.get_by_label("Signing secret").fill(right)
    page.get_by_role("button", name="Save signing secret").click()
    expect(page.get_by_role("status").filter(has_text="Signing secret saved")).to_be_visible()
    _change_a_customer(site)
    _wait_for_a_delivery(page)
    webhook = page.get_by_role("region", name="Webhook")
    expect(webhook).to_contain_text("On: registered with Stripe as we_")
    expect(refused).to_have_text(re.compile(r"^None since the secret was stored \(.+\)$"))
    assert right not in page.content()
