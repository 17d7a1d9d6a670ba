"""Invitations to a workspace: how a user becomes a member of one more workspace.

A member (a signed-in user or an API token of the workspace; the operator's CLI too)
invites an *email*. Nothing is looked up to do so: the answer is the same invitation
document whether that email has an account or not, and takes the same time, so an
invitation tells the inviter nothing about who has an account (``users join`` made an
existing user a member at once and refused an unknown email: it told both, and gave
away a membership its user never asked for).

The invitation grants nothing until the user whose email it is (compared
case-insensitively), signed in, accepts it; they may decline it instead. It lasts
`LIFETIME`; inviting the same email again while it is pending renews it. A declined,
revoked or expired invitation grants nothing and cannot be accepted. Only the workspace
sees (and revokes) its invitations; only the invited user sees them among their own.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from headwater.adapters.store import invitations as store
from headwater.kernel.accounts import Invitation
from headwater.kernel.entities import new_id, utcnow
from headwater.kernel.errors import Conflict, InvalidInput
from headwater.services.app import App
from headwater.services.auth import users
from headwater.services.text import known_id, refuse_nul

LIFETIME = timedelta(days=7)
MAX_PAGE = 100
#: Invitations a workspace may have waiting at once: each is shown to whoever has the
#: email, so a workspace must not be a way to send anyone any number of them.
MAX_PENDING = 500


def invite(app: App, email: str, *, invited_by: str | None = None) -> Invitation:
    """Invite `email` to `app`'s workspace (`invited_by`: the inviting user's id, None
    for a token or the CLI); a pending invitation of that email is renewed instead.

    Raises `InvalidInput` (field ``email``) for a malformed email, and for nothing else
    about the email: whether it has an account is neither checked nor told. `Conflict`
    when `MAX_PENDING` invitations of the workspace wait for an answer already."""
    email = users.checked_email(email)
    now = utcnow()
    invitation = Invitation(
        id=new_id("inv"),
        workspace_id=app.workspace().id,
        email=email,
        invited_by=invited_by,
        status="pending",
        created_at=now,
        expires_at=now + LIFETIME,
    )
    return store.add_or_renew(app.engine, invitation, users.email_key(email), MAX_PENDING)


def list_invitations(
    app: App, limit: int = MAX_PAGE, starting_after: str | None = None
) -> tuple[list[Invitation], bool]:
    """`app`'s workspace's invitations, newest first, answered ones included; and
    whether more follow. `starting_after` is the last id of the previous page."""
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"must be between 1 and {MAX_PAGE}", "limit")
    if starting_after is not None:
        refuse_nul(starting_after, "starting_after")
    return store.list_of_workspace(app.engine, app.workspace_id, limit, starting_after)


def revoke(app: App, invitation_id: str) -> Invitation:
    """Withdraw the workspace's pending invitation (`NotFound` for another workspace's;
    `Conflict` once it was accepted or declined). Revoking twice is harmless."""
    invitation_id = known_id(invitation_id, "invitation")
    found = store.of_workspace(app.engine, invitation_id, app.workspace_id)
    if found.status != "revoked":
        _answer(app, found, "revoked", None)
    return store.of_workspace(app.engine, invitation_id, app.workspace_id)


def pending(app: App, user_id: str) -> list[Invitation]:
    """The user's invitations waiting for their answer (not expired), newest first."""
    email = users.get_user(app, user_id).email
    return store.pending_of_email(app.engine, users.email_key(email), utcnow())


def accept(app: App, user_id: str, invitation_id: str) -> Invitation:
    """The user accepts their invitation: from now on they are a member of its
    workspace. `NotFound` for an invitation of anyone else; `Conflict` for one that was
    answered, revoked or has expired (it grants nothing)."""
    return _answer(app, _theirs(app, user_id, invitation_id), "accepted", user_id)


def decline(app: App, user_id: str, invitation_id: str) -> Invitation:
    """The user declines their invitation: it grants nothing, now or later. Errors as
    for `accept`."""
    return _answer(app, _theirs(app, user_id, invitation_id), "declined", None)


def _theirs(app: App, user_id: str, invitation_id: str) -> Invitation:
    email = users.get_user(app, user_id).email
    invitation_id = known_id(invitation_id, "invitation")
    return store.of_email(app.engine, invitation_id, users.email_key(email))


def _answer(app: App, invitation: Invitation, status: str, member_id: str | None) -> Invitation:
    now = utcnow()
    if store.answer(app.engine, invitation.id, status, now, member_id):
        invitation.status, invitation.answered_at = status, now
        return invitation
    # Not pending and live: as it stands now (an answer may have come meanwhile).
    current = store.of_workspace(app.engine, invitation.id, invitation.workspace_id)
    state = current.state(now)
    if state == "expired":
        raise Conflict("this invitation has expired: ask for a new one")
    raise Conflict(f"this invitation was {state} already")


def documents(app: App, found: list[Invitation]) -> list[dict[str, Any]]:
    """Invitations as the API and the CLI's ``--json`` show them: with their workspace's
    name, their inviter's email (null for a token's or the CLI's) and their state."""
    names = store.workspace_names(app.engine, sorted({i.workspace_id for i in found}))
    inviters = store.inviter_emails(
        app.engine, sorted({i.invited_by for i in found if i.invited_by is not None})
    )
    now = utcnow()

    def iso(value: Any) -> str | None:
        return None if value is None else value.isoformat()

    return [
        {
            "id": i.id,
            "email": i.email,
            "workspace_id": i.workspace_id,
            "workspace_name": names.get(i.workspace_id, ""),
            "invited_by": None if i.invited_by is None else inviters.get(i.invited_by),
            "status": i.state(now),
            "created_at": iso(i.created_at),
            "expires_at": iso(i.expires_at),
            "answered_at": iso(i.answered_at),
        }
        for i in found
    ]
