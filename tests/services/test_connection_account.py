"""A connection reads one Stripe account in one mode: its pipelines' identities are that
account's customers, their saved positions that account's event ids, its webhook
endpoint registered at that account.  A new key (rotate-key) or a new Stripe API URL
with its key that belongs to another account, or to the other mode (a test key for a
live connection), is refused at ``api_key`` naming both, and the connection, its key
and its webhook stay as they were.  Before this, such a key was taken: the next
incremental run read the new account's events after the old account's position, the
old account's customers stayed imported, and the endpoint stayed at the old account."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from headwater.adapters.connectors.stripe.keys import account_in_message
from headwater.adapters.store import objects
from headwater.kernel.errors import InvalidInput
from headwater.sandbox.testing import RunningSandbox, start_sandbox
from headwater.services import connections
from headwater.services.app import App
from headwater.services.webhooks import endpoints

LIVE_KEY = "sk_live_sandboxlive"


@pytest.fixture
def first() -> Iterator[RunningSandbox]:
    with start_sandbox(customers=3, seed=3, account="acct_first", keys={LIVE_KEY: "*"}) as sb:
        yield sb


@pytest.fixture
def second() -> Iterator[RunningSandbox]:
    with start_sandbox(customers=3, seed=4, account="acct_second") as sb:
        yield sb


def _names(error: InvalidInput, *words: str) -> None:
    for word in words:
        assert word in error.message, error.message


def _refused(call: object) -> InvalidInput:
    with pytest.raises(InvalidInput) as raised:
        call()  # type: ignore[operator]
    assert raised.value.location == "api_key", raised.value
    return raised.value


def test_a_connection_records_the_account_its_key_belongs_to(
    app: App, first: RunningSandbox
) -> None:
    conn = connections.add_stripe(app, "A", first.secret_key, first.url)
    assert conn.account_id == "acct_first"
    assert conn.public()["account_id"] == "acct_first"
    assert connections.get_connection(app, conn.id).account_id == "acct_first"


def test_a_key_of_another_account_is_refused_and_nothing_changes(
    app: App, first: RunningSandbox, second: RunningSandbox
) -> None:
    conn = connections.add_stripe(app, "A", first.secret_key, first.url)
    hook = endpoints.register(app, conn.id, "https://headwater.example.com")
    # Moving to the second account's URL with its key: refused, naming both accounts.
    error = _refused(
        lambda: connections.update_connection(
            app, conn.id, base_url=second.url, api_key=second.secret_key
        )
    )
    _names(error, "acct_second", "acct_first", "headwater connections add stripe")
    assert "sk_test_sandbox" not in error.message
    assert connections.get_connection(app, conn.id) == conn
    assert endpoints.show(app, conn.id).public() == hook.public()
    assert len(first.webhooks()) == 1
    assert second.webhooks() == []

    # The same URL now answering as another account (a key of another account given to
    # rotate-key): the first sandbox stops, the second account answers at its address.
    port = int(first.url.rsplit(":", 1)[1])
    first.stop()
    with start_sandbox(customers=3, seed=4, account="acct_second", port=port) as moved:
        assert moved.url == conn.base_url
        error = _refused(lambda: connections.rotate_key(app, conn.id, moved.secret_key))
        _names(error, "acct_second", "acct_first")
    assert connections.get_connection(app, conn.id) == conn


def test_a_key_of_the_other_mode_is_refused(app: App, first: RunningSandbox) -> None:
    conn = connections.add_stripe(app, "A", first.secret_key, first.url)
    error = _refused(lambda: connections.rotate_key(app, conn.id, LIVE_KEY))
    _names(error, "live mode", "test mode")
    assert connections.get_connection(app, conn.id) == conn

    live = connections.add_stripe(app, "L", LIVE_KEY, first.url)
    error = _refused(lambda: connections.rotate_key(app, live.id, first.secret_key))
    _names(error, "live mode", "test mode")
    assert connections.get_connection(app, live.id) == live


def test_a_key_of_the_same_account_is_taken(app: App, first: RunningSandbox) -> None:
    conn = connections.add_stripe(app, "A", first.secret_key, first.url)
    rotated = connections.rotate_key(app, conn.id, "rk_test_customers_only")
    assert rotated.api_key_masked == "rk_test_…only"
    assert rotated.account_id == "acct_first"


def test_a_connection_saved_before_accounts_were_recorded_learns_its_account(
    app: App, first: RunningSandbox
) -> None:
    conn = connections.add_stripe(app, "A", first.secret_key, first.url)
    conn.account_id = None
    objects.save(app.engine, conn, only=["account_id"])
    rotated = connections.rotate_key(app, conn.id, first.secret_key)
    assert rotated.account_id == "acct_first"


def test_the_account_is_read_from_stripes_permission_error() -> None:
    message = (
        "The Stripe key lacks the 'access to /v1/account' permission needed for GET "
        "/v1/account (HTTP 403 invalid_request_error: The provided key 'rk_live_…AbCd' "
        "does not have the required permissions for this endpoint on account "
        "'acct_1Nv0FGQ9RKHgCVdK'. Having the 'rak_accounts_kyc_basic_read' permission "
        "would allow this request to continue.)"
    )
    assert account_in_message(message) == "acct_1Nv0FGQ9RKHgCVdK"
    assert account_in_message("no account named here") is None
