"""`headwater serve` executing runs, embedded (SQLite store, DuckDB warehouse) and on
PostgreSQL (store and warehouse): SIGTERM mid-run re-queues the run and a later serve
completes it exactly; the DuckDB file is free for readers while no run is live."""

from __future__ import annotations

import signal

import duckdb
import psycopg
import pytest
from tests.conftest import PG_URL
from tests.service.conftest import BIG, STORES, World, slow, wait_for
from tests.serving import start_serve

from headwater.kernel.entities import RunStatus
from headwater.sandbox.testing import RunningSandbox
from headwater.services.pipelines import runner

pytestmark = [pytest.mark.slow, pytest.mark.parametrize("service_store", STORES)]

CUSTOMERS = BIG


@pytest.fixture
def served_world(request: pytest.FixtureRequest, world: World) -> World:
    """Embedded (the DuckDB file of the home) on SQLite; all PostgreSQL otherwise."""
    if world.database_url is None:
        return world
    pg: World = request.getfixturevalue("pg_world")
    return pg


def _read_only(path: str) -> duckdb.DuckDBPyConnection:
    """The embedded warehouse opened read-only: free once the run shows its final status
    (the run closes it first: `tests/services/test_run_ending.py`)."""
    return duckdb.connect(path, read_only=True)


def _identities(world: World, pipeline_id: str) -> int:
    """The pipeline's identities in the warehouse, each customer once (checked)."""
    query = "SELECT count(*), count(DISTINCT _source_id) FROM {}.identities WHERE _pipeline_id = {}"
    if world.warehouse_schema is not None:
        with psycopg.connect(PG_URL) as pg:
            row = pg.execute(
                query.format(f'"{world.warehouse_schema}"', "%s"), [pipeline_id]
            ).fetchone()
    else:
        path = world.app.warehouse_url().removeprefix("duckdb:///")
        with _read_only(path) as conn:
            row = conn.execute(query.format("headwater", "?"), [pipeline_id]).fetchone()
    assert row is not None
    assert row[0] == row[1]
    return int(row[0])


def test_sigterm_mid_run_requeues_it_and_the_next_serve_completes_it_exactly(
    served_world: World, big_sandbox: RunningSandbox
) -> None:
    world = served_world
    [pipeline] = world.pipelines(big_sandbox, 1)
    slow(big_sandbox)
    run = runner.enqueue(world.app, pipeline.id)
    env = world.env(lease_seconds=5)
    with start_serve(world.home, database_url=world.database_url, env=env) as served:
        wait_for(lambda: world.run(run.id).counters.get("written", 0) > 0, 60, "a batch landed")
        served.signal(signal.SIGTERM)
        assert served.wait(60) == 0, served.text()
    stopped = world.run(run.id)
    assert stopped.status == RunStatus.QUEUED, stopped
    assert stopped.owner is None
    assert stopped.lease_expires_at is None
    assert (stopped.message or "").startswith("re-queued: the service on ")
    partial = _identities(world, pipeline.id)  # a DuckDB file is free: serve is gone
    assert 0 < partial < CUSTOMERS
    slow(big_sandbox, on=False)
    with start_serve(world.home, database_url=world.database_url, env=env):
        wait_for(lambda: world.run(run.id).status == RunStatus.SUCCEEDED, 120, "completed")
        # serve is up and idle: another process may read even a DuckDB file.
        assert _identities(world, pipeline.id) == CUSTOMERS
