"""Invitations: a member invites an email to a workspace; the user whose email it is
accepts or declines it from their own account, before it expires. Until then it grants
nothing (memberships were made at once by ``users join``, without the user's consent).

Revision ID: 0015_invitations
Revises: 0014_connection_account
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015_invitations"
down_revision = "0014_connection_account"


def _at(name: str, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "invitations",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("workspace_id", sa.String(40), sa.ForeignKey("workspaces.id"), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("email_key", sa.String(320), nullable=False),
        sa.Column("invited_by", sa.String(40), sa.ForeignKey("users.id"), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        _at("created_at"),
        _at("expires_at"),
        _at("answered_at", nullable=True),
    )
    op.create_index("ix_invitations_email", "invitations", ["email_key", "status"])
    op.create_index("ix_invitations_workspace", "invitations", ["workspace_id", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_invitations_workspace", "invitations")
    op.drop_index("ix_invitations_email", "invitations")
    op.drop_table("invitations")
