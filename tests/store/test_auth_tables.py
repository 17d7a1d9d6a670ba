"""Migration 0007_auth creates exactly the tables `auth_tables` declares, on both stores."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine

from headwater.adapters.store import auth_tables
from headwater.adapters.store.tables import metadata

AUTH_TABLES = {
    auth_tables.users.name,
    auth_tables.memberships.name,
    auth_tables.sessions.name,
    auth_tables.api_tokens.name,
    auth_tables.sign_in_attempts.name,
}


def _about_auth(diff: object) -> bool:
    text = repr(diff)
    return any(f"'{name}'" in text or f"Table('{name}'" in text for name in AUTH_TABLES)


def test_the_migrated_auth_tables_match_their_declaration(engine: Engine) -> None:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        differences = [d for d in compare_metadata(context, metadata) if _about_auth(d)]
    assert differences == []
