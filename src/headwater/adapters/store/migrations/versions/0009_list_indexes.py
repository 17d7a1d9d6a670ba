"""Indexes for the lists the API and the console poll, newest first: a workspace's runs
(``ix_runs_created``: walked backwards, a page stops after its rows instead of sorting
every run) and a workspace's pipelines (``ix_pipelines_workspace``).  Their plans on
both stores are checked by ``tests/store/test_query_plans.py``.

Revision ID: 0009_list_indexes
Revises: 0008_webhooks
"""

from __future__ import annotations

from alembic import op

revision = "0009_list_indexes"
down_revision = "0008_webhooks"


def upgrade() -> None:
    op.create_index("ix_runs_created", "runs", ["created_at", "id"])
    op.create_index("ix_pipelines_workspace", "pipelines", ["workspace_id", "created_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_pipelines_workspace", table_name="pipelines")
    op.drop_index("ix_runs_created", table_name="runs")
