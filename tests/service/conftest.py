"""A metadata store shared by the test process and real `headwater serve` / `worker`
subprocesses, on SQLite or PostgreSQL, with helpers to watch runs."""

from __future__ import annotations

import dataclasses
import os
import signal
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
import sqlalchemy
from tests.conftest import PG_URL, fresh_schema, pg_schema_url

from headwater.adapters.store import runs
from headwater.entrypoints.environment import settings_from_env
from headwater.kernel.entities import Pipeline, Run
from headwater.sandbox.testing import RunningSandbox, start_sandbox
from headwater.services import connections
from headwater.services.app import App
from headwater.services.pipelines import manage
from headwater.services.warehouse import set_url

POSTGRES = pytest.mark.postgres
#: `@pytest.mark.parametrize("service_store", STORES)`: both metadata stores.
STORES = ["sqlite", pytest.param("postgres", marks=POSTGRES)]
MAPPING = {"kind": "mapping", "mapping": {"email": "email"}}


@dataclass
class World:
    """The test's view of a store that subprocesses share: `home` and `database_url`
    for `tests.serving`, `app` for the test's own calls."""

    home: Path
    database_url: str | None
    app: App
    warehouse_schema: str | None = None

    def env(self, lease_seconds: float = 30.0) -> dict[str, str]:
        return {"HEADWATER_RUN_LEASE_SECONDS": str(lease_seconds)}

    def pipelines(self, sandbox: RunningSandbox, count: int) -> list[Pipeline]:
        conn = connections.add_stripe(self.app, "sandbox", sandbox.secret_key, sandbox.url, 1000)
        return [manage.create(self.app, conn.id, f"p{i}", MAPPING) for i in range(count)]

    def run(self, run_id: str) -> Run:
        return runs.get_run(self.app.engine, run_id, 0)

    def warehouse_rows(self, pipeline_id: str, run_id: str | None = None) -> int:
        """Identities of a pipeline (written by `run_id`) in the PostgreSQL warehouse."""
        assert self.warehouse_schema is not None
        where = "_pipeline_id = %s" + (" AND _run_id = %s" if run_id else "")
        params = [pipeline_id, run_id] if run_id else [pipeline_id]
        with psycopg.connect(PG_URL) as conn:
            row = conn.execute(
                f'SELECT count(*) FROM "{self.warehouse_schema}".identities WHERE {where}', params
            ).fetchone()
        return int(row[0]) if row else 0


def wait_for(condition: Callable[[], object], timeout: float, what: str) -> None:
    """Poll `condition` until it is true; fail saying `what` did not happen in time."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(0.1)


@pytest.fixture
def world(home: Path, service_store: str) -> Iterator[World]:
    """A World on the store `service_store` (parametrize it with `STORES`)."""
    with fresh_schema("s") if service_store == "postgres" else _nothing() as schema:
        url = pg_schema_url(schema) if schema else None
        settings = settings_from_env({"HEADWATER_HOME": str(home)})
        if url:
            settings = dataclasses.replace(settings, database_url=url)
        app = App.open(settings)
        try:
            yield World(home, url, app)
        finally:
            app.close()


@pytest.fixture
def pg_world(world: World) -> Iterator[World]:
    """The World with its warehouse in a fresh PostgreSQL schema (several worker
    processes cannot share one DuckDB file)."""
    with fresh_schema("w") as schema:
        set_url(world.app, f"{PG_URL}?schema={schema}")
        world.warehouse_schema = schema
        yield world


@pytest.fixture
def small_sandbox() -> Iterator[RunningSandbox]:
    with start_sandbox(customers=5, seed=5) as running:
        yield running


#: Customers of `big_sandbox`: three write batches of 5,000, so a run has batch
#: boundaries to stop at.
BIG = 11_000


@pytest.fixture(scope="module")
def big_sandbox() -> Iterator[RunningSandbox]:
    """A sandbox whose reads can be slowed (`slow`) to keep a run alive a while."""
    with start_sandbox(customers=BIG, seed=8) as running:
        yield running


def slow(sandbox: RunningSandbox, on: bool = True, latency_ms: int = 60) -> None:
    """Slow pages, one at a time: a full run of `BIG` takes several seconds per batch."""
    sandbox.control(latency_ms=latency_ms if on else 0, concurrency_limit=1 if on else 0)


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *_exc: object) -> None:
        return None


def _store_free(app: App, run_id: str) -> bool:
    """Whether another process can write the run's row now: no process holds SQLite's
    write lock, nor a PostgreSQL lock on that row."""
    if app.engine.dialect.name == "sqlite":
        path = app.engine.url.database
        assert path is not None
        conn = sqlite3.connect(path, timeout=0.2)
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.rollback()
            return True
        except sqlite3.OperationalError:
            return False
        finally:
            conn.close()
    with app.engine.connect() as conn:
        try:
            conn.exec_driver_sql("SET LOCAL lock_timeout = '200ms'")
            conn.exec_driver_sql("SELECT id FROM runs WHERE id = %(id)s FOR UPDATE", {"id": run_id})
            return True
        except sqlalchemy.exc.OperationalError as exc:
            if isinstance(exc.orig, psycopg.errors.LockNotAvailable):  # held elsewhere
                return False
            raise
        finally:
            conn.rollback()


def pause(app: App, pid: int, run_id: str, *, group: bool = False) -> None:
    """SIGSTOP the process `pid` running `run_id` (with `group`, its process group) at a
    moment it holds no lock in `app`'s store.  Stopped inside a write (a lease renewal,
    a progress update), it would keep every other process from closing its run until
    it continued (SQLite has one writer; PostgreSQL locks the row): CI's load once
    stopped a worker there and the run stayed open 30 s."""
    signal_to = os.killpg if group else os.kill
    for _ in range(100):
        signal_to(pid, signal.SIGSTOP)
        if _store_free(app, run_id):
            return
        signal_to(pid, signal.SIGCONT)
        time.sleep(0.05)
    raise AssertionError(f"process {pid} held the store's lock at every try")
