"""Opening the metadata store: migrations reach the known head, on SQLite and PostgreSQL."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine

# Every module that declares tables on the shared metadata, so that all are compared.
from headwater.adapters.store import auth_tables, objects, queue, tables, webhook_tables
from headwater.adapters.store.crypto import Cipher
from headwater.adapters.store.database import (
    HEAD_REVISION,
    StoreUnavailable,
    current_revision,
    engine_url,
    migrate,
    open_engine,
)
from headwater.kernel.entities import Workspace, utcnow


def test_the_known_head_is_alembics_head_and_a_new_store_reaches_it(engine: Engine) -> None:
    from importlib.resources import files

    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(files("headwater.adapters.store") / "migrations"))
    assert ScriptDirectory.from_config(config).get_current_head() == HEAD_REVISION
    with engine.connect() as conn:
        assert current_revision(conn) == HEAD_REVISION


def test_the_migrations_create_exactly_the_declared_tables(engine: Engine) -> None:
    declared = {t.name for t in tables.metadata.sorted_tables}
    assert {auth_tables.users.name, webhook_tables.webhook_events.name} <= declared
    assert queue.workers.name in declared
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, tables.metadata) == []


def test_migration_0002_encrypts_the_plain_warehouse_urls_of_a_0001_store(store_url: str) -> None:
    url = store_url
    plain = "postgresql://wh:Sup3r-s3cret@db.example:5432/prod?schema=cdp"
    old = sa.create_engine(engine_url(url))
    with old.begin() as conn:
        migrate(conn, "0001")
        for ws, value in (("ws_a", plain), ("ws_b", None)):
            conn.execute(
                sa.text(
                    "INSERT INTO workspaces (id, name, customer_model, warehouse_url, created_at)"
                    " VALUES (:id, :id, '[]', :url, :at)"
                ),
                {"id": ws, "url": value, "at": utcnow()},
            )
    old.dispose()
    cipher = Cipher(b"k" * 32)
    with pytest.raises(StoreUnavailable, match="secret key"):
        open_engine(url)  # encrypting needs the key
    engine = open_engine(url, cipher=cipher)
    try:
        with engine.connect() as conn:
            assert current_revision(conn) == HEAD_REVISION
            query = sa.text("SELECT id, warehouse_url_encrypted FROM workspaces")
            rows = dict(conn.execute(query).all())
        assert "Sup3r-s3cret" not in repr(rows)
        assert rows["ws_b"] is None
        assert cipher.decrypt(rows["ws_a"], context="warehouse_url:ws_a") == plain
        workspace = objects.get(engine, Workspace, "ws_a")
        assert workspace.warehouse_url_encrypted == rows["ws_a"]
        open_engine(url).dispose()  # migrated: opening needs no key any more
    finally:
        engine.dispose()


def test_migration_0013_drops_login_details_from_saved_stripe_urls(store_url: str) -> None:
    """A Stripe URL with a username or password (saved before such URLs were refused)
    was shown in plain text: the migration keeps the URL without them (the API key is
    kept apart, encrypted) and leaves every other URL as it was."""
    saved = {
        "conn_a": "https://sk_live_secret123:@api.stripe.com",
        "conn_b": "http://user:Pa%40ss@127.0.0.1:8080/base",
        "conn_c": "https://api.stripe.com",
        "conn_d": "http://127.0.0.1:12111/v1?at=@x",
    }
    old = sa.create_engine(engine_url(store_url))
    with old.begin() as conn:
        migrate(conn, "0012_followup_settling")
        conn.execute(
            sa.text(
                "INSERT INTO workspaces (id, name, customer_model, created_at)"
                " VALUES ('ws_a', 'a', '[]', :at)"
            ),
            {"at": utcnow()},
        )
        for conn_id, url in saved.items():
            conn.execute(
                sa.text(
                    "INSERT INTO connections (id, workspace_id, name, kind, base_url,"
                    " requests_per_second, api_key_encrypted, api_key_masked, livemode,"
                    " events_read, created_at) VALUES (:id, 'ws_a', :id, 'stripe', :url,"
                    " 20, 'x', 'sk_...123', false, true, :at)"
                ),
                {"id": conn_id, "url": url, "at": utcnow()},
            )
    old.dispose()
    engine = open_engine(store_url)
    try:
        with engine.connect() as conn:
            assert current_revision(conn) == HEAD_REVISION
            rows = dict(conn.execute(sa.text("SELECT id, base_url FROM connections")).all())
    finally:
        engine.dispose()
    assert rows == {
        "conn_a": "https://api.stripe.com",
        "conn_b": "http://127.0.0.1:8080/base",
        "conn_c": "https://api.stripe.com",
        "conn_d": "http://127.0.0.1:12111/v1?at=@x",
    }


def test_processes_migrating_a_new_sqlite_store_at_once_all_open_it(tmp_path: Path) -> None:
    """Several `serve`s started at once on a new SQLite store each found it unmigrated
    and migrated it: SQLite commits each CREATE TABLE alone (pysqlite begins no
    transaction for DDL), so the others' collided ("table workspaces already exists")
    and they failed to start.  The test holds the file's write lock until all three
    found it new and wait to write."""
    path = tmp_path / "headwater.db"
    url = f"sqlite:///{path}"
    hold = sqlite3.connect(path, isolation_level=None)
    hold.execute("PRAGMA journal_mode=WAL")
    hold.execute("BEGIN IMMEDIATE")
    code = "import sys; from headwater.adapters.store.database import open_engine; "
    code += "open_engine(sys.argv[1])"
    opening = [
        subprocess.Popen([sys.executable, "-c", code, url], stderr=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    time.sleep(2.0)  # each read the revision (none) and waits on the write lock
    hold.rollback()
    hold.close()
    failed = [p.communicate(timeout=60)[1] for p in opening]
    assert [p.returncode for p in opening] == [0, 0, 0], failed
    engine = open_engine(url)
    try:
        with engine.connect() as conn:
            assert current_revision(conn) == HEAD_REVISION
    finally:
        engine.dispose()
