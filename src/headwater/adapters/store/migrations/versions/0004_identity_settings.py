"""Workspace identity settings: ordered identifiers and blocked values (DESIGN §10).

``workspaces.identity_settings`` holds ``{"identifiers": [...], "blocked": {...}}``;
NULL means the defaults (identifier ``email`` with its default blocked values).

Revision ID: 0004_identity_settings
Revises: 0005_schedules
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_identity_settings"
down_revision = "0005_schedules"


def upgrade() -> None:
    with op.batch_alter_table("workspaces") as batch:
        batch.add_column(sa.Column("identity_settings", sa.JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("workspaces") as batch:
        batch.drop_column("identity_settings")
