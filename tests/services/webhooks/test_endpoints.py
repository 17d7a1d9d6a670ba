"""Registering with Stripe (the sandbox over HTTP): the endpoint made with the customer
events and the pinned version, replaced and removed at Stripe; the manual path when
the key lacks Webhook Endpoints: Write."""

from __future__ import annotations

import pytest
from tests.services.conftest import MakePipeline, connect

from headwater.adapters.connectors.contract import PermissionMissing
from headwater.adapters.connectors.stripe.errors import SourceUnreachable
from headwater.adapters.store import objects
from headwater.adapters.store import webhooks as store
from headwater.kernel.errors import Conflict, InvalidInput, NotFound
from headwater.sandbox.testing import start_sandbox
from headwater.services import connections
from headwater.services.app import App
from headwater.services.webhooks import endpoints

EVENTS = ["customer.created", "customer.updated", "customer.deleted"]


def test_register_replace_and_remove_at_stripe(app: App) -> None:
    with start_sandbox(customers=0, seed=6) as sandbox:
        conn = connect(app, sandbox)
        shown = endpoints.register(app, conn.id, "https://hw.example.com").public()
        url = f"https://hw.example.com/api/v1/webhooks/stripe/{conn.id}"
        [made] = sandbox.webhooks()
        assert (made["url"], made["enabled_events"], made["api_version"]) == (
            url,
            EVENTS,
            "2024-06-20",
        )
        assert shown["stripe_endpoint_id"] == made["id"]
        assert shown["url"] == url
        assert shown["secret"].startswith("whsec_")
        assert "…" in shown["secret"]

        again = endpoints.register(app, conn.id, "https://other.example.com/base/").public()
        [remade] = sandbox.webhooks()  # the first one was deleted at Stripe
        assert remade["id"] == again["stripe_endpoint_id"] != made["id"]
        assert remade["url"] == f"https://other.example.com/base/api/v1/webhooks/stripe/{conn.id}"

        removed = endpoints.remove(app, conn.id).public()
        assert removed["stripe_endpoint_id"] == remade["id"]
        assert sandbox.webhooks() == []
        assert store.get_endpoint(app.engine, conn.id) is None


def test_a_bad_public_url_is_refused_before_stripe_is_called(app: App) -> None:
    with start_sandbox(customers=0, seed=6) as sandbox:
        conn = connect(app, sandbox)
        for bad in ["hw.example.com", "ftp://x", "https://", "https://h/?q=1", "http://h/#f"]:
            with pytest.raises(InvalidInput) as caught:
                endpoints.register(app, conn.id, bad)
            assert caught.value.location == "url"
        assert sandbox.webhooks() == []


def test_a_public_url_with_a_password_is_refused_without_repeating_it(app: App) -> None:
    # A password in the URL (user:password@host) was kept in plain text and shown by
    # the webhook's settings (API, console), and repeated by the error for a bad scheme.
    with start_sandbox(customers=0, seed=6) as sandbox:
        conn = connect(app, sandbox)
        for bad in ["https://hook:s3cr3tPW@hw.example.com", "ftp://hook:s3cr3tPW@hw.example.com"]:
            with pytest.raises(InvalidInput) as registered:
                endpoints.register(app, conn.id, bad)
            with pytest.raises(InvalidInput) as by_hand:
                endpoints.set_secret(app, conn.id, "whsec_" + "a" * 32, bad)
            for caught in (registered, by_hand):
                assert caught.value.location == "url"
                assert "s3cr3tPW" not in caught.value.message
        assert sandbox.webhooks() == []
        assert endpoints.show(app, conn.id).endpoint is None


def test_the_endpoint_url_given_as_the_public_base_url_is_registered_as_it_is(app: App) -> None:
    """The console shows the endpoint URL (with a Copy button) just above the "Public
    base URL" field; pasting it there registered the endpoint at that URL followed by
    the receiver's path again, where nothing answers but 404: Stripe's deliveries all
    failed while the webhook showed as on."""
    with start_sandbox(customers=0, seed=6) as sandbox:
        conn = connect(app, sandbox)
        other = connections.add_stripe(app, "other", sandbox.secret_key, sandbox.url, 100.0)
        url = f"https://hw.example.com/base/api/v1/webhooks/stripe/{conn.id}"
        for given in [url, url + "/"]:
            shown = endpoints.register(app, conn.id, given).public()
            [made] = sandbox.webhooks()
            assert made["url"] == shown["url"] == url
        shown = endpoints.set_secret(app, conn.id, "whsec_byhand12345", url).public()
        assert shown["url"] == url
        # Another connection's endpoint URL names the wrong connection: refused.
        with pytest.raises(InvalidInput) as caught:
            endpoints.register(app, other.id, url)
        assert caught.value.location == "url"
        assert "https://hw.example.com/base" in caught.value.message
        assert store.get_endpoint(app.engine, other.id) is None
        assert len(sandbox.webhooks()) == 1


def test_a_key_without_webhook_write_gets_the_manual_path(app: App) -> None:
    keys = {"rk_test_nowebhooks": "customers:read,events:read"}
    with start_sandbox(customers=0, seed=6, keys=keys) as sandbox:
        conn = connect(app, sandbox, key="rk_test_nowebhooks")
        with pytest.raises(PermissionMissing) as caught:
            endpoints.register(app, conn.id, "https://hw.example.com")
        message = caught.value.message
        assert "Webhook Endpoints: Write" in message
        assert f"https://hw.example.com/api/v1/webhooks/stripe/{conn.id}" in message
        assert f"headwater connections webhook {conn.id} --secret-env" in message
        assert "rk_test_nowebhooks" not in message
        assert store.get_endpoint(app.engine, conn.id) is None


def test_deleting_the_connection_deletes_its_endpoint_at_stripe(app: App) -> None:
    with start_sandbox(customers=0, seed=6) as sandbox:
        conn = connect(app, sandbox)
        endpoints.register(app, conn.id, "https://hw.example.com")
        assert len(sandbox.webhooks()) == 1
        assert connections.delete_connection(app, conn.id) is None  # nothing left to do
        assert sandbox.webhooks() == []
        assert store.get_endpoint(app.engine, conn.id) is None
        with pytest.raises(NotFound):
            connections.get_connection(app, conn.id)


def test_when_stripe_refuses_the_connection_goes_and_says_what_to_remove(app: App) -> None:
    keys = {"rk_test_nowebhooks": "customers:read,events:read"}
    with start_sandbox(customers=0, seed=6, keys=keys) as sandbox:
        conn = connect(app, sandbox)
        made = endpoints.register(app, conn.id, "https://hw.example.com").public()
        connections.rotate_key(app, conn.id, "rk_test_nowebhooks")  # cannot delete it
        note = connections.delete_connection(app, conn.id)
        assert note is not None
        assert made["stripe_endpoint_id"] in note
        assert "Webhook Endpoints: Write" in note
        assert "Stripe Dashboard" in note
        with pytest.raises(NotFound):  # deleted all the same
            connections.get_connection(app, conn.id)
        assert [e["id"] for e in sandbox.webhooks()] == [made["stripe_endpoint_id"]]


def test_an_endpoint_made_by_hand_is_named_for_removal_by_hand(app: App) -> None:
    with start_sandbox(customers=0, seed=6) as sandbox:
        conn = connect(app, sandbox)
        endpoints.set_secret(app, conn.id, "whsec_madebyhand123", "https://hw.example.com")
        note = connections.delete_connection(app, conn.id)
        assert note is not None
        assert f"https://hw.example.com/api/v1/webhooks/stripe/{conn.id}" in note
        assert "Stripe Dashboard" in note


def test_a_pipeline_made_meanwhile_keeps_the_connection_and_its_webhook_secret(
    app: App, make_pipeline: MakePipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pipeline created between the delete's check and its removal (another request):
    the delete is refused as a whole.  It used to drop the webhook settings first, in
    their own transaction, and then fail on the pipeline's reference: the connection
    stayed, its pipeline's webhooks refused for want of a secret."""
    with start_sandbox(customers=0, seed=6) as sandbox:
        conn = connect(app, sandbox)
        endpoints.register(app, conn.id, "https://hw.example.com")
        make_pipeline(conn)
        with pytest.raises(Conflict) as caught:  # the delete's own check sees it
            connections.delete_connection(app, conn.id)
        assert "used by pipelines" in caught.value.message
        assert store.get_endpoint(app.engine, conn.id) is not None
        # The check saw no pipeline: another transaction made one after it.
        monkeypatch.setattr(objects, "_refuse_if_used", lambda conn, connection_id: None)
        with pytest.raises(Conflict) as caught:
            connections.delete_connection(app, conn.id)
        assert "used by a pipeline" in caught.value.message
        assert connections.get_connection(app, conn.id).id == conn.id
        assert store.get_endpoint(app.engine, conn.id) is not None
        assert len(sandbox.webhooks()) == 1


def test_a_previous_endpoint_stripe_cannot_delete_is_named_not_an_error(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Registering again saves the new endpoint's secret, then deletes the previous
    endpoint at Stripe: when that delete failed, the whole registration answered an
    error although the new endpoint was made and saved (a retry made yet another)."""
    with start_sandbox(customers=0, seed=6) as sandbox:
        conn = connect(app, sandbox)
        first = endpoints.register(app, conn.id, "https://hw.example.com").public()

        def unreachable(*_args: object, **_kw: object) -> bool:
            raise SourceUnreachable("Stripe could not be reached (timed out)", 2, None)

        monkeypatch.setattr(endpoints.stripe_endpoints, "delete_endpoint", unreachable)
        again = endpoints.register(app, conn.id, "https://hw.example.com").public()
        assert again["stripe_endpoint_id"] != first["stripe_endpoint_id"]
        assert (
            store.get_endpoint(app.engine, conn.id).stripe_endpoint_id
            == again["stripe_endpoint_id"]
        )
        warning = again["warning"]
        assert first["stripe_endpoint_id"] in warning
        assert "timed out" in warning
        assert "Stripe Dashboard" in warning
        assert endpoints.show(app, conn.id).public()["warning"] is None


def test_a_connection_whose_key_no_longer_decrypts_can_still_be_deleted(app: App) -> None:
    """After the secret key changed, a connection's stored key cannot be decrypted:
    deleting it decrypted the key first, whatever else, and so failed forever."""
    with start_sandbox(customers=0, seed=6) as sandbox:
        plain = connect(app, sandbox)
        hooked = connect(app, sandbox)
        made = endpoints.register(app, hooked.id, "https://hw.example.com").public()
        for conn in (plain, hooked):
            conn.api_key_encrypted = app.cipher.encrypt("sk_test_x", context="elsewhere")
            objects.save(app.engine, conn, only=["api_key_encrypted"])
        assert connections.delete_connection(app, plain.id) is None
        note = connections.delete_connection(app, hooked.id)
        assert note is not None
        assert made["stripe_endpoint_id"] in note
        assert "Stripe Dashboard" in note
        for conn in (plain, hooked):
            with pytest.raises(NotFound):
                connections.get_connection(app, conn.id)


def test_registering_over_an_endpoint_made_by_hand_says_it_is_left_at_stripe(app: App) -> None:
    """Registering replaced the stored secret of an endpoint made by hand (which
    Headwater cannot see at Stripe) and said nothing: that endpoint stayed, every
    delivery of it refused from then on, until Stripe disabled it."""
    with start_sandbox(customers=0, seed=6) as sandbox:
        conn = connect(app, sandbox)
        url = f"https://hw.example.com/api/v1/webhooks/stripe/{conn.id}"
        by_hand = sandbox.add_webhook(url, events=tuple(EVENTS))
        endpoints.set_secret(app, conn.id, by_hand["secret"], "https://hw.example.com")
        made = endpoints.register(app, conn.id, "https://hw.example.com").public()
        assert {e["id"] for e in sandbox.webhooks()} == {by_hand["id"], made["stripe_endpoint_id"]}
        warning = made["warning"]
        assert warning is not None
        assert url in warning
        assert "Stripe Dashboard" in warning
        assert "refused" in warning
        # Registering again replaces an endpoint Headwater made: nothing to say.
        again = endpoints.register(app, conn.id, "https://hw.example.com").public()
        assert again["warning"] is None
