"""Refused webhook deliveries per endpoint: how many since its secret was stored, and
the latest one's time and reason, so a webhook whose every delivery is refused (a
wrong signing secret stored) no longer looks "on" with no delivery ever arriving.

Revision ID: 0017_webhook_refusals
Revises: 0016_one_pending_invitation
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017_webhook_refusals"
down_revision = "0016_one_pending_invitation"


def upgrade() -> None:
    with op.batch_alter_table("webhook_endpoints") as batch:
        batch.add_column(
            sa.Column("refused_count", sa.Integer(), nullable=False, server_default="0")
        )
        batch.add_column(sa.Column("last_refused_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("last_refusal", sa.String(80), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("webhook_endpoints") as batch:
        batch.drop_column("last_refusal")
        batch.drop_column("last_refused_at")
        batch.drop_column("refused_count")
