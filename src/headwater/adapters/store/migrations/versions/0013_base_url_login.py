"""A Stripe URL saved with login details (``https://user:password@host``, before such
URLs were refused) was shown in plain text wherever the connection is shown: the URL
is kept without them.  Nothing is lost: the API key is kept apart, encrypted, and is
what every request authenticates with.

Revision ID: 0013_base_url_login
Revises: 0012_followup_settling
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import sqlalchemy as sa
from alembic import op

revision = "0013_base_url_login"
down_revision = "0012_followup_settling"


def _without_login(url: str) -> str:
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


def upgrade() -> None:
    conn = op.get_bind()
    rows = conn.execute(sa.text("SELECT id, base_url FROM connections WHERE base_url LIKE '%@%'"))
    for conn_id, url in rows.all():
        clean = _without_login(url)
        if clean != url:
            conn.execute(
                sa.text("UPDATE connections SET base_url = :url WHERE id = :id"),
                {"url": clean, "id": conn_id},
            )


def downgrade() -> None:
    """The login details are gone: nothing to restore."""
