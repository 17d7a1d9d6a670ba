"""Fixtures for the metadata store tests: an engine on each store in turn."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from tests.conftest import pg_schema_url

from headwater.adapters.store.database import open_engine


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty metadata store, on each store in turn."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'meta.db'}"
    return pg_schema_url(request.getfixturevalue("pg_schema"))


@pytest.fixture
def engine(store_url: str) -> Iterator[Engine]:
    eng = open_engine(store_url)
    yield eng
    eng.dispose()
