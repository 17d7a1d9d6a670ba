"""A PostgreSQL metadata store whose connection drops at the worst moments of a run:
as the run's record is read back after its ending was recorded; as setup reads the
workspace, then as that failure is recorded and read back.

Each drop is real and lands exactly there: just before the statement is sent, the
server process of the connection it is sent on is terminated (as an administrator,
a failover or a pooler's restart would), so the statement meets a dead connection.
What must hold: the call returns the run as the store keeps it, never the driver's
error (CI once saw `AdminShutdown` raised out of `run_pipeline` by the read-back).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from sqlalchemy import Engine, event
from tests.conftest import PG_URL, pg_schema_url
from tests.services.failure_world import make

from headwater.adapters.store import runs
from headwater.kernel.entities import RunStatus
from headwater.kernel.settings import Settings
from headwater.sandbox.testing import RunningSandbox, start_sandbox
from headwater.services.app import App
from headwater.services.pipelines import runner

pytestmark = pytest.mark.postgres

CUSTOMERS = 40


class Drops:
    """Watches the statements `engine` sends: once the first of `steps` appears, each
    statement containing the next step's text has its connection's server process
    terminated just before it is sent (a step given as ``("text", False)`` is only
    waited for).  `dropped` lists the texts dropped on, in order."""

    def __init__(self, engine: Engine, *steps: str | tuple[str, bool]) -> None:
        self.steps = [(s, True) if isinstance(s, str) else s for s in steps]
        self.dropped: list[str] = []
        self.engine = engine
        event.listen(engine, "before_cursor_execute", self._before)

    def _before(self, _conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        if not self.steps or self.steps[0][0] not in statement:
            return
        text, drop = self.steps.pop(0)
        if drop:
            pid = cursor.connection.info.backend_pid
            with psycopg.connect(PG_URL, autocommit=True) as admin:
                # Waits (up to 5 s) for the process to be gone.
                admin.execute("SELECT pg_terminate_backend(%s, 5000)", (pid,))
            self.dropped.append(text)

    def close(self) -> None:
        event.remove(self.engine, "before_cursor_execute", self._before)


@pytest.fixture
def sb() -> Iterator[RunningSandbox]:
    with start_sandbox(customers=CUSTOMERS, seed=43) as running:
        yield running


@pytest.fixture
def pg_app(settings: Settings, pg_store_schema: str) -> Iterator[App]:
    app = App.open(dataclasses.replace(settings, database_url=pg_schema_url(pg_store_schema)))
    yield app
    app.close()


def test_a_connection_dropped_as_the_ended_run_is_read_back_returns_the_run(
    pg_app: App, sb: RunningSandbox
) -> None:
    pipeline = make(pg_app, sb)
    # The run's errors are read only by the read-back that follows its recorded ending.
    drops = Drops(pg_app.engine, "FROM run_errors")
    try:
        ended = runner.run_pipeline(pg_app, pipeline.id)
    finally:
        drops.close()
    assert drops.dropped == ["FROM run_errors"]
    assert ended.status == RunStatus.SUCCEEDED, ended.message
    assert ended.counters["read"] == ended.counters["written"] == CUSTOMERS
    assert runs.get_run(pg_app.engine, ended.id) == ended


def test_a_connection_dropped_in_setup_then_as_the_failure_is_recorded_and_read_back(
    pg_app: App, sb: RunningSandbox
) -> None:
    pipeline = make(pg_app, sb)
    drops = Drops(
        pg_app.engine,
        ("INSERT INTO runs", False),  # the run is created: its setup follows
        "FROM workspaces",  # setup reads the workspace's model: the run fails
        "UPDATE runs SET status",  # recording that failure
        "FROM run_errors",  # reading the ended run back
    )
    try:
        ended = runner.run_pipeline(pg_app, pipeline.id)
    finally:
        drops.close()
    assert drops.dropped == ["FROM workspaces", "UPDATE runs SET status", "FROM run_errors"]
    assert ended.status == RunStatus.FAILED
    assert ended.message is not None
    assert ended.message.startswith("the metadata store failed: "), ended.message
    assert "terminating connection due to administrator command" in ended.message
    assert ended.summary.get("transient") is True  # the service retries it
    assert runs.get_run(pg_app.engine, ended.id) == ended
    assert runs.live_run(pg_app.engine, pipeline.id) is None
    again = runner.run_pipeline(pg_app, pipeline.id)
    assert again.status == RunStatus.SUCCEEDED, again.message
    assert again.counters["written"] == CUSTOMERS
