"""Each connection records the Stripe account its key belongs to (`account_id`), so a
new key of another account is refused instead of being read as the same account's.
Connections saved before have none; they learn it with their next key check.

Revision ID: 0014_connection_account
Revises: 0013_base_url_login
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014_connection_account"
down_revision = "0013_base_url_login"


def upgrade() -> None:
    with op.batch_alter_table("connections") as batch:
        batch.add_column(sa.Column("account_id", sa.String(255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("connections") as batch:
        batch.drop_column("account_id")
