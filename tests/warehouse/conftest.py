"""One fresh warehouse per test, for every engine (the conformance suite's parameter)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from tests.identity.world import MODEL as IDENTITY_MODEL

from headwater.adapters.warehouse import Warehouse, connect
from headwater.adapters.warehouse.duckdb import DuckDBWarehouse
from headwater.adapters.warehouse.postgres import PostgresWarehouse
from headwater.kernel.model import Column, PropertyType

PG_URL = "postgresql://root@127.0.0.1:5432/test"

T = PropertyType
#: One column per Customer Model type, plus reserved words that must be quoted.
COLUMNS = (
    Column("email", "email", T.STRING),
    Column("age", "age", T.INTEGER),
    Column("score", "score", T.FLOAT),
    Column("balance", "balance", T.DECIMAL),
    Column("vip", "vip", T.BOOLEAN),
    Column("created_at", "created_at", T.DATETIME),
    Column("birthday", "birthday", T.DATE),
    Column("metadata", "metadata", T.JSON),
    Column("tags", "tags", T.ARRAY),
    Column("address.city", "address_city", T.STRING),
    Column("order", "order", T.STRING),
    Column("user", "user", T.INTEGER),
)


@dataclass
class Engine:
    """How to open and poke one engine's warehouse from a test."""

    name: str
    url: str
    schema: str

    def open(self, after_merge: Callable[[], None] | None = None) -> Warehouse:
        """The warehouse as `connect` opens it; with `after_merge`, the engine's class
        opened directly with that hook injected (see `SQLWarehouse`)."""
        if after_merge is None:
            return connect(self.url, schema=self.schema)
        if self.name == "duckdb":
            path = self.url.removeprefix("duckdb:///")
            return DuckDBWarehouse(path, schema=self.schema, after_merge=after_merge)
        return PostgresWarehouse(self.url, schema=self.schema, after_merge=after_merge)

    def raw(self, warehouse: Warehouse, statement: str) -> list[tuple[Any, ...]]:
        """Run SQL outside the adapter (on PostgreSQL: from another session)."""
        statement = statement.replace("{s}", f'"{self.schema}"')
        if isinstance(warehouse, DuckDBWarehouse):
            return warehouse._conn.execute(statement).fetchall()
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            cur = conn.execute(statement)
            return cur.fetchall() if cur.description else []


ENGINES = [
    pytest.param("duckdb", id="duckdb"),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
]


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Engine:
    if request.param == "duckdb":
        return Engine("duckdb", f"duckdb:///{tmp_path / 'wh' / 'warehouse.duckdb'}", "headwater")
    # pg_schema (tests/conftest.py) fails, never skips, when the server is unreachable.
    schema = request.getfixturevalue("pg_schema")
    return Engine("postgresql", PG_URL, schema)


@pytest.fixture
def warehouse(engine: Engine) -> Iterator[Warehouse]:
    wh = engine.open()
    wh.ensure_columns(COLUMNS)
    try:
        yield wh
    finally:
        wh.close()


@pytest.fixture
def wh(engine: Engine) -> Iterator[Warehouse]:
    """A warehouse with the identity tests' Customer Model (tests/identity/world.py)."""
    warehouse = engine.open()
    warehouse.ensure_columns(IDENTITY_MODEL.columns)
    try:
        yield warehouse
    finally:
        warehouse.close()


@pytest.fixture
def reopen(engine: Engine, warehouse: Warehouse) -> Callable[[], Warehouse]:
    """Read through a new connection: what is committed, not what a session cached."""

    def _open() -> Warehouse:
        if engine.name == "duckdb":  # one process may hold a DuckDB file only once
            warehouse.close()
        return engine.open()

    return _open
