"""Migration 0016_one_pending_invitation closes the duplicate pending invitations
that concurrent invites left in a store at 0015: the newest of each workspace and
email stays pending, the others are expired, and a new duplicate is refused."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from headwater.adapters.store.auth_tables import invitations
from headwater.adapters.store.crypto import Cipher
from headwater.adapters.store.database import engine_url, migrate, open_engine
from headwater.kernel.entities import utcnow


def _invitation(conn: sa.Connection, invitation_id: str, email_key: str, at: object) -> None:
    conn.execute(
        sa.text(
            "INSERT INTO invitations (id, workspace_id, email, email_key, invited_by, status,"
            " created_at, expires_at) VALUES (:id, 'ws', :email, :email, NULL, 'pending',"
            " :at, :until)"
        ),
        {"id": invitation_id, "email": email_key, "at": at, "until": utcnow() + timedelta(1)},
    )


def test_migration_0016_keeps_the_newest_pending_invitation(store_url: str) -> None:
    cipher = Cipher(b"k" * 32)
    now = utcnow()
    old = sa.create_engine(engine_url(store_url))
    with old.begin() as conn:
        migrate(conn, "0015_invitations", cipher=cipher)
        conn.execute(
            sa.text(
                "INSERT INTO workspaces (id, name, customer_model, created_at)"
                " VALUES ('ws', 'default', '[]', :at)"
            ),
            {"at": now},
        )
        _invitation(conn, "inv_old", "ada@example.com", now - timedelta(minutes=2))
        _invitation(conn, "inv_new", "ada@example.com", now - timedelta(minutes=1))
        _invitation(conn, "inv_a", "bob@example.com", now)
        _invitation(conn, "inv_b", "bob@example.com", now)  # the same instant: by id
        _invitation(conn, "inv_alone", "eve@example.com", now)
    old.dispose()
    engine = open_engine(store_url, cipher=cipher)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.select(invitations.c.id, invitations.c.status)).all()
        assert {row.id: row.status for row in rows} == {
            "inv_old": "expired",
            "inv_new": "pending",
            "inv_a": "expired",
            "inv_b": "pending",
            "inv_alone": "pending",
        }
        with pytest.raises(IntegrityError), engine.begin() as conn:
            _invitation(conn, "inv_again", "eve@example.com", now)
    finally:
        engine.dispose()
