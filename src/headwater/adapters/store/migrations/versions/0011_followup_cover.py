"""A follow-up request remembers the run that claimed after it (`covered_by`): that
run reads every change asked about, so the request goes only once that run succeeded,
and is run again if it failed or was cancelled.  Coverage was judged by comparing the
run's start (the worker's clock) with the request's time (the API process's clock).

Revision ID: 0011_followup_cover
Revises: 0010_workspace_names
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011_followup_cover"
down_revision = "0010_workspace_names"


def upgrade() -> None:
    with op.batch_alter_table("webhook_followups") as batch:
        batch.add_column(sa.Column("covered_by", sa.String(40), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("webhook_followups") as batch:
        batch.drop_column("covered_by")
