"""Fixtures for the metadata store tests: an engine on each store in turn."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from tests.conftest import pg_schema_url

from headwater.adapters.store.database import open_engine


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'meta.db'}"
    else:
        url = pg_schema_url(request.getfixturevalue("pg_schema"))
    eng = open_engine(url)
    yield eng
    eng.dispose()
