"""Fixtures for end-to-end service tests: an App on SQLite/DuckDB or PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from tests.conftest import PG_URL

from headwater.adapters.store import objects
from headwater.kernel.entities import Connection, Pipeline
from headwater.kernel.settings import Settings
from headwater.sandbox.testing import RunningSandbox, start_sandbox
from headwater.services import connections
from headwater.services.app import App
from headwater.services.pipelines import manage
from headwater.services.warehouse import set_url

WAREHOUSES = ["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture
def app(settings: Settings) -> Iterator[App]:
    application = App.open(settings)
    yield application
    application.close()


def use_postgres(app: App, schema: str) -> str:
    url = f"{PG_URL}?schema={schema}"
    set_url(app, url)
    return url


@pytest.fixture(params=WAREHOUSES)
def warehouse_app(request: pytest.FixtureRequest, app: App) -> App:
    """The app with its warehouse on each engine in turn."""
    if request.param == "postgres":
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
