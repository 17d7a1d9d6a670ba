"""Metadata store tables for users, memberships, sessions, API tokens and sign-in
attempts (migration 0007_auth) and invitations (0015, 0016), on the shared
`tables.metadata`.

No secret is stored in clear: `password_hash` is argon2, `secret_hash` is the SHA-256
hex digest of a session id or a token (DESIGN.md §8).
"""

from __future__ import annotations

from sqlalchemy import Boolean, Column, DateTime, ForeignKey, Index, String, Table, text

from headwater.adapters.store.tables import metadata

users = Table(
    "users",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("email", String(320), nullable=False),
    # The lower-cased email: one account per address, whatever its case.
    Column("email_key", String(320), nullable=False, unique=True),
    Column("password_hash", String(255), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

memberships = Table(
    "memberships",
    metadata,
    Column("user_id", String(40), ForeignKey("users.id"), primary_key=True),
    Column("workspace_id", String(40), ForeignKey("workspaces.id"), primary_key=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_memberships_workspace", "workspace_id"),
)

sessions = Table(
    "sessions",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("secret_hash", String(64), nullable=False, unique=True),
    Column("user_id", String(40), ForeignKey("users.id"), nullable=False),
    Column("workspace_id", String(40), ForeignKey("workspaces.id"), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
    Index("ix_sessions_user", "user_id"),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("secret_hash", String(64), nullable=False, unique=True),
    Column("workspace_id", String(40), ForeignKey("workspaces.id"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("prefix", String(20), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("last_used_at", DateTime(timezone=True), nullable=True),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
    Index("ix_api_tokens_workspace", "workspace_id", "created_at"),
)

sign_in_attempts = Table(
    "sign_in_attempts",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("email_key", String(320), nullable=False),
    Column("address", String(64), nullable=False),
    Column("succeeded", Boolean, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Index("ix_sign_in_attempts_email", "email_key", "at"),
    Index("ix_sign_in_attempts_address", "address", "at"),
)

invitations = Table(
    "invitations",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("workspace_id", String(40), ForeignKey("workspaces.id"), nullable=False),
    Column("email", String(320), nullable=False),  # as the inviter typed it
    Column("email_key", String(320), nullable=False),  # lower-cased: whose it is
    Column("invited_by", String(40), ForeignKey("users.id"), nullable=True),
    Column("status", String(16), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("answered_at", DateTime(timezone=True), nullable=True),
    Index("ix_invitations_email", "email_key", "status"),
    Index("ix_invitations_workspace", "workspace_id", "created_at"),
    # One pending invitation per workspace and email (0016_one_pending_invitation).
    Index(
        "ux_invitations_pending",
        "workspace_id",
        "email_key",
        unique=True,
        sqlite_where=text("status = 'pending'"),
        postgresql_where=text("status = 'pending'"),
    ),
)
