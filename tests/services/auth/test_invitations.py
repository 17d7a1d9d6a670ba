"""Invitations on every metadata store: an answer is taken once, and only while the
invitation is pending and live; only the invited email answers; a workspace sees only
its own."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from sqlalchemy import update

from headwater.adapters.store.auth_tables import invitations as table
from headwater.kernel.entities import utcnow
from headwater.kernel.errors import Conflict, NotFound
from headwater.services.app import App
from headwater.services.auth import invitations, users, workspaces

PASSWORD = "correct horse battery"


def test_an_invitation_is_answered_once_and_only_while_live(app: App) -> None:
    ada = users.add_user(app, "ada@example.com", PASSWORD)
    eve = users.add_user(app, "eve@example.com", PASSWORD)
    acme = app.in_workspace(workspaces.add_workspace(app, "Acme").id)
    first = invitations.invite(acme, "ada@example.com")
    with pytest.raises(NotFound):
        invitations.accept(app, eve.id, first.id)  # not hers
    # Accepting and declining at once: one answer wins, the other is told.
    with ThreadPoolExecutor(2) as pool:
        tries = [
            pool.submit(invitations.accept, app, ada.id, first.id),
            pool.submit(invitations.decline, app, ada.id, first.id),
        ]
    outcomes = []
    for attempt in tries:
        try:
            outcomes.append(attempt.result().status)
        except Conflict as exc:
            outcomes.append(exc.message)
    assert sum(o in ("accepted", "declined") for o in outcomes) == 1, outcomes
    member = acme.workspace_id in [w.id for w in workspaces.workspaces_of(app, ada.id)]
    assert member == ("accepted" in outcomes)

    late = invitations.invite(acme, "eve@example.com")
    with app.engine.begin() as conn:
        conn.execute(
            update(table).where(table.c.id == late.id).values(expires_at=utcnow() - timedelta(1))
        )
    assert invitations.pending(app, eve.id) == []
    with pytest.raises(Conflict, match="expired"):
        invitations.accept(app, eve.id, late.id)
    renewed = invitations.invite(acme, "eve@example.com")
    assert renewed.id != late.id  # an expired invitation is not renewed: a new one
    assert invitations.revoke(acme, renewed.id).status == "revoked"
    with pytest.raises(Conflict, match="revoked"):
        invitations.accept(app, eve.id, renewed.id)
    assert [w.id for w in workspaces.workspaces_of(app, eve.id)] == [app.workspace_id]
    with pytest.raises(NotFound):
        invitations.revoke(app, renewed.id)  # another workspace's
    states = [i.state(utcnow()) for i in invitations.list_invitations(acme)[0]]
    assert states[:2] == ["revoked", "expired"]
    assert invitations.list_invitations(app) == ([], False)


def test_invitations_sent_at_once_to_one_email_make_one(app: App) -> None:
    """Each invite looked for a pending invitation, then inserted one in a second
    transaction: eight sent at once (a client retrying, two members inviting the same
    person) made up to eight, and the invitee saw the workspace listed eight times."""
    ada = users.add_user(app, "ada@example.com", PASSWORD)
    acme = app.in_workspace(workspaces.add_workspace(app, "Acme").id)
    for round_ in range(5):
        email = "ada@example.com" if round_ == 0 else f"u{round_}@example.com"
        with ThreadPoolExecutor(8) as pool:
            sent = pool.map(invitations.invite, [acme] * 8, [email] * 8)
        ids = {invitation.id for invitation in sent}
        assert len(ids) == 1, (email, ids)
    assert len(invitations.pending(app, ada.id)) == 1
    assert len(invitations.list_invitations(acme)[0]) == 5


def test_a_workspace_has_at_most_max_pending_invitations_waiting(app: App) -> None:
    """Any user may create a workspace, and each invitation is shown to whoever has the
    email: without a bound, one workspace could put any number before anyone."""
    acme = app.in_workspace(workspaces.add_workspace(app, "Acme").id)
    sent = [invitations.invite(acme, f"u{n}@example.com") for n in range(invitations.MAX_PENDING)]
    with pytest.raises(Conflict, match="invitations waiting for an answer"):
        invitations.invite(acme, "one.more@example.com")
    assert invitations.invite(acme, "u0@example.com").id == sent[0].id  # renewing is fine
    assert invitations.invite(app, "one.more@example.com").status == "pending"  # elsewhere
    invitations.revoke(acme, sent[1].id)
    assert invitations.invite(acme, "one.more@example.com").status == "pending"
