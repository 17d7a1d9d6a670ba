"""Sign-in, server-side sessions and sign-out (DESIGN.md §8).

A session is a 256-bit random id, given to the browser once (the ``headwater_session``
cookie) and stored as its SHA-256 digest, valid for `LIFETIME` unless revoked by
sign-out. It acts on one workspace of its user, chosen at sign-in and changeable.

Sign-in is rate-limited before any password is checked (each attempt is recorded first,
so attempts made at once count each other).  Within `WINDOW`, counting an account's
failures only after its last success:

- an account refuses an address after `ACCOUNT_LIMIT` failures from that address;
- an account refuses every address it has not signed in from within `KNOWN_FOR` after
  `ACCOUNT_LIMIT` failures from anywhere (guesses spread over many addresses);
- an address is refused after `ADDRESS_LIMIT` failures, whatever the accounts tried,
  to the accounts that have not signed in from it within `KNOWN_FOR`.

So someone who knows an email cannot lock its owner out: failing from elsewhere, they
close the account to themselves and to new addresses, not to the addresses its owner
signs in from; failing on other accounts from the owner's own address (one NAT, one
proxy), they close that address to new accounts, not to its known ones.  A refusal says
when to retry (`RateLimited.retry_after`); it does not say whether the password would
have been right.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from headwater.adapters.store import accounts
from headwater.kernel.accounts import Session
from headwater.kernel.entities import new_id, utcnow
from headwater.kernel.errors import Forbidden, NotFound, RateLimited, Unauthenticated
from headwater.services.app import App
from headwater.services.auth import users
from headwater.services.auth.principal import Principal, digest
from headwater.services.text import refuse_nul

COOKIE = "headwater_session"
#: The session cookie's name over https: a browser keeps a ``__Host-`` cookie only when
#: it is Secure, set by this very host (no Domain) for every path, so no other host of
#: the domain can set or shadow it.  Over plain http (a local console) it cannot be
#: Secure, so it keeps the plain name there.
SECURE_COOKIE = f"__Host-{COOKIE}"
LIFETIME = timedelta(days=7)
WINDOW = timedelta(minutes=15)
ACCOUNT_LIMIT = 5
ADDRESS_LIMIT = 20
KNOWN_FOR = timedelta(days=30)
_KEEP_ATTEMPTS = timedelta(days=1)


def _retry_after(failures: list[datetime], limit: int, now: datetime) -> int | None:
    """Seconds until fewer than `limit` of `failures` (oldest first) fall in the window,
    or None when fewer do already."""
    if len(failures) < limit:
        return None
    frees_at = failures[len(failures) - limit] + WINDOW
    return max(1, int((frees_at - now).total_seconds()) + 1)


def _check_rate(app: App, key: str, address: str, now: datetime, attempt: str) -> None:
    since, engine = now - WINDOW, app.engine
    here = accounts.failures_since(engine, since, email_key=key, address=address, besides=attempt)
    waits = [_retry_after(here, ACCOUNT_LIMIT, now)]
    if not accounts.signed_in_from(engine, key, address, now - KNOWN_FOR):
        by_address = accounts.failures_since(engine, since, address=address, besides=attempt)
        by_account = accounts.failures_since(engine, since, email_key=key, besides=attempt)
        waits.append(_retry_after(by_address, ADDRESS_LIMIT, now))
        waits.append(_retry_after(by_account, ACCOUNT_LIMIT, now))
    longest = max((w for w in waits if w is not None), default=None)
    if longest is not None:
        raise RateLimited(
            f"too many failed sign-in attempts; try again in {longest} seconds", longest
        )


def sign_in(app: App, email: str, password: str, *, address: str) -> tuple[str, Session]:
    """Check the password and open a session; the raw session id (for the cookie, never
    stored) and the session. `address` is the client's network address.

    Raises `RateLimited` when the account or the address has failed too often,
    `Unauthenticated` for a wrong email or password (the same message for both), and
    `Forbidden` when the user belongs to no workspace.
    """
    now = utcnow()
    # Nothing is recorded of an attempt no store can keep (`InvalidInput` at the field).
    key = users.email_key(email)
    refuse_nul(address, "address")
    # The attempt takes its place (as a failure) before the limit is checked, so that
    # attempts made at once see each other: no more passwords are checked than allowed.
    attempt = accounts.record_attempt(
        app.engine, key, address, False, now, _KEEP_ATTEMPTS, keep_successes=KNOWN_FOR
    )
    try:
        _check_rate(app, key, address, now, attempt)
    except RateLimited:
        accounts.settle_attempt(app.engine, attempt, None)  # refused, not a failure
        raise
    user = users.authenticate(app, email, password)
    if user is None:
        raise Unauthenticated("wrong email or password")  # the attempt stays a failure
    accounts.settle_attempt(app.engine, attempt, True)
    workspace_ids = accounts.workspace_ids_of(app.engine, user.id)
    if not workspace_ids:
        raise Forbidden("this account is not a member of any workspace")
    chosen = app.workspace_id if app.workspace_id in workspace_ids else workspace_ids[0]
    raw = secrets.token_urlsafe(32)
    session = Session(
        id=new_id("ses"),
        user_id=user.id,
        workspace_id=chosen,
        created_at=now,
        expires_at=now + LIFETIME,
    )
    return raw, accounts.add_session(app.engine, session, digest(raw))


def _live_session(app: App, raw: str) -> Session | None:
    if not raw or len(raw) > 100:
        return None
    session = accounts.session_by_hash(app.engine, digest(raw))
    if session is None or session.revoked_at is not None or session.expires_at <= utcnow():
        return None
    return session


def principal_for_session(app: App, raw: str) -> Principal | None:
    """Who the session `raw` is, or None when it is unknown, expired or signed out, or
    its user has left the session's workspace."""
    session = _live_session(app, raw)
    if session is None:
        return None
    if session.workspace_id not in accounts.workspace_ids_of(app.engine, session.user_id):
        return None
    return Principal(
        workspace_id=session.workspace_id, user_id=session.user_id, session_id=session.id
    )


def sign_out(app: App, raw: str) -> None:
    """Revoke the session: the cookie is refused from now on. An unknown, expired or
    already revoked session is left as it is."""
    session = _live_session(app, raw)
    if session is not None:
        accounts.revoke_session(app.engine, session.id, utcnow())


def choose_workspace(app: App, raw: str, workspace_id: str) -> Session:
    """Make the session act on `workspace_id`, one of its user's workspaces.

    Raises `Unauthenticated` for a session that is not live, and `NotFound` for a
    workspace the user is not a member of (as for one that does not exist).
    """
    session = _live_session(app, raw)
    if session is None:
        raise Unauthenticated("the session has expired or was signed out")
    if workspace_id not in accounts.workspace_ids_of(app.engine, session.user_id):
        raise NotFound(f"no workspace with id {workspace_id!r}")
    accounts.set_session_workspace(app.engine, session.id, workspace_id)
    session.workspace_id = workspace_id
    return session
