"""A follow-up request whose run was enqueued stays as a *settling* check (`settling`):
that run may save its position before events it read (Stripe lists events late at
times), and one more run then reads them again once they settled.  The request was
dropped at the enqueue, so no run followed unless another delivery came.

Revision ID: 0012_followup_settling
Revises: 0011_followup_cover
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012_followup_settling"
down_revision = "0011_followup_cover"


def upgrade() -> None:
    with op.batch_alter_table("webhook_followups") as batch:
        batch.add_column(
            sa.Column("settling", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("webhook_followups") as batch:
        batch.drop_column("settling")
