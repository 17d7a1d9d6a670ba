"""Sessions: sign-in (rate-limited), stored as a digest, expiry, sign-out, workspaces."""

from __future__ import annotations

import hashlib
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
import sqlalchemy as sa

from headwater.adapters.store import accounts
from headwater.adapters.store.auth_tables import sessions as session_table
from headwater.kernel.entities import utcnow
from headwater.kernel.errors import Forbidden, NotFound, RateLimited, Unauthenticated
from headwater.services.app import App
from headwater.services.auth import Principal, invitations, sessions, users, workspaces

PASSWORD = "correct horse battery"


@pytest.fixture
def ada(app: App) -> str:
    return users.add_user(app, "ada@example.com", PASSWORD).id


def _stored(app: App) -> list[dict[str, object]]:
    with app.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.select(session_table))]


def test_a_session_is_stored_as_a_digest_and_revoked_by_sign_out(app: App, ada: str) -> None:
    raw, session = sessions.sign_in(app, "ADA@example.com", PASSWORD, address="10.0.0.1")
    [row] = _stored(app)
    assert row["secret_hash"] == hashlib.sha256(raw.encode()).hexdigest()
    assert raw not in repr(row)
    assert session.workspace_id == app.workspace_id
    assert session.expires_at - session.created_at == sessions.LIFETIME
    found = sessions.principal_for_session(app, raw)
    assert found == Principal(app.workspace_id, user_id=ada, session_id=session.id)
    sessions.sign_out(app, raw)
    assert sessions.principal_for_session(app, raw) is None
    assert _stored(app)[0]["revoked_at"] is not None
    sessions.sign_out(app, raw)  # twice: harmless
    assert sessions.principal_for_session(app, raw + "x") is None
    assert sessions.principal_for_session(app, "") is None


def test_a_new_password_ends_the_sessions_of_the_old_one(app: App, ada: str) -> None:
    """Sessions opened with the old password lasted their 7 days after a change."""
    raw, _ = sessions.sign_in(app, "ada@example.com", PASSWORD, address="10.0.0.1")
    users.add_user(app, "bob@example.com", PASSWORD)
    bobs, _ = sessions.sign_in(app, "bob@example.com", PASSWORD, address="10.0.0.2")
    users.set_password(app, "ada@example.com", "another password")
    assert sessions.principal_for_session(app, raw) is None
    assert sessions.principal_for_session(app, bobs) is not None  # nobody else's
    fresh, _ = sessions.sign_in(app, "ada@example.com", "another password", address="10.0.0.1")
    assert sessions.principal_for_session(app, fresh) is not None


def test_an_expired_session_authenticates_nobody(app: App, ada: str) -> None:
    raw, _session = sessions.sign_in(app, "ada@example.com", PASSWORD, address="10.0.0.1")
    with app.engine.begin() as conn:
        conn.execute(sa.update(session_table).values(expires_at=utcnow() - timedelta(seconds=1)))
    assert sessions.principal_for_session(app, raw) is None
    with pytest.raises(Unauthenticated):
        sessions.choose_workspace(app, raw, app.workspace_id)


def test_a_wrong_password_and_an_unknown_email_are_refused_alike(app: App, ada: str) -> None:
    messages = set()
    for email, password in (("ada@example.com", "wrong horse"), ("bob@example.com", PASSWORD)):
        with pytest.raises(Unauthenticated) as caught:
            sessions.sign_in(app, email, password, address="10.0.0.1")
        messages.add(caught.value.message)
    assert len(messages) == 1
    assert _stored(app) == []


def test_an_unknown_email_is_checked_against_a_hash_as_costly_as_a_users() -> None:
    """The hash an unknown email is checked against (so that it takes as long to refuse
    as a wrong password) was made at import, 0.19 s of every server's and every account
    command's start; it is now written down, and must carry the parameters a user's
    password is hashed with today (a hash made with others would be upgraded)."""
    made = users.hasher.hash("a user's password")
    assert made.split("$")[:4] == users.DUMMY_HASH.split("$")[:4]  # algorithm, parameters
    assert users.hasher.verify_and_update("not a password of anyone", users.DUMMY_HASH) == (
        True,
        None,
    )


def _fail(app: App, email: str, address: str) -> None:
    with pytest.raises(Unauthenticated):
        sessions.sign_in(app, email, "wrong horse", address=address)


def test_an_account_refuses_sign_in_after_repeated_failures(app: App, ada: str) -> None:
    for _ in range(sessions.ACCOUNT_LIMIT):
        _fail(app, "ada@example.com", "10.0.0.1")
    # Even with the right password, from anywhere it has not signed in from.
    with pytest.raises(RateLimited) as caught:
        sessions.sign_in(app, "Ada@example.com", PASSWORD, address="10.9.9.9")
    assert 0 < caught.value.retry_after <= sessions.WINDOW.total_seconds() + 1
    assert _stored(app) == []
    users.add_user(app, "bob@example.com", PASSWORD)  # another account is not affected
    sessions.sign_in(app, "bob@example.com", PASSWORD, address="10.0.0.1")


def test_failures_from_elsewhere_do_not_lock_the_owner_out(app: App, ada: str) -> None:
    """Anyone who knew an email could lock its owner out: `ACCOUNT_LIMIT` wrong
    passwords from anywhere refused the right one from everywhere for `WINDOW`.  The
    addresses the owner signed in from still get in; the failing one and new ones do
    not."""
    sessions.sign_in(app, "ada@example.com", PASSWORD, address="10.0.0.1")  # her usual one
    for _ in range(sessions.ACCOUNT_LIMIT):
        _fail(app, "ada@example.com", "10.6.6.6")
    for elsewhere in ("10.6.6.6", "10.7.7.7"):
        with pytest.raises(RateLimited):
            sessions.sign_in(app, "ada@example.com", PASSWORD, address=elsewhere)
    sessions.sign_in(app, "ada@example.com", PASSWORD, address="10.0.0.1")


def test_guesses_spread_over_addresses_are_limited_for_the_account(app: App, ada: str) -> None:
    """One failure from each of many addresses: after `ACCOUNT_LIMIT` of them, no
    address the account has not signed in from gets its password checked."""
    sessions.sign_in(app, "ada@example.com", PASSWORD, address="10.0.0.1")
    for i in range(sessions.ACCOUNT_LIMIT):
        _fail(app, "ada@example.com", f"10.6.0.{i}")
    with pytest.raises(RateLimited):
        sessions.sign_in(app, "ada@example.com", "another guess", address="10.6.1.1")
    sessions.sign_in(app, "ada@example.com", PASSWORD, address="10.0.0.1")


def test_a_known_address_is_limited_by_its_own_failures(app: App, ada: str) -> None:
    sessions.sign_in(app, "ada@example.com", PASSWORD, address="10.0.0.1")
    for _ in range(sessions.ACCOUNT_LIMIT):
        _fail(app, "ada@example.com", "10.0.0.1")
    with pytest.raises(RateLimited):
        sessions.sign_in(app, "ada@example.com", PASSWORD, address="10.0.0.1")


def test_an_address_is_known_for_a_while_only(
    app: App, ada: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    long_ago = utcnow() - sessions.KNOWN_FOR - timedelta(hours=1)
    monkeypatch.setattr(sessions, "utcnow", lambda: long_ago)
    sessions.sign_in(app, "ada@example.com", PASSWORD, address="10.0.0.1")
    monkeypatch.undo()
    for _ in range(sessions.ACCOUNT_LIMIT):
        _fail(app, "ada@example.com", "10.6.6.6")
    with pytest.raises(RateLimited):
        sessions.sign_in(app, "ada@example.com", PASSWORD, address="10.0.0.1")


def test_a_success_starts_the_account_count_over(app: App, ada: str) -> None:
    for _ in range(sessions.ACCOUNT_LIMIT - 1):
        _fail(app, "ada@example.com", "10.0.0.1")
    sessions.sign_in(app, "ada@example.com", PASSWORD, address="10.0.0.1")
    for _ in range(sessions.ACCOUNT_LIMIT - 1):
        _fail(app, "ada@example.com", "10.0.0.1")
    sessions.sign_in(app, "ada@example.com", PASSWORD, address="10.0.0.1")


def test_an_address_is_refused_after_repeated_failures_on_any_accounts(app: App, ada: str) -> None:
    for i in range(sessions.ADDRESS_LIMIT):
        _fail(app, f"user{i}@example.com", "10.0.0.2")
    with pytest.raises(RateLimited):
        sessions.sign_in(app, "ada@example.com", PASSWORD, address="10.0.0.2")
    sessions.sign_in(app, "ada@example.com", PASSWORD, address="10.0.0.3")


def test_failures_on_other_accounts_do_not_refuse_an_account_its_known_address(
    app: App, ada: str
) -> None:
    """Behind one address (an office's NAT, a proxy whose forwarded headers are not
    trusted), twenty wrong passwords for any emails refused every user of that address
    for a quarter of an hour, the owners who always sign in from there too."""
    sessions.sign_in(app, "ada@example.com", PASSWORD, address="10.0.0.9")  # her office
    for i in range(sessions.ADDRESS_LIMIT):
        _fail(app, f"user{i}@example.com", "10.0.0.9")
    sessions.sign_in(app, "ada@example.com", PASSWORD, address="10.0.0.9")
    with pytest.raises(RateLimited):  # the address is still refused to the others
        sessions.sign_in(app, "user0@example.com", "a guess", address="10.0.0.9")


def test_a_session_chooses_among_its_users_workspaces(app: App, ada: str) -> None:
    acme = workspaces.add_workspace(app, "Acme", member_id=ada)
    elsewhere = workspaces.add_workspace(app, "Elsewhere")
    raw, _ = sessions.sign_in(app, "ada@example.com", PASSWORD, address="10.0.0.1")
    assert sessions.choose_workspace(app, raw, acme.id).workspace_id == acme.id
    found = sessions.principal_for_session(app, raw)
    assert found is not None
    assert found.workspace_id == acme.id
    for not_mine in (elsewhere.id, "ws_nope"):
        with pytest.raises(NotFound):
            sessions.choose_workspace(app, raw, not_mine)
    found = sessions.principal_for_session(app, raw)
    assert found is not None
    assert found.workspace_id == acme.id


def test_sign_in_prefers_the_apps_workspace_then_the_oldest(app: App) -> None:
    acme = workspaces.add_workspace(app, "Acme")
    user = users.add_user(app.in_workspace(acme.id), "ada@example.com", PASSWORD)
    _, session = sessions.sign_in(app, "ada@example.com", PASSWORD, address="10.0.0.1")
    assert session.workspace_id == acme.id  # not a member of the default workspace
    invited = invitations.invite(app, "ada@example.com")
    invitations.accept(app, user.id, invited.id)
    _, session = sessions.sign_in(app, "ada@example.com", PASSWORD, address="10.0.0.1")
    assert session.workspace_id == app.workspace_id
    assert user.id == session.user_id


def test_a_user_of_no_workspace_cannot_sign_in(app: App, ada: str) -> None:
    from headwater.adapters.store.auth_tables import memberships

    with app.engine.begin() as conn:
        conn.execute(sa.delete(memberships))
    with pytest.raises(Forbidden):
        sessions.sign_in(app, "ada@example.com", PASSWORD, address="10.0.0.1")


def test_concurrent_guesses_get_no_more_password_checks_than_the_limit(
    app: App, ada: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The limit was checked, then the password (argon2, ~50 ms), then the attempt
    recorded: thirty guesses sent at once all passed the check before any was recorded.
    Each attempt now takes its place before it is checked."""
    checked = []
    authenticate = users.authenticate

    def counting(app: App, email: str, password: str) -> object:
        checked.append(password)
        return authenticate(app, email, password)

    monkeypatch.setattr(users, "authenticate", counting)
    barrier = threading.Barrier(30)

    def guess(i: int) -> str:
        barrier.wait()
        try:
            sessions.sign_in(app, "ada@example.com", f"guess {i}", address=f"10.1.0.{i}")
        except RateLimited:
            return "limited"
        except Unauthenticated:
            return "wrong"
        return "signed in"

    with ThreadPoolExecutor(30) as pool:
        outcomes = list(pool.map(guess, range(30)))
    assert len(checked) <= sessions.ACCOUNT_LIMIT
    assert outcomes.count("wrong") == len(checked)
    assert outcomes.count("limited") == 30 - len(checked)
    # The checked guesses count as failures; the refused ones do not.
    since = utcnow() - sessions.WINDOW
    key = users.email_key("ada@example.com")
    assert len(accounts.failures_since(app.engine, since, email_key=key)) == len(checked)
