"""Reading and writing invitations to workspaces (plain functions of an engine, like
`accounts`). Answering one and the membership it grants are one transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Engine, and_, func, insert, or_, select, text, update

from headwater.adapters.store.auth_tables import invitations, memberships, users
from headwater.adapters.store.objects import aware
from headwater.adapters.store.tables import workspaces
from headwater.kernel.accounts import Invitation
from headwater.kernel.errors import Conflict, InvalidInput, NotFound


def _invitation(row: Any) -> Invitation:
    return Invitation(
        id=row.id,
        workspace_id=row.workspace_id,
        email=row.email,
        invited_by=row.invited_by,
        status=row.status,
        created_at=aware(row.created_at),  # type: ignore[arg-type]
        expires_at=aware(row.expires_at),  # type: ignore[arg-type]
        answered_at=aware(row.answered_at),
    )


def add_or_renew(
    engine: Engine, invitation: Invitation, email_key: str, max_pending: int
) -> Invitation:
    """Store `invitation` of `email_key`, unless the workspace has a pending one of
    that email: that one then lasts until `invitation.expires_at` and is returned. One
    pending invitation per workspace and email (a unique index keeps it so): invites
    of one workspace and email take turns, on SQLite behind the store's write lock
    (this transaction writes first), on PostgreSQL behind a lock of theirs.

    `Conflict` instead of a new invitation when the workspace has `max_pending` live
    pending ones already (invites of other emails at the same instant may pass it by
    a few)."""
    c, now = invitations.c, invitation.created_at
    mine = and_(
        c.workspace_id == invitation.workspace_id, c.email_key == email_key, c.status == "pending"
    )
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            key = f"invitation {invitation.workspace_id} {email_key}"
            conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": key})
        # A pending invitation past its time is expired: stored so, it leaves its place.
        conn.execute(update(invitations).where(mine, c.expires_at <= now).values(status="expired"))
        row = conn.execute(select(invitations).where(mine)).first()
        if row is not None:
            until = invitation.expires_at
            conn.execute(update(invitations).where(c.id == row.id).values(expires_at=until))
            renewed = _invitation(row)
            renewed.expires_at = until
            return renewed
        live = and_(
            c.workspace_id == invitation.workspace_id, c.status == "pending", c.expires_at > now
        )
        if conn.execute(select(func.count()).where(live)).scalar_one() >= max_pending:
            raise Conflict(
                f"this workspace has {max_pending} invitations waiting for an answer: "
                "revoke some, or wait until they are answered or expire"
            )
        conn.execute(
            insert(invitations).values(
                id=invitation.id,
                workspace_id=invitation.workspace_id,
                email=invitation.email,
                email_key=email_key,
                invited_by=invitation.invited_by,
                status=invitation.status,
                created_at=now,
                expires_at=invitation.expires_at,
                answered_at=None,
            )
        )
    return invitation


def _named(invitation_id: str, **where: str) -> Any:
    query = select(invitations).where(invitations.c.id == invitation_id)
    for column, value in where.items():
        query = query.where(invitations.c[column] == value)
    return query


def of_workspace(engine: Engine, invitation_id: str, workspace_id: str) -> Invitation:
    """The workspace's invitation; another workspace's is NotFound like a missing one."""
    with engine.connect() as conn:
        row = conn.execute(_named(invitation_id, workspace_id=workspace_id)).first()
    if row is None:
        raise NotFound(f"no invitation with id {invitation_id!r}")
    return _invitation(row)


def of_email(engine: Engine, invitation_id: str, email_key: str) -> Invitation:
    """The invitation of `email_key`; anyone else's is NotFound like a missing one."""
    with engine.connect() as conn:
        row = conn.execute(_named(invitation_id, email_key=email_key)).first()
    if row is None:
        raise NotFound(f"no invitation with id {invitation_id!r}")
    return _invitation(row)


def list_of_workspace(
    engine: Engine, workspace_id: str, limit: int, starting_after: str | None = None
) -> tuple[list[Invitation], bool]:
    """The workspace's invitations, newest first, after `starting_after` (an invitation
    id of this workspace, else `InvalidInput` at ``starting_after``); whether more follow."""
    c = invitations.c
    query = select(invitations).where(c.workspace_id == workspace_id)
    if starting_after is not None:
        try:
            after = of_workspace(engine, starting_after, workspace_id)
        except NotFound:
            raise InvalidInput(
                f"no invitation with id {starting_after!r} in this list", "starting_after"
            ) from None
        query = query.where(
            or_(
                c.created_at < after.created_at,
                and_(c.created_at == after.created_at, c.id < after.id),
            )
        )
    with engine.connect() as conn:
        rows = conn.execute(query.order_by(c.created_at.desc(), c.id.desc()).limit(limit + 1))
        found = rows.all()
    return [_invitation(row) for row in found[:limit]], len(found) > limit


def pending_of_email(engine: Engine, email_key: str, now: datetime) -> list[Invitation]:
    """The live (pending, unexpired) invitations of `email_key`, newest first."""
    c = invitations.c
    query = (
        select(invitations)
        .where(c.email_key == email_key, c.status == "pending", c.expires_at > now)
        .order_by(c.created_at.desc(), c.id.desc())
    )
    with engine.connect() as conn:
        return [_invitation(row) for row in conn.execute(query)]


def answer(
    engine: Engine, invitation_id: str, status: str, at: datetime, member_id: str | None
) -> bool:
    """Mark a pending, unexpired invitation `status` (accepted, declined, revoked) at
    `at`, and with `member_id` make that user a member of its workspace, in one
    transaction. False when the invitation was no longer pending and live (answered or
    revoked meanwhile, or expired): nothing changes then."""
    c = invitations.c
    with engine.begin() as conn:
        done = conn.execute(
            update(invitations)
            .where(c.id == invitation_id, c.status == "pending", c.expires_at > at)
            .values(status=status, answered_at=at)
            .returning(c.workspace_id)
        ).first()
        if done is None:
            return False
        if member_id is not None:
            member = conn.execute(
                select(memberships.c.user_id).where(
                    memberships.c.user_id == member_id,
                    memberships.c.workspace_id == done.workspace_id,
                )
            ).first()
            if member is None:
                conn.execute(
                    insert(memberships).values(
                        user_id=member_id, workspace_id=done.workspace_id, created_at=at
                    )
                )
    return True


def workspace_names(engine: Engine, workspace_ids: list[str]) -> dict[str, str]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(workspaces.c.id, workspaces.c.name).where(workspaces.c.id.in_(workspace_ids))
        )
        return {row.id: row.name for row in rows}


def inviter_emails(engine: Engine, user_ids: list[str]) -> dict[str, str]:
    with engine.connect() as conn:
        rows = conn.execute(select(users.c.id, users.c.email).where(users.c.id.in_(user_ids)))
        return {row.id: row.email for row in rows}
