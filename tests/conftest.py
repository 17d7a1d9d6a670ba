"""Shared fixtures: an isolated data directory, PostgreSQL schemas, the Stripe sandbox."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest

from headwater.entrypoints.environment import settings_from_env
from headwater.kernel.settings import Settings

PG_URL = "postgresql://root@127.0.0.1:5432/test"


def pg_schema_url(schema: str) -> str:
    """A URL whose connections default to `schema` (for the metadata store)."""
    return f"{PG_URL}?options=-csearch_path%3D{schema}"


@contextmanager
def fresh_schema(prefix: str = "t") -> Iterator[str]:
    """A fresh, uniquely named PostgreSQL schema, dropped afterwards.

    Fails (never skips) when PostgreSQL is unreachable: CI must not go green without it.
    """
    name = f"{prefix}_{secrets.token_hex(6)}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{name}"')
    try:
        yield name
    finally:
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


@pytest.fixture
def pg_schema() -> Iterator[str]:
    """A fresh PostgreSQL schema for the test (see `fresh_schema`)."""
    with fresh_schema() as name:
        yield name


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty HEADWATER_HOME with the embedded defaults (SQLite + DuckDB)."""
    data = tmp_path / "home"
    monkeypatch.setenv("HEADWATER_HOME", str(data))
    monkeypatch.delenv("HEADWATER_DATABASE_URL", raising=False)
    monkeypatch.delenv("HEADWATER_SECRET_KEY", raising=False)
    return data


@pytest.fixture
def settings(home: Path) -> Settings:
    return settings_from_env()
