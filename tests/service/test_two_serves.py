"""Two `headwater serve` processes sharing one PostgreSQL metadata store."""

from __future__ import annotations

import threading
from pathlib import Path

import httpx
import psycopg
import pytest
from tests.conftest import PG_URL, fresh_schema, pg_schema_url
from tests.service.conftest import POSTGRES, wait_for
from tests.serving import Service, start_serve

from headwater.adapters.store.database import open_engine

pytestmark = [POSTGRES]


def _waiting_on_locks(application_name: str) -> int:
    """How many connections named `application_name` wait on a lock now."""
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE application_name = %s AND wait_event_type = 'Lock'",
            [application_name],
        ).fetchone()
    return int(row[0]) if row else 0


def _start_both(url: str, home: Path, hold: str, schema: str) -> list[Service]:
    """Start two serves on `url` while a transaction runs `hold` (a statement on the
    store's schema that makes a step of their start wait); end that transaction once
    both wait on it, so that they take that step together.  The serves, both up."""
    started: list[Service] = []
    failed: list[str] = []

    def start() -> None:
        try:
            started.append(start_serve(home, database_url=url, workers=0))
        except RuntimeError as exc:
            failed.append(str(exc))

    threads = [threading.Thread(target=start) for _ in range(2)]
    try:
        with psycopg.connect(PG_URL) as blocker:
            blocker.execute(hold)
            for thread in threads:
                thread.start()
            wait_for(lambda: _waiting_on_locks(schema) == 2, 60, "both serves wait")
            blocker.rollback()
        for thread in threads:
            thread.join(90)
        assert not failed, failed[0][-2000:]
        assert len(started) == 2
        for service in started:
            assert httpx.get(f"{service.url}/healthz", timeout=5).status_code == 200
    except BaseException:
        for service in started:
            service.stop()
        raise
    return started


@pytest.mark.slow
def test_two_serves_started_at_once_on_a_migrated_store_both_come_up(home: Path) -> None:
    """Both found no default workspace and inserted it: the second one's insert
    failed (UniqueViolation on workspaces_pkey) and it exited.  The test locks the
    workspaces table against writes until both serves wait to insert."""
    with fresh_schema("s") as schema:
        url = f"{pg_schema_url(schema)}&application_name={schema}"
        open_engine(url).dispose()  # migrated, with no workspace yet
        hold = f'LOCK TABLE "{schema}".workspaces IN SHARE MODE'
        for service in _start_both(url, home, hold, schema):
            service.stop()


@pytest.mark.slow
def test_two_serves_started_at_once_on_a_new_store_both_come_up(home: Path) -> None:
    """Both found the store unmigrated and migrated it at once: the second one's
    CREATE TABLE collided with the first one's (UniqueViolation) and it exited
    ("the metadata store is unavailable"), as two replicas of a deployment (or an
    upgrade restarting both) did.  The test holds the store's first table in a
    transaction (neither serve sees it) until both wait on it to migrate."""
    with fresh_schema("s") as schema:
        url = f"{pg_schema_url(schema)}&application_name={schema}"
        hold = f'CREATE TABLE "{schema}".alembic_version (version_num varchar(32))'
        for service in _start_both(url, home, hold, schema):
            service.stop()
