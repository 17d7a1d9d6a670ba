"""Schedules: each pipeline's next slot (`next_run_at`), which the leaderless scheduler
advances with a compare-and-swap (DESIGN.md §7).

Pipelines that are enabled and on a schedule get their next slot after the migration's
time; the others keep NULL (never due).

Revision ID: 0005_schedules
Revises: 0003_run_leases
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from headwater.kernel.entities import utcnow
from headwater.kernel.schedules import next_slot

revision = "0005_schedules"
down_revision = "0003_run_leases"

_pipelines = sa.table(
    "pipelines",
    sa.column("id", sa.String),
    sa.column("enabled", sa.Boolean),
    sa.column("schedule", sa.String),
    sa.column("next_run_at", sa.DateTime(timezone=True)),
)


def upgrade() -> None:
    with op.batch_alter_table("pipelines") as batch:
        batch.add_column(sa.Column("next_run_at", sa.DateTime(timezone=True), nullable=True))
        batch.create_index("ix_pipelines_next_run_at", ["next_run_at"])
    conn = op.get_bind()
    now = utcnow()
    scheduled = conn.execute(
        sa.select(_pipelines.c.id, _pipelines.c.schedule).where(
            _pipelines.c.enabled.is_(True), _pipelines.c.schedule != "off"
        )
    ).all()
    for pipeline_id, schedule in scheduled:
        conn.execute(
            sa.update(_pipelines)
            .where(_pipelines.c.id == pipeline_id)
            .values(next_run_at=next_slot(schedule, pipeline_id, now))
        )


def downgrade() -> None:
    with op.batch_alter_table("pipelines") as batch:
        batch.drop_index("ix_pipelines_next_run_at")
        batch.drop_column("next_run_at")
