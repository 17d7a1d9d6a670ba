"""Fixtures for end-to-end service tests: an App on each metadata store (SQLite and
PostgreSQL) and each warehouse (DuckDB and PostgreSQL).

`app` runs each test on both metadata stores, except slow tests and tests that start
the CLI as a subprocess (they use `home`, whose environment names the SQLite store).
`warehouse_app` pairs the stores with the warehouses (SQLite with DuckDB, PostgreSQL
with PostgreSQL; SQLite with both for CLI subprocesses) rather than crossing them, to
keep the suite's time reasonable.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from inspect import signature
from typing import Any

import pytest
import sqlalchemy as sa
from tests.conftest import PG_URL, fresh_schema, pg_schema_url

from headwater.adapters.store import objects, tables
from headwater.kernel.entities import Connection, Pipeline, Run
from headwater.kernel.settings import Settings
from headwater.sandbox.testing import RunningSandbox, start_sandbox
from headwater.services import connections
from headwater.services.app import App
from headwater.services.pipelines import manage
from headwater.services.warehouse import set_url

POSTGRES = pytest.mark.postgres


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "store" not in metafunc.fixturenames:
        return
    # A CLI subprocess finds its store through `home`'s environment: SQLite.
    subprocess_cli = "home" in signature(metafunc.function).parameters
    pg_store = "sqlite" if subprocess_cli else "postgres"
    if "warehouse_app" in metafunc.fixturenames:
        metafunc.parametrize(
            ("store", "warehouse_engine"),
            [("sqlite", "duckdb"), pytest.param(pg_store, "postgres", marks=POSTGRES)],
            ids=["duckdb", "postgres"],
        )
    elif subprocess_cli or metafunc.definition.get_closest_marker("slow"):
        metafunc.parametrize("store", ["sqlite"])
    else:
        metafunc.parametrize("store", ["sqlite", pytest.param("postgres", marks=POSTGRES)])


@pytest.fixture
def pg_store_schema() -> Iterator[str]:
    """A PostgreSQL schema for the metadata store, apart from the warehouse's (a test
    may drop the warehouse's schema)."""
    with fresh_schema("s") as name:
        yield name


@pytest.fixture
def app(request: pytest.FixtureRequest, settings: Settings, store: str) -> Iterator[App]:
    """The application on the metadata store `store` (parametrized above)."""
    if store == "postgres":
        url = pg_schema_url(request.getfixturevalue("pg_store_schema"))
        settings = dataclasses.replace(settings, database_url=url)
    application = App.open(settings)
    yield application
    application.close()


def use_postgres(app: App, schema: str) -> str:
    url = f"{PG_URL}?schema={schema}"
    set_url(app, url)
    return url


@pytest.fixture
def warehouse_app(request: pytest.FixtureRequest, app: App, warehouse_engine: str) -> App:
    """The app with its warehouse on each engine in turn (parametrized above)."""
    if warehouse_engine == "postgres":
        use_postgres(app, request.getfixturevalue("pg_schema"))
    return app


@pytest.fixture
def sandbox() -> Iterator[RunningSandbox]:
    with start_sandbox(customers=1500, seed=11) as running:
        yield running


def connect(app: App, sb: RunningSandbox, key: str | None = None, rps: float = 100.0) -> Connection:
    return connections.add_stripe(app, "sandbox", key or sb.secret_key, sb.url, rps)


MakePipeline = Callable[..., Pipeline]


@pytest.fixture
def make_pipeline(app: App) -> MakePipeline:
    def make(conn: Connection, mapping: dict[str, str] | None = None, **kw: Any) -> Pipeline:
        spec = {
            "kind": "mapping",
            "mapping": mapping
            or {
                "email": "email",
                "address.country": "address.country",
                "created_at": "created",
                "metadata": "metadata",
            },
        }
        return manage.create(app, conn.id, kw.pop("name", "p"), spec, **kw)

    return make


def reload(app: App, pipeline: Pipeline) -> Pipeline:
    return objects.get(app.engine, Pipeline, pipeline.id)


def due_now(app: App, run: Run) -> None:
    """Its backoff passes: `run` may be claimed now."""
    with app.engine.begin() as conn:
        conn.execute(
            sa.update(tables.runs).where(tables.runs.c.id == run.id).values(not_before=None)
        )
