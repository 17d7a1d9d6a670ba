"""The workspace's warehouse URL is a secret: encrypted at rest like API keys.

Renames ``workspaces.warehouse_url`` to ``warehouse_url_encrypted`` and encrypts the
plain URLs stored before (their passwords were readable in the store).  Encrypting needs
the store's `Cipher`, which `open_engine` passes in ``config.attributes["cipher"]``.

Revision ID: 0002_warehouse_secret
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context, op

from headwater.adapters.store.crypto import Cipher, is_encrypted, warehouse_url_context

revision = "0002_warehouse_secret"
down_revision = "0001"

_workspaces = sa.table(
    "workspaces", sa.column("id", sa.String), sa.column("warehouse_url_encrypted", sa.Text)
)


def _cipher() -> Cipher:
    cipher = context.config.attributes.get("cipher")
    if not isinstance(cipher, Cipher):
        raise RuntimeError(
            "migration 0002_warehouse_secret encrypts stored warehouse URLs and needs the "
            "secret key (HEADWATER_SECRET_KEY or the key file); open the store through "
            "Headwater so that it is given"
        )
    return cipher


def upgrade() -> None:
    conn = op.get_bind()
    old = sa.table("workspaces", sa.column("id", sa.String), sa.column("warehouse_url", sa.Text))
    found = old.c.warehouse_url
    rows = conn.execute(sa.select(old.c.id, found).where(found.is_not(None))).all()
    plain = [(ws, url) for ws, url in rows if not is_encrypted(url)]
    # Encrypt before changing anything: without the key nothing is altered (and on
    # SQLite DDL commits at once).
    sealed: list[tuple[str, str]] = []
    if plain:
        cipher = _cipher()
        sealed = [(ws, cipher.encrypt(url, context=warehouse_url_context(ws))) for ws, url in plain]
    with op.batch_alter_table("workspaces") as batch:
        batch.alter_column("warehouse_url", new_column_name="warehouse_url_encrypted")
    column = _workspaces.c.warehouse_url_encrypted
    for ws, token in sealed:
        conn.execute(sa.update(_workspaces).where(_workspaces.c.id == ws).values({column: token}))


def downgrade() -> None:
    conn = op.get_bind()
    column = _workspaces.c.warehouse_url_encrypted
    rows = conn.execute(sa.select(_workspaces.c.id, column).where(column.is_not(None))).all()
    if rows:
        cipher = _cipher()
        for ws, sealed in rows:
            url = cipher.decrypt(sealed, context=warehouse_url_context(ws))
            conn.execute(sa.update(_workspaces).where(_workspaces.c.id == ws).values({column: url}))
    with op.batch_alter_table("workspaces") as batch:
        batch.alter_column("warehouse_url_encrypted", new_column_name="warehouse_url")
