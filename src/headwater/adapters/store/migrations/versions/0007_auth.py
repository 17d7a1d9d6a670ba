"""Store changes for users, sessions, tokens and workspaces (issue 12).

Users (argon2 password hashes, emails unique case-insensitively through `email_key`),
their memberships of workspaces, server-side sessions and API tokens (both stored as the
SHA-256 digest of their secret, never in clear), and sign-in attempts for rate limiting.

Revision ID: 0007_auth
Revises: 0006_service
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_auth"
down_revision = "0006_service"


def _at(name: str, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("email_key", sa.String(320), nullable=False, unique=True),
        sa.Column("password_hash", sa.String(255), nullable=False),
        _at("created_at"),
    )
    op.create_table(
        "memberships",
        sa.Column("user_id", sa.String(40), sa.ForeignKey("users.id"), primary_key=True),
        sa.Column("workspace_id", sa.String(40), sa.ForeignKey("workspaces.id"), primary_key=True),
        _at("created_at"),
    )
    op.create_index("ix_memberships_workspace", "memberships", ["workspace_id"])
    op.create_table(
        "sessions",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("secret_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("user_id", sa.String(40), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("workspace_id", sa.String(40), sa.ForeignKey("workspaces.id"), nullable=False),
        _at("created_at"),
        _at("expires_at"),
        _at("revoked_at", nullable=True),
    )
    op.create_index("ix_sessions_user", "sessions", ["user_id"])
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("secret_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("workspace_id", sa.String(40), sa.ForeignKey("workspaces.id"), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("prefix", sa.String(20), nullable=False),
        _at("created_at"),
        _at("last_used_at", nullable=True),
        _at("revoked_at", nullable=True),
    )
    op.create_index("ix_api_tokens_workspace", "api_tokens", ["workspace_id", "created_at"])
    op.create_table(
        "sign_in_attempts",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("email_key", sa.String(320), nullable=False),
        sa.Column("address", sa.String(64), nullable=False),
        sa.Column("succeeded", sa.Boolean, nullable=False),
        _at("at"),
    )
    op.create_index("ix_sign_in_attempts_email", "sign_in_attempts", ["email_key", "at"])
    op.create_index("ix_sign_in_attempts_address", "sign_in_attempts", ["address", "at"])


def downgrade() -> None:
    for table in ("sign_in_attempts", "api_tokens", "sessions", "memberships", "users"):
        op.drop_table(table)
