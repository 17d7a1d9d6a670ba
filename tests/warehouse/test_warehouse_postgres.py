"""PostgreSQL-specific behaviour: a connection killed mid-batch, staging, reconnects."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import psycopg
import pytest

from headwater.adapters.warehouse import WarehouseError, WriteBatch
from headwater.adapters.warehouse.contract import ModelChange
from headwater.adapters.warehouse.postgres import PostgresWarehouse
from headwater.kernel.model import DEFAULT_MODEL, Column
from headwater.kernel.records import IdentityRow
from headwater.services.identity import Context, identity_settings
from headwater.services.identity.warehouse import rebuild_in_warehouse

from .conftest import COLUMNS, PG_URL

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg(pg_schema: str):
    wh = PostgresWarehouse(PG_URL, schema=pg_schema)
    wh.ensure_columns(COLUMNS)
    wh.claim("p1", "r1")
    yield wh
    wh.close()


def rows(*ids: str, email: str = "x") -> list[IdentityRow]:
    return [IdentityRow(i, datetime.now(UTC), {"email": email}) for i in ids]


def test_connection_killed_between_statements_leaves_nothing(pg: PostgresWarehouse) -> None:
    pg.write(WriteBatch("p1", "c1", "r1", rows("cus_1", "cus_2", email="kept")))
    before = pg.identities(), pg.pending_identities().keys

    def kill() -> None:
        # The identity merge has run in the victim's open transaction; end its session.
        with psycopg.connect(PG_URL, autocommit=True) as other:
            other.execute("SELECT pg_terminate_backend(%s)", (victim,))

    hooked = PostgresWarehouse(PG_URL, schema=pg.schema, after_merge=kill)
    assert hooked._conn is not None
    victim = hooked._conn.info.backend_pid
    try:
        hooked.claim("p1", "r2")
        with pytest.raises(WarehouseError, match="PostgreSQL write failed"):
            hooked.write(
                WriteBatch(
                    "p1", "c1", "r2", rows("cus_1", "cus_3", email="lost"), deletes=["cus_2"]
                )
            )
        # The killed batch left no trace; the adapter reconnects by itself.
        assert (pg.identities(), pg.pending_identities().keys) == before
        assert hooked.count() == 2
        assert hooked._conn is not None
        assert hooked._conn.info.backend_pid != victim
    finally:
        hooked.close()
    assert pg.write(WriteBatch("p1", "c1", "r2", rows("cus_3"))).inserted == 1


def test_stage_follows_model_changes_in_one_session(pg: PostgresWarehouse) -> None:
    pg.write(WriteBatch("p1", "c1", "r1", rows("cus_1")))
    mailed = [Column("mail", "mail", c.type) if c.name == "email" else c for c in COLUMNS]
    pg.change_model(ModelChange(COLUMNS, mailed, renamed=[("email", "mail")]))
    batch = [IdentityRow("cus_2", None, {"mail": "m"})]
    assert pg.write(WriteBatch("p1", "c1", "r1", batch)).inserted == 1
    assert [i["mail"] for i in pg.identities()] == ["x", "m"]


def test_schema_change_by_another_session_is_picked_up(pg: PostgresWarehouse) -> None:
    pg.write(WriteBatch("p1", "c1", "r1", rows("cus_1")))
    with psycopg.connect(PG_URL, autocommit=True) as other:
        other.execute(f'ALTER TABLE "{pg.schema}".identities DROP COLUMN "order"')
        other.execute(f'ALTER TABLE "{pg.schema}".profiles DROP COLUMN "order"')
    # The cached column list is stale; the adapter notices and retries on its own.
    pg.claim("p1", "r2")
    assert pg.write(WriteBatch("p1", "c1", "r2", rows("cus_2"))).inserted == 1
    assert pg.count() == 2
    assert "order" not in pg.identities()[0]


def test_concurrent_writers_on_distinct_pipelines(pg: PostgresWarehouse, pg_schema: str) -> None:
    """Two sessions, each inside its own write transaction at the same time."""
    both_in = threading.Barrier(2, timeout=10)
    # Each waits, inside its open transaction, until the other is inside its own.
    first = PostgresWarehouse(PG_URL, schema=pg_schema, after_merge=both_in.wait)
    second = PostgresWarehouse(PG_URL, schema=pg_schema, after_merge=both_in.wait)
    try:
        second.claim("p2", "r1")
        with ThreadPoolExecutor(2) as pool:
            one = pool.submit(first.write, WriteBatch("p1", "c1", "r1", rows("cus_1", "cus_2")))
            two = pool.submit(second.write, WriteBatch("p2", "c1", "r1", rows("cus_1")))
            assert (one.result(30).inserted, two.result(30).inserted) == (2, 1)
        assert pg.count("p1") == 2
        assert second.count() == 3
    finally:
        first.close()
        second.close()


def test_a_rebuild_moving_most_identities_builds_their_indexes_again(
    pg: PostgresWarehouse, pg_schema: str
) -> None:
    """Past a fifth of the identities moved, the rebuild drops the plain indexes of
    `identities` around its update and builds them again, in its transaction."""
    pg.write(WriteBatch("p1", "c1", "r1", rows(*(f"cus_{i}" for i in range(20)))))
    settings = identity_settings(DEFAULT_MODEL, ["email"])
    with pg.resolution_lock():
        done = rebuild_in_warehouse(pg, settings, Context("r1", datetime.now(UTC), ("p1",)))
    assert (done.moved, pg.count_profiles()) == (20, 1)  # all share one email
    with psycopg.connect(PG_URL) as conn:
        found = conn.execute(
            "SELECT indexname FROM pg_indexes WHERE schemaname = %s AND tablename = 'identities'",
            (pg_schema,),
        ).fetchall()
    assert {"identities_profile", "identities_source"} <= {r[0] for r in found}
    assert {i["_profile_id"] for i in pg.identities()} == {pg.profiles()[0]["_profile_id"]}


def test_a_rebuild_writing_most_rows_adds_their_unique_keys_again(
    pg: PostgresWarehouse, pg_schema: str
) -> None:
    """A rebuild moving most identities and writing most profiles drops their unique
    keys around its writes and adds them again, with their names: the upsert of a
    write (ON CONFLICT on the identity key) and a duplicate profile id still meet them."""

    def keys() -> set[tuple[str, str, str]]:
        with psycopg.connect(PG_URL) as conn:
            found = conn.execute(
                "SELECT c.relname, k.conname, pg_get_constraintdef(k.oid) FROM pg_constraint "
                "AS k JOIN pg_class AS c ON c.oid = k.conrelid JOIN pg_namespace AS n "
                "ON n.oid = c.relnamespace WHERE n.nspname = %s AND k.contype IN ('p', 'u') "
                "AND c.relname IN ('identities', 'profiles')",
                (pg_schema,),
            ).fetchall()
        return {(r[0], r[1], r[2]) for r in found}

    before = keys()
    assert {r[0] for r in before} == {"identities", "profiles"}
    pg.write(WriteBatch("p1", "c1", "r1", [*rows("a", "b"), *rows("c", email="y")]))
    settings = identity_settings(DEFAULT_MODEL, ["email"])
    with pg.resolution_lock():
        done = rebuild_in_warehouse(pg, settings, Context("r1", datetime.now(UTC), ("p1",)))
    assert (done.moved, done.written, pg.count_profiles()) == (3, 2, 2)
    assert keys() == before
    pg.write(WriteBatch("p1", "c1", "r1", rows("a", email="z")))  # an upsert
    assert pg.count() == 3
    kept = pg.profiles()[0]["_profile_id"]
    with psycopg.connect(PG_URL) as conn, pytest.raises(psycopg.errors.UniqueViolation):
        conn.execute(
            f'INSERT INTO "{pg_schema}".profiles (_profile_id, _updated_at, _identity_count) '
            "VALUES (%s, now(), 1)",
            (kept,),
        )
