"""Store changes for users, sessions, tokens and workspaces (issue 12).

Revision ID: 0007_auth
Revises: 0006_service
"""

from __future__ import annotations

revision = "0007_auth"
down_revision = "0006_service"


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
