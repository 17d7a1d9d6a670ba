"""The metadata store on SQLite and PostgreSQL: migrations, entities, runs, secrets."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine
from tests.conftest import pg_schema_url

from headwater.adapters.store import objects, runs
from headwater.adapters.store.crypto import Cipher, SecretKeyMismatch
from headwater.adapters.store.database import (
    HEAD_REVISION,
    StoreUnavailable,
    current_revision,
    describe_error,
    engine_url,
    migrate,
    open_engine,
)
from headwater.kernel.entities import Connection, Pipeline, RunStatus, Workspace, utcnow
from headwater.kernel.errors import Conflict, NotFound
from headwater.kernel.model import DEFAULT_MODEL
from headwater.kernel.records import RecordError, Step
from headwater.kernel.state import PipelineState


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'meta.db'}"
    else:
        url = pg_schema_url(request.getfixturevalue("pg_schema"))
    eng = open_engine(url)
    yield eng
    eng.dispose()


def _seed(engine: Engine) -> Pipeline:
    now = utcnow()
    objects.add(engine, Workspace("ws", "default", DEFAULT_MODEL.as_list(), None, now))
    objects.add(
        engine,
        Connection(
            "conn_1",
            "ws",
            "stripe",
            "stripe",
            "http://x",
            20.0,
            "v1:x",
            "sk_test_…abcd",
            False,
            True,
            now,
        ),
    )
    return objects.add(
        engine,
        Pipeline(
            "pl_1",
            "ws",
            "conn_1",
            "p",
            "",
            True,
            "off",
            True,
            None,
            {"kind": "mapping", "mapping": {"email": "email"}},
            PipelineState(),
            True,
            now,
            now,
        ),
    )


def test_migrations_are_idempotent_and_entities_round_trip(engine: Engine) -> None:
    pipeline = _seed(engine)
    loaded = objects.get(engine, Pipeline, "pl_1")
    assert loaded.transformation == pipeline.transformation
    assert loaded.state == PipelineState()
    loaded.state = PipelineState(position={"event_id": "evt_1", "created": 5}, max_created=7)
    objects.save(engine, loaded, only=["state"])
    assert objects.get(engine, Pipeline, "pl_1").state == loaded.state
    # Opening again runs migrations again: nothing to do, nothing lost.
    again = open_engine(str(engine.url.render_as_string(hide_password=False)))
    assert [p.id for p in objects.find(again, Pipeline)] == ["pl_1"]
    again.dispose()
    with pytest.raises(NotFound, match="no pipeline with id 'nope'"):
        objects.get(engine, Pipeline, "nope")


def test_the_known_head_is_alembics_head_and_a_new_store_reaches_it(engine: Engine) -> None:
    from importlib.resources import files

    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(files("headwater.adapters.store") / "migrations"))
    assert ScriptDirectory.from_config(config).get_current_head() == HEAD_REVISION
    with engine.connect() as conn:
        assert current_revision(conn) == HEAD_REVISION


def test_one_live_run_per_pipeline_is_enforced_by_the_database(engine: Engine) -> None:
    _seed(engine)
    first = runs.create_run(engine, "pl_1", "full")
    with pytest.raises(Conflict, match=rf"already has a live run \({first.id}, queued\)"):
        runs.create_run(engine, "pl_1", "full")
    runs.update_run(engine, first.id, status="succeeded")
    second = runs.create_run(engine, "pl_1", "incremental")
    assert second.id != first.id


def _dead_pid() -> int:
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(dead.stdout)


def test_a_run_is_dead_when_its_lease_lapsed_or_its_process_on_this_host_is_gone(
    engine: Engine,
) -> None:
    _seed(engine)
    now = utcnow()
    run = runs.create_run(engine, "pl_1", "full")
    claimed = runs.claim_run(engine, run.id, "me", now + timedelta(seconds=30))
    assert claimed is not None
    assert claimed.status == RunStatus.RUNNING
    assert claimed.lease_expires_at == now + timedelta(seconds=30)
    # Alive: its lease holds, whatever the age of its last progress update.
    runs.update_run(engine, run.id, heartbeat_at=now - timedelta(hours=1))
    assert runs.reap_lapsed(engine, now + timedelta(seconds=29)) == []
    # Renewed: still alive past the first lease.
    assert runs.renew_lease(engine, run.id, "me", now + timedelta(seconds=60)).held
    assert runs.reap_lapsed(engine, now + timedelta(seconds=59)) == []
    # Lapsed: closed as failed, naming the host.
    assert runs.reap_lapsed(engine, now + timedelta(seconds=61)) == [run.id]
    lost = runs.get_run(engine, run.id)
    assert lost.status == RunStatus.FAILED
    assert lost.message == f"worker lost on {lost.host}: its lease lapsed and was not renewed"
    # Its old owner can neither renew nor record an ending any more.
    assert not runs.renew_lease(engine, run.id, "me", now + timedelta(seconds=90)).held
    assert not runs.finish_run(engine, run.id, "me", status="succeeded")
    runs.note_after_loss(engine, run.id, "me", "it stopped without writing")
    noted = runs.get_run(engine, run.id)
    assert noted.status == RunStatus.FAILED
    assert noted.message == (
        f"worker lost on {lost.host}: its lease lapsed and was not renewed; after that, the "
        "run's own process said: it stopped without writing"
    )
    # A run whose process on this host is gone is closed at once, lease or not.
    second = runs.create_run(engine, "pl_1", "full")
    assert runs.claim_run(engine, second.id, "other", now + timedelta(hours=1))
    runs.update_run(engine, second.id, pid=_dead_pid())
    third = runs.create_run(engine, "pl_1", "full")  # creating one closes it
    gone = runs.get_run(engine, second.id)
    assert gone.status == RunStatus.FAILED
    assert (
        gone.message
        == f"worker lost on {gone.host}: its process {gone.pid} ended without finishing"
    )
    # A queued run is never closed for waiting, however long.
    assert runs.reap_lapsed(engine, now + timedelta(days=30)) == []
    assert runs.get_run(engine, third.id).status == RunStatus.QUEUED


def test_cancel_ends_a_queued_run_at_once_and_asks_a_running_one_to_stop(
    engine: Engine,
) -> None:
    _seed(engine)
    queued = runs.create_run(engine, "pl_1", "full")
    cancelled = runs.request_cancel(engine, queued.id)
    assert cancelled.status == RunStatus.CANCELLED
    assert runs.claim_run(engine, queued.id, "me", utcnow()) is None  # never starts
    running = runs.create_run(engine, "pl_1", "full")
    assert runs.claim_run(engine, running.id, "me", utcnow() + timedelta(seconds=30))
    assert not runs.renew_lease(engine, running.id, "me", utcnow()).cancel_requested
    asked = runs.request_cancel(engine, running.id)
    assert asked.status == RunStatus.RUNNING
    assert asked.cancel_requested
    assert runs.renew_lease(engine, running.id, "me", utcnow()).cancel_requested
    assert runs.finish_run(engine, running.id, "me", status="cancelled")
    with pytest.raises(Conflict, match=rf"run {running.id} already ended \(cancelled\)"):
        runs.request_cancel(engine, running.id)


def test_run_errors_are_capped_but_kept_in_order(engine: Engine) -> None:
    _seed(engine)
    run = runs.create_run(engine, "pl_1", "full")
    errors = [RecordError(f"cus_{i}", Step.VALIDATE, f"bad {i}") for i in range(1200)]
    runs.add_errors(engine, run.id, errors[:700])
    runs.add_errors(engine, run.id, errors[700:])
    with engine.connect() as conn:
        stored = conn.execute(sa.text("select count(*) from run_errors")).scalar_one()
    assert stored == runs.MAX_STORED_ERRORS
    shown = runs.get_run(engine, run.id, error_limit=3).errors
    assert [e["source_id"] for e in shown] == ["cus_0", "cus_1", "cus_2"]


def test_deleting_a_pipeline_removes_its_runs(engine: Engine) -> None:
    _seed(engine)
    run = runs.create_run(engine, "pl_1", "full")
    runs.add_errors(engine, run.id, [RecordError("cus_1", Step.READ, "x")])
    objects.remove(engine, Pipeline, "pl_1")
    with pytest.raises(NotFound):
        runs.get_run(engine, run.id)


def test_cipher_round_trip_and_key_file(tmp_path: Path) -> None:
    cipher = Cipher.from_settings(None, tmp_path)
    key_file = tmp_path / "secret.key"
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    token = cipher.encrypt("sk_test_abcdefgh1234", context="conn_1")
    assert "sk_test" not in token
    assert Cipher.from_settings(None, tmp_path).decrypt(token, "conn_1") == "sk_test_abcdefgh1234"
    with pytest.raises(SecretKeyMismatch):
        cipher.decrypt(token, "conn_2")  # bound to its connection
    with pytest.raises(SecretKeyMismatch, match="HEADWATER_SECRET_KEY"):
        Cipher.from_settings("another passphrase", tmp_path).decrypt(token, "conn_1")


@contextmanager
def locked(engine: Engine, run_id: str) -> Iterator[None]:
    """Another connection holds a write lock: the whole SQLite database
    (`BEGIN IMMEDIATE`), or the run's row on PostgreSQL (`SELECT … FOR UPDATE`)."""
    with engine.connect() as other:
        raw: Any = other.connection.dbapi_connection
        if engine.dialect.name == "sqlite":
            raw.execute("BEGIN IMMEDIATE")
        else:
            other.execute(sa.text("SELECT id FROM runs WHERE id = :id FOR UPDATE"), {"id": run_id})
        try:
            yield
        finally:
            if engine.dialect.name == "sqlite":
                raw.execute("ROLLBACK")
            else:
                other.rollback()


def test_a_progress_update_waits_a_bounded_time_for_a_lock_and_its_error_shows_no_sql(
    engine: Engine,
) -> None:
    _seed(engine)
    run = runs.create_run(engine, "pl_1", "full")
    secret_email = "private.person@example.com"
    errors = [RecordError("cus_1", Step.VALIDATE, f"bad email {secret_email}")]
    started = time.monotonic()
    with locked(engine, run.id), pytest.raises(sa.exc.OperationalError) as caught:
        runs.record_progress(engine, run.id, {"read": 5}, errors)
    waited = time.monotonic() - started
    wait = runs.PROGRESS_LOCK_WAIT.total_seconds()
    assert wait * 0.9 <= waited < wait + 5
    raw = str(caught.value)
    assert "INSERT INTO run_errors" in raw  # what used to be shown: SQL ...
    assert secret_email not in raw  # ... without its parameters, hidden by the engine
    expected = {
        "sqlite": "OperationalError: database is locked",
        "postgresql": "LockNotAvailable: canceling statement due to lock timeout",
    }
    assert describe_error(caught.value) == expected[engine.dialect.name]
    # Nothing was half-written, and the update goes through once the lock is gone.
    assert runs.get_run(engine, run.id).counters == {}
    runs.record_progress(engine, run.id, {"read": 5}, errors)
    assert runs.get_run(engine, run.id).counters == {"read": 5}


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_migration_0002_encrypts_the_plain_warehouse_urls_of_a_0001_store(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if kind == "sqlite":
        url = f"sqlite:///{tmp_path / 'old.db'}"
    else:
        url = pg_schema_url(request.getfixturevalue("pg_schema"))
    plain = "postgresql://wh:Sup3r-s3cret@db.example:5432/prod?schema=cdp"
    old = sa.create_engine(engine_url(url))
    with old.begin() as conn:
        migrate(conn, "0001")
        for ws, value in (("ws_a", plain), ("ws_b", None)):
            conn.execute(
                sa.text(
                    "INSERT INTO workspaces (id, name, customer_model, warehouse_url, created_at)"
                    " VALUES (:id, :id, '[]', :url, :at)"
                ),
                {"id": ws, "url": value, "at": utcnow()},
            )
    old.dispose()
    cipher = Cipher(b"k" * 32)
    with pytest.raises(StoreUnavailable, match="secret key"):
        open_engine(url)  # encrypting needs the key
    engine = open_engine(url, cipher=cipher)
    try:
        with engine.connect() as conn:
            assert current_revision(conn) == HEAD_REVISION
            query = sa.text("SELECT id, warehouse_url_encrypted FROM workspaces")
            rows = dict(conn.execute(query).all())
        assert "Sup3r-s3cret" not in repr(rows)
        assert rows["ws_b"] is None
        assert cipher.decrypt(rows["ws_a"], context="warehouse_url:ws_a") == plain
        workspace = objects.get(engine, Workspace, "ws_a")
        assert workspace.warehouse_url_encrypted == rows["ws_a"]
        open_engine(url).dispose()  # migrated: opening needs no key any more
    finally:
        engine.dispose()
