"""Run leases: a live run is proven alive by a lease renewed by a timer, and can be
asked to stop.

Revision ID: 0003_run_leases
Revises: 0002_warehouse_secret
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_run_leases"
down_revision = "0002_warehouse_secret"

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("owner", sa.String(200), nullable=True))
        batch.add_column(sa.Column("lease_expires_at", TS, nullable=True))
        batch.add_column(
            sa.Column("cancel_requested", sa.Boolean, nullable=False, server_default=sa.false())
        )
    # A run left running by an earlier version has no lease: its last heartbeat is the
    # best evidence of life it has, so the lease lapses from there.
    op.execute("UPDATE runs SET lease_expires_at = heartbeat_at WHERE status = 'running'")


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("cancel_requested")
        batch.drop_column("lease_expires_at")
        batch.drop_column("owner")
