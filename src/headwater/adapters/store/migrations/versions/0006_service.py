"""Store changes for the service (issue 11): the worker registry, the queue's index,
and retries (each retry its own run, linked to the run it retries, not claimed before
its time).

Revision ID: 0006_service
Revises: 0004_identity_settings
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_service"
down_revision = "0004_identity_settings"

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "workers",
        sa.Column("id", sa.String(200), primary_key=True),
        sa.Column("host", sa.String(200), nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("slots", sa.Integer, nullable=False),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("heartbeat_at", TS, nullable=False),
    )
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("attempt", sa.Integer, nullable=False, server_default="1"))
        batch.add_column(sa.Column("retry_of", sa.String(40), nullable=True))
        batch.add_column(sa.Column("not_before", TS, nullable=True))
        batch.create_index("ix_runs_status_created", ["status", "created_at"])


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_index("ix_runs_status_created")
        batch.drop_column("not_before")
        batch.drop_column("retry_of")
        batch.drop_column("attempt")
    op.drop_table("workers")
