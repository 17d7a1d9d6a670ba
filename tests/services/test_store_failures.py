"""The metadata store failing under a run: a SQLite file locked by another process for
longer than the busy timeout, a PostgreSQL store whose connections are dropped.

What must hold: the command says what is wrong in one line (never a traceback), the
run's record ends as what happened, the store stays intact, and the warehouse holds
exactly what a fresh import holds once the store is back.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import secrets
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from tests.conftest import PG_URL, pg_schema_url
from tests.services.failure_world import fresh_import, landed, make, seed_shared

from headwater.adapters.store import database, progress, runs
from headwater.kernel.entities import Run
from headwater.kernel.settings import Settings
from headwater.sandbox.testing import RunningSandbox, start_sandbox
from headwater.services.app import App
from headwater.services.pipelines import runner

pytestmark = pytest.mark.slow


@pytest.fixture
def sb() -> Iterator[RunningSandbox]:
    with start_sandbox(customers=1500, seed=41) as running:
        seed_shared(running)
        yield running


class Locker:
    """Another process, started ahead, that takes the SQLite file's write lock on
    request (so that the lock lands at once, however loaded the machine)."""

    def __init__(self, db: Path) -> None:
        script = (
            "import sqlite3, sys; c = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
            "for line in sys.stdin:\n"
            "    c.execute('BEGIN EXCLUSIVE' if line == 'lock\\n' else 'COMMIT')\n"
            "    print('done', flush=True)\n"
        )
        self.proc = subprocess.Popen(
            [sys.executable, "-c", script, str(db)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def _say(self, line: str) -> None:
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self.proc.stdin.write(line)
        self.proc.stdin.flush()
        assert self.proc.stdout.readline() == "done\n"

    def lock(self) -> None:
        self._say("lock\n")

    def unlock(self) -> None:
        self._say("unlock\n")

    def close(self) -> None:
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=10)
        self.proc.stdout.close()


@contextmanager
def write_locked(db: Path) -> Iterator[None]:
    """Another process holds the SQLite file's write lock until the block ends."""
    locker = Locker(db)
    try:
        locker.lock()
        yield
    finally:
        locker.close()


def test_a_store_locked_past_the_busy_timeout_fails_the_command_in_one_clear_line(
    app: App, home: Path, settings: Settings, sb: RunningSandbox, tmp_path: Path
) -> None:
    pipeline = make(app, sb)
    env = {**os.environ, "HEADWATER_HOME": str(home)}
    command = [sys.executable, "-m", "headwater", "pipelines", "run", pipeline.id]
    with write_locked(home / "headwater.db"):
        locked = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert locked.returncode == 1, locked.stderr[-3000:]
    assert "Traceback" not in locked.stderr, locked.stderr[-3000:]
    assert "DELETE FROM" not in locked.stderr  # no SQL shown
    lines = locked.stderr.strip().splitlines()
    assert len(lines) == 1, locked.stderr
    assert lines[0].startswith("error: the metadata store failed: "), lines[0]
    assert "database is locked (another process held its write lock" in lines[0]
    # Nothing was left half-started: no live run blocks the next one.
    assert runs.live_run(app.engine, pipeline.id) is None
    again = runner.run_pipeline(app, pipeline.id)
    assert again.status == "succeeded", again.message
    with contextlib.closing(sqlite3.connect(home / "headwater.db")) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    want = fresh_import(settings, tmp_path / "ref", f"duckdb:///{tmp_path / 'ref.duckdb'}", sb)
    assert landed(app, pipeline.id) == want


def _terminate(application_name: str) -> int:
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        found = conn.execute(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE application_name = %s",
            (application_name,),
        ).fetchone()
    return int(found[0]) if found else 0


@pytest.mark.postgres
def test_a_postgres_store_whose_connections_drop_during_a_run_keeps_the_run_s_account(
    settings: Settings, sb: RunningSandbox, tmp_path: Path, pg_store_schema: str
) -> None:
    name = f"hw_store_{secrets.token_hex(4)}"
    url = f"{pg_schema_url(pg_store_schema)}&application_name={name}"
    app = App.open(dataclasses.replace(settings, database_url=url))
    try:
        pipeline = make(app, sb)
        sb.control(latency_ms=80)  # a run of a few seconds, for the drops to land in
        killed = 0
        done = threading.Event()

        def drops() -> None:
            nonlocal killed
            # From the moment the run is claimed (its creation is the command's own
            # failure, one line: the test of a locked store shows it).
            running = f"SELECT count(*) FROM \"{pg_store_schema}\".runs WHERE status = 'running'"
            with psycopg.connect(PG_URL, autocommit=True) as look:
                while not done.wait(0.005):
                    found = look.execute(running).fetchone()
                    if found and found[0]:
                        break
            while not done.wait(0.05):
                killed += _terminate(name)

        dropper = threading.Thread(target=drops)
        dropper.start()
        try:
            ended = runner.run_pipeline(app, pipeline.id)
        finally:
            done.set()
            dropper.join()
        sb.control(latency_ms=0)
        assert killed >= 1, "the store's sessions were never dropped"
        stored = runs.get_run(app.engine, ended.id)
        assert stored.status == ended.status  # the run's account is the store's
        if ended.status == "failed":
            # A drop landed mid-query as the run started: a store failure, retried.
            assert ended.message is not None
            assert ended.message.startswith("the metadata store failed: "), ended.message
            assert ended.summary.get("transient") is True
        else:
            # The run kept its account: it read and wrote every customer, and says so.
            assert ended.status == "succeeded", ended.message
            assert stored.counters["written"] == stored.counters["read"] == 1509
        assert runs.live_run(app.engine, pipeline.id) is None
        # The next run, without drops, resolves whatever a dropped resolution left.
        again = runner.run_pipeline(app, pipeline.id)
        assert again.status == "succeeded", again.message
        got = landed(app, pipeline.id)
    finally:
        app.close()
    want = fresh_import(settings, tmp_path / "ref", f"duckdb:///{tmp_path / 'ref.duckdb'}", sb)
    assert got == want


def test_a_store_locked_past_the_busy_timeout_during_a_run_delays_its_account_only(
    settings: Settings,
    sb: RunningSandbox,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A busy timeout of 0.2 s, so that a lock of 4 s outlasts it many times over
    # (and the 2 s a progress update waits).
    monkeypatch.setattr(database, "SQLITE_BUSY_TIMEOUT_MS", 200)
    monkeypatch.setattr(progress, "SQLITE_BUSY_TIMEOUT_MS", 200)
    app = App.open(settings)
    try:
        pipeline = make(app, sb, rps=8)  # a read of 16 pages: two seconds or more
        db = settings.home / "headwater.db"
        locked = threading.Event()

        locker = Locker(db)

        def lock_while_running() -> None:
            with contextlib.closing(sqlite3.connect(db)) as look:
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline:
                    query = "SELECT count(*) FROM runs WHERE status = 'running'"
                    if look.execute(query).fetchone()[0]:
                        break
                    time.sleep(0.01)
            locker.lock()
            locked.set()
            time.sleep(4.0)
            locker.unlock()

        watcher = threading.Thread(target=lock_while_running)
        watcher.start()
        try:
            ended = runner.run_pipeline(app, pipeline.id)
        finally:
            watcher.join()
            locker.close()
        assert locked.is_set()
        refused = [r.getMessage() for r in caplog.records if "database is locked" in r.getMessage()]
        assert refused, "the lock never stood in the run's way"
        assert ended.status == "succeeded", ended.message
        stored = runs.get_run(app.engine, ended.id)  # the ending waited the lock out
        assert stored.status == "succeeded"
        assert stored.counters["written"] == stored.counters["read"] == 1509
        with contextlib.closing(sqlite3.connect(db)) as check:
            assert check.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        # A state copy the lock refused leaves at most a needless full run: the next
        # run lands the same rows either way.
        again = runner.run_pipeline(app, pipeline.id)
        assert again.status == "succeeded", again.message
        got = landed(app, pipeline.id)
    finally:
        app.close()
    want = fresh_import(settings, tmp_path / "ref", f"duckdb:///{tmp_path / 'ref.duckdb'}", sb)
    assert got == want


@pytest.mark.postgres
def test_a_store_session_killed_mid_query_as_a_run_starts_fails_it_as_a_store_failure_to_retry(
    settings: Settings, sb: RunningSandbox, pg_store_schema: str
) -> None:
    name = f"hw_store_{secrets.token_hex(4)}"
    url = f"{pg_schema_url(pg_store_schema)}&application_name={name}"
    app = App.open(dataclasses.replace(settings, database_url=url))
    try:
        pipeline = make(app, sb)
        queued = runner.enqueue(app, pipeline.id)
        # The run's setup reads the workspace (for its warehouse): hold that table, and
        # end the run's store session while it waits there, mid-query.
        with psycopg.connect(pg_schema_url(pg_store_schema)) as holder:
            holder.execute("LOCK TABLE workspaces IN ACCESS EXCLUSIVE MODE")
            ended: list[Run] = []
            running = threading.Thread(
                target=lambda: ended.append(runner.execute_run(app, queued.id))
            )
            running.start()
            waiting = (
                "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE application_name = %s AND wait_event_type = 'Lock'"
            )
            deadline = time.monotonic() + 20
            with psycopg.connect(PG_URL, autocommit=True) as killer:
                while time.monotonic() < deadline:
                    found = killer.execute(waiting, (name,)).fetchone()
                    if found and found[0]:
                        break
                    time.sleep(0.01)
                else:
                    pytest.fail("the run never waited on the workspaces table")
            holder.rollback()
            running.join(timeout=60)
        (run,) = ended
        assert run.status == "failed"
        assert run.message is not None
        assert run.message.startswith("the metadata store failed: "), run.message
        assert "terminating connection" in run.message
        assert run.summary.get("transient") is True  # the service retries it
        again = runner.run_pipeline(app, pipeline.id)
        assert again.status == "succeeded", again.message
        assert again.counters["written"] == 1509
    finally:
        app.close()
