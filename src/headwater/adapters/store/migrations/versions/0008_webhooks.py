"""Store changes for Stripe webhooks (issue 15): each connection's endpoint and signing
secret (encrypted), the event ids already accepted (deduplication), and the follow-up
runs requested by deliveries but not yet enqueued (coalescing).

Revision ID: 0008_webhooks
Revises: 0007_auth
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_webhooks"
down_revision = "0007_auth"


def _at(name: str, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _ref(name: str, target: str, primary_key: bool) -> sa.Column[object]:
    return sa.Column(
        name, sa.String(40), sa.ForeignKey(target, ondelete="CASCADE"), primary_key=primary_key
    )


def upgrade() -> None:
    op.create_table(
        "webhook_endpoints",
        _ref("connection_id", "connections.id", True),
        sa.Column("workspace_id", sa.String(40), sa.ForeignKey("workspaces.id"), nullable=False),
        sa.Column("stripe_endpoint_id", sa.String(80), nullable=True),
        sa.Column("url", sa.Text, nullable=True),
        sa.Column("secret_encrypted", sa.Text, nullable=False),
        sa.Column("secret_masked", sa.String(60), nullable=False),
        _at("created_at"),
        _at("last_delivery_at", nullable=True),
    )
    op.create_table(
        "webhook_events",
        _ref("connection_id", "connections.id", True),
        sa.Column("event_id", sa.String(255), primary_key=True),
        _at("received_at"),
    )
    op.create_index("ix_webhook_events_received", "webhook_events", ["received_at"])
    op.create_table(
        "webhook_followups",
        _ref("pipeline_id", "pipelines.id", True),
        sa.Column("workspace_id", sa.String(40), sa.ForeignKey("workspaces.id"), nullable=False),
        _at("first_at"),
        _at("requested_at"),
        _at("due_at"),
    )
    op.create_index("ix_webhook_followups_due", "webhook_followups", ["due_at"])


def downgrade() -> None:
    op.drop_index("ix_webhook_followups_due", "webhook_followups")
    op.drop_table("webhook_followups")
    op.drop_index("ix_webhook_events_received", "webhook_events")
    op.drop_table("webhook_events")
    op.drop_table("webhook_endpoints")
