"""One pending invitation per workspace and email: invites sent at once could each
find none and insert one. Before the unique index, the duplicates such races left
are closed: the newest pending invitation of each workspace and email stays, the
others are stored as expired (superseded); one past its time likewise.

Revision ID: 0016_one_pending_invitation
Revises: 0015_invitations
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016_one_pending_invitation"
down_revision = "0015_invitations"

_SUPERSEDED = """
UPDATE invitations SET status = 'expired'
WHERE status = 'pending' AND EXISTS (
    SELECT 1 FROM invitations AS newer
    WHERE newer.workspace_id = invitations.workspace_id
      AND newer.email_key = invitations.email_key
      AND newer.status = 'pending'
      AND (newer.created_at > invitations.created_at
           OR (newer.created_at = invitations.created_at AND newer.id > invitations.id))
)
"""


def upgrade() -> None:
    op.execute(_SUPERSEDED)
    pending = sa.text("status = 'pending'")
    op.create_index(
        "ux_invitations_pending",
        "invitations",
        ["workspace_id", "email_key"],
        unique=True,
        sqlite_where=pending,
        postgresql_where=pending,
    )


def downgrade() -> None:
    op.drop_index("ux_invitations_pending", "invitations")
