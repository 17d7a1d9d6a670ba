"""The metadata store on SQLite and PostgreSQL: migrations, entities, runs, secrets."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

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
    engine_url,
    migrate,
    open_engine,
)
from headwater.kernel.entities import Connection, Pipeline, Workspace, utcnow
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


def test_abandoned_runs_are_recovered(engine: Engine) -> None:
    _seed(engine)
    # A run owned by a process that no longer exists (as after kill -9).
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    run = runs.create_run(engine, "pl_1", "full")
    runs.update_run(engine, run.id, status="running", pid=int(dead.stdout))
    replacement = runs.create_run(engine, "pl_1", "full")
    old = runs.get_run(engine, run.id)
    assert old.status == "failed"
    assert "abandoned" in (old.message or "")
    # A live run with an old heartbeat from another host is abandoned as well.
    runs.update_run(
        engine,
        replacement.id,
        status="running",
        host="elsewhere",
        heartbeat_at=utcnow() - timedelta(minutes=5),
    )
    assert runs.recover_abandoned(engine, "pl_1") == [replacement.id]


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
