"""`headwater connections webhook`: register with Stripe (the sandbox), show, a
hand-made endpoint's secret from the environment, remove; secrets never printed."""

from __future__ import annotations

from pathlib import Path

from tests.entrypoints.test_cli import _connection, doc, invoke

from headwater.sandbox.testing import start_sandbox


def test_register_show_set_secret_and_remove(home: Path) -> None:
    keys = {"rk_test_readonly": "customers:read,events:read"}
    with start_sandbox(customers=0, seed=9, keys=keys) as sandbox:
        conn = _connection(sandbox)["id"]
        empty = doc("connections", "webhook", conn)
        assert empty["configured"] is False
        assert empty["path"] == f"/api/v1/webhooks/stripe/{conn}"

        made = doc("connections", "webhook", conn, "--url", "https://hw.example.com")
        [endpoint] = sandbox.webhooks()
        assert made["stripe_endpoint_id"] == endpoint["id"]
        assert endpoint["url"] == f"https://hw.example.com/api/v1/webhooks/stripe/{conn}"
        text = invoke("connections", "webhook", conn).output
        assert endpoint["url"] in text
        assert "whsec_" in text  # masked: a prefix and the last characters
        assert made["secret"] in text

        secret = "whsec_from_the_dashboard_0123"
        hand = doc(
            "connections",
            "webhook",
            conn,
            "--secret-env",
            "HOOK_SECRET",
            env={"HOOK_SECRET": secret},
        )
        assert secret not in str(hand)
        assert hand["secret"].endswith(secret[-4:])
        missing = invoke("connections", "webhook", conn, "--secret-env", "NOT_SET_ANYWHERE")
        assert missing.exit_code != 0
        assert "NOT_SET_ANYWHERE" in missing.output

        removed = invoke("connections", "webhook", conn, "--remove")
        assert removed.exit_code == 0, removed.output
        assert sandbox.webhooks() == []
        assert doc("connections", "webhook", conn)["configured"] is False
        both = invoke("connections", "webhook", conn, "--remove", "--url", "https://x.example")
        assert both.exit_code != 0

        # A key without Webhook Endpoints: Write: a clear message and the manual path.
        limited = doc(
            "connections",
            "add",
            "stripe",
            "--name",
            "ro",
            "--base-url",
            sandbox.url,
            stdin="rk_test_readonly\n",
        )["id"]
        refused = invoke("connections", "webhook", limited, "--url", "https://hw.example.com")
        assert refused.exit_code != 0
        assert "Webhook Endpoints: Write" in refused.output
        assert "--secret-env" in refused.output
        assert "rk_test_readonly" not in refused.output

        # Deleting a connection deletes its endpoint at Stripe; one made by hand is
        # named for removal in the Dashboard.
        doc("connections", "webhook", conn, "--url", "https://hw.example.com")
        assert len(sandbox.webhooks()) == 1
        gone = invoke("connections", "delete", conn)
        assert gone.exit_code == 0, gone.output
        assert "warning" not in gone.output
        assert sandbox.webhooks() == []
        env = {"HOOK_SECRET": secret}
        doc("connections", "webhook", limited, "--secret-env", "HOOK_SECRET", env=env)
        by_hand = invoke("connections", "delete", limited)
        assert by_hand.exit_code == 0, by_hand.output
        assert "warning:" in by_hand.output
        assert "Stripe Dashboard" in by_hand.output


def test_delete_prints_the_apis_document_with_json(home: Path) -> None:
    """``connections delete --json`` gives what ``DELETE /connections/{id}`` answers,
    ``{"id", "deleted", "warning"}``: a script learns of the endpoint left at Stripe
    (the command had no --json, so a script could not read the warning)."""
    secret = "whsec_from_the_dashboard_0123"
    with start_sandbox(customers=0, seed=9) as sandbox:
        registered = _connection(sandbox)["id"]
        doc("connections", "webhook", registered, "--url", "https://hw.example.com")
        assert doc("connections", "delete", registered) == {
            "id": registered,
            "deleted": True,
            "warning": None,
        }
        assert sandbox.webhooks() == []

        by_hand = _connection(sandbox)["id"]
        env = {"HOOK_SECRET": secret}
        doc("connections", "webhook", by_hand, "--secret-env", "HOOK_SECRET", env=env)
        gone = doc("connections", "delete", by_hand)
        assert gone["id"] == by_hand
        assert gone["deleted"] is True
        assert "Stripe Dashboard" in gone["warning"]
    assert doc("connections", "list") == []


def test_text_shows_values_as_their_documents_do_not_as_python(home: Path) -> None:
    """`connections show` and `connections webhook` printed Python's spelling of values
    (``None``, ``True``, ``{'customers_read': True}``, ``['customer.created']``), which
    is neither the ``--json`` document nor anything a user types back; they are now
    shown as in the document (``null``, ``true``, JSON for lists and objects)."""
    with start_sandbox(customers=0, seed=9) as sandbox:
        conn = _connection(sandbox)["id"]
        shown = invoke("connections", "show", conn).stdout
        assert 'permissions: {"customers_read": true, "events_read": true}' in shown, shown
        assert "livemode: false" in shown, shown
        assert "account_id: acct_" in shown, shown  # a string as it is, unquoted
        doc("connections", "webhook", conn, "--url", "https://hw.example.com")
        hook = invoke("connections", "webhook", conn).stdout
    assert "last_delivery_at: null" in hook, hook
    assert "configured: true" in hook, hook
    events = '["customer.created", "customer.updated", "customer.deleted"]'
    assert f"enabled_events: {events}" in hook, hook
    for python in ("None", "True", "False", "'"):
        assert python not in shown + hook, (python, shown, hook)
