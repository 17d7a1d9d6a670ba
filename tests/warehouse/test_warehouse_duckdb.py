"""DuckDB specifics: UUID profile keys and the self-adjusting memory limit."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from headwater.adapters.warehouse import WriteBatch, sql
from headwater.adapters.warehouse.contract import WarehouseError
from headwater.adapters.warehouse.duckdb import DuckDBWarehouse
from headwater.adapters.warehouse.duckdb_memory import MAX_HEADROOM_MB
from headwater.adapters.warehouse.duckdb_stage import TYPES
from headwater.adapters.warehouse.profile_store import ProfileRecord, ProfileWrite
from headwater.kernel.model import DEFAULT_MODEL
from headwater.kernel.records import IdentityRow
from headwater.services.identity import Context, identity_settings
from headwater.services.profiles import resolve_warehouse

from .test_conformance import provisional

PIPELINE = "pipe-1"


def rows(n: int, tag: str = "") -> list[IdentityRow]:
    at = datetime(2025, 1, 1, tzinfo=UTC)
    return [
        IdentityRow(
            f"cus_{i:08d}",
            at,
            {"email": f"u{i}{tag}@example.com", "metadata": {"i": i}, "created_at": at},
        )
        for i in range(n)
    ]


def batch(part: list[IdentityRow], deletes: list[str] | None = None) -> WriteBatch:
    return WriteBatch(PIPELINE, "conn-1", "run-1", part, deletes or [])


def open_warehouse(path: Path, **kwargs: int | None) -> DuckDBWarehouse:
    wh = DuckDBWarehouse(path, **kwargs)  # type: ignore[arg-type]
    wh.ensure_columns(DEFAULT_MODEL.columns)
    wh.claim(PIPELINE, "run-1")
    return wh


PROFILE = "0d7f3a52-2b1c-5e43-9a77-51a3b6c4e8d2"
AT = datetime(2025, 1, 2, tzinfo=UTC)


def resolve_by_hand(wh: DuckDBWarehouse, source_id: str) -> None:
    """Play a resolution: one identity into profile `PROFILE`, the pending cleared."""
    wh.apply_profiles(
        ProfileWrite(
            upserts=[ProfileRecord(PROFILE, AT, 1, {"email": "x@example.com"})],
            memberships=[(PIPELINE, source_id, PROFILE)],
            resolved=wh.pending_identities().batches,
        )
    )


def test_profile_ids_are_native_uuids_read_back_as_text(tmp_path: Path) -> None:
    wh = open_warehouse(tmp_path / "w.duckdb")
    wh.write(batch(rows(3)))
    resolve_by_hand(wh, "cus_00000000")
    types = wh._conn.execute(
        'SELECT DISTINCT typeof(_profile_id) FROM "headwater".identities UNION ALL '
        'SELECT DISTINCT typeof(_profile_id) FROM "headwater".profiles'
    ).fetchall()
    assert types == [("UUID",), ("UUID",)]
    assert wh.identities(PIPELINE)[0]["_profile_id"] == PROFILE
    assert [p["_profile_id"] for p in wh.profiles()] == [PROFILE]
    # Deleting an identity records the profile it was in, as text.
    result = wh.write(batch([], ["cus_00000000"]))
    assert result.deleted == 1
    assert wh.pending_identities().former_profiles == {PROFILE}
    wh.close()


def test_a_warehouse_from_before_resolution_keeps_working(tmp_path: Path) -> None:
    """Files created before profile keys were UUIDs hold them as VARCHAR, before
    resolution moved out of the write path every identity had one (NOT NULL), and
    ``profiles`` had a primary key (dropped: the table is copied, rows and all)."""
    path = tmp_path / "old.duckdb"
    old = DuckDBWarehouse(path)
    old_types = dataclasses.replace(TYPES, profile_key=TYPES.text, profile_primary_key=True)
    for statement in sql.create_tables(old_types, "headwater"):
        old._conn.execute(
            statement.replace("_profile_id VARCHAR,", "_profile_id VARCHAR NOT NULL,")
        )
    old._conn.execute(
        "INSERT INTO headwater.profiles VALUES ('an-old-profile', TIMESTAMPTZ '2026-01-01', 1)"
    )
    old.close()
    wh = open_warehouse(path)
    constraints = wh._conn.execute(
        "SELECT constraint_type, constraint_column_names FROM duckdb_constraints() "
        "WHERE table_name = 'profiles' ORDER BY ALL"
    ).fetchall()
    assert constraints == [
        ("NOT NULL", ["_identity_count"]),
        ("NOT NULL", ["_profile_id"]),
        ("NOT NULL", ["_updated_at"]),
    ]
    assert [p["_profile_id"] for p in wh.profiles()] == ["an-old-profile"]
    wh._conn.execute("DELETE FROM headwater.profiles")
    wh.write(batch(rows(3)))
    wh.write(batch(rows(3, tag="-changed")))
    assert wh.write(batch([], ["cus_00000001"])).deleted == 1
    resolve_by_hand(wh, "cus_00000002")
    assert wh._conn.execute(
        'SELECT DISTINCT typeof(_profile_id) FROM "headwater".profiles'
    ).fetchall() == [("VARCHAR",)]
    assert [i["_profile_id"] for i in wh.identities()] == [
        provisional("run-1", "cus_00000000", PIPELINE),
        PROFILE,
    ]
    assert wh.count() == 2
    assert not wh.pending_identities()
    wh.close()


def test_running_out_of_memory_grows_the_headroom_and_redoes_the_write(tmp_path: Path) -> None:
    wh = open_warehouse(tmp_path / "w.duckdb", memory_headroom_mb=1)
    result = wh.write(batch(rows(20_000)))
    assert result.inserted == 20_000
    assert wh.count() == 20_000
    assert len(wh.pending_identities().keys) == 20_000
    assert wh._memory.headroom is not None
    assert 1 < wh._memory.headroom <= MAX_HEADROOM_MB
    limit = wh._conn.execute("SELECT current_setting('memory_limit')").fetchone()
    assert (
        limit
        == duckdb.execute(
            f"SET memory_limit = '{wh._memory.headroom}MB'; SELECT current_setting('memory_limit')"
        ).fetchone()
    )
    wh.close()


def test_out_of_memory_past_the_cap_is_a_clear_failure(tmp_path: Path) -> None:
    open_warehouse(tmp_path / "w.duckdb").close()  # tables made with room to spare
    wh = DuckDBWarehouse(tmp_path / "w.duckdb", memory_headroom_mb=1, max_headroom_mb=1)
    with pytest.raises(WarehouseError, match="DuckDB ran out of memory") as caught:
        wh.write(batch(rows(20_000)))
    assert caught.value.transient  # the run may be retried (on a machine with more memory)
    assert wh._memory.headroom == 1  # never past the cap
    wh._conn.execute("SET memory_limit = '1GB'")
    assert wh.count() == 0  # nothing half-written
    wh.close()


@pytest.mark.parametrize("headroom_mb", range(8, 17))
def test_running_out_of_memory_at_commit_grows_the_headroom_and_redoes_the_write(
    tmp_path: Path, headroom_mb: int
) -> None:
    """DuckDB reports memory running out inside COMMIT as a `TransactionException`
    ("Failed to commit: failed to pin block ... (10.4 MiB/10.4 MiB used)"), not as an
    `OutOfMemoryException`: it is redone with more headroom all the same.  (It failed
    the write, and a 1,000,000-customer import written in batches of 20,000 rows.)
    Where the memory runs out depends on the build: with 10 to 11 MB of headroom here
    20,000 rows fit until their commit, so the headrooms around it are all tried."""
    open_warehouse(tmp_path / "w.duckdb").close()  # tables made with room to spare
    wh = DuckDBWarehouse(tmp_path / "w.duckdb", memory_headroom_mb=headroom_mb)
    wh.claim(PIPELINE, "run-1")
    result = wh.write(batch(rows(20_000)))
    assert result.inserted == 20_000
    assert wh.count() == 20_000
    wh.close()


def test_out_of_memory_at_commit_past_the_cap_says_so(tmp_path: Path) -> None:
    wh = open_warehouse(tmp_path / "w.duckdb", max_headroom_mb=32)
    commit = wh._end

    def failing_commit(cur: duckdb.DuckDBPyConnection, keep: bool) -> None:
        if keep:  # what DuckDB raises when COMMIT cannot get memory (rolled back)
            cur.rollback()
            raise duckdb.TransactionException(
                "TransactionContext Error: Failed to commit: failed to pin block of size "
                "256.0 KiB (31.9 MiB/32.0 MiB used)"
            )
        commit(cur, keep)

    wh._end = failing_commit  # type: ignore[method-assign]
    with pytest.raises(WarehouseError, match="DuckDB ran out of memory") as caught:
        wh.write(batch(rows(10)))
    assert caught.value.transient
    assert wh._memory.headroom == 32  # doubled up to the cap, each time redone
    wh._end = commit  # type: ignore[method-assign]
    assert wh.count() == 0  # nothing half-written
    wh.close()


def test_a_limit_duckdb_cannot_shrink_to_grows_the_headroom_instead(tmp_path: Path) -> None:
    wh = open_warehouse(tmp_path / "w.duckdb", memory_headroom_mb=None)
    # Keep the rows in memory, with nowhere to spill them.
    wh._conn.execute("SET checkpoint_threshold = '1GB'")
    wh._conn.execute("SET temp_directory = ''")
    wh.write(batch(rows(50_000)))
    wh._memory.headroom = 1
    wh._memory.tune(wh._conn)  # 1 MB over the indexes cannot hold the unsaved rows
    assert wh._memory.headroom > 1
    wh.write(batch(rows(50_000, tag="-again")))
    assert wh.count() == 50_000
    wh.close()


def test_a_file_another_process_holds_gets_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "busy.duckdb"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys; c = duckdb.connect(sys.argv[1]); print('open', flush=True); "
            "sys.stdin.read()",
            str(path),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "open"
        with pytest.raises(WarehouseError) as caught:
            DuckDBWarehouse(path)
        assert "busy.duckdb" in caught.value.message
        assert f"PID {holder.pid}" in caught.value.message
        assert "one process at a time" in caught.value.message
    finally:
        holder.communicate("")
    DuckDBWarehouse(path).close()  # free again once the other process has gone


def test_an_incremental_resolution_has_its_own_headroom(tmp_path: Path) -> None:
    """The writes' headroom (here 1 MB, capped) does not hold the joins of a resolution
    after a run: it ran out of memory and was redone with a doubled headroom (at a
    million identities, once per statement that needed more) or failed at the cap."""
    settings = identity_settings(DEFAULT_MODEL, ["email"])
    wh = open_warehouse(tmp_path / "w.duckdb")
    wh.write(batch(rows(20_000)))
    resolve_warehouse(wh, settings, Context("first", AT, (PIPELINE,)))
    moved = [
        dataclasses.replace(r, values={**r.values, "email": "u1@example.com"}) for r in rows(300)
    ]
    wh.claim(PIPELINE, "run-2")
    wh.write(WriteBatch(PIPELINE, "conn-1", "run-2", moved, []))
    wh.close()
    wh = DuckDBWarehouse(tmp_path / "w.duckdb", memory_headroom_mb=1, max_headroom_mb=1)
    outcome = resolve_warehouse(wh, settings, Context("second", AT, (PIPELINE,)))
    assert outcome.considered >= 300
    assert wh._memory.headroom == 1  # the writes' headroom is back
    wh.close()
    wh = open_warehouse(tmp_path / "w.duckdb")  # reading every identity needs more than 1 MB
    assert len({i["_profile_id"] for i in wh.identities()}) == 20_000 - 299
    wh.close()


def test_resolutions_of_one_file_are_exclusive_across_its_warehouse_objects(
    tmp_path: Path,
) -> None:
    """Each run (and the API, the console) opens its own warehouse object: the lock of
    one object let another's resolution in, and two resolutions applied plans read
    from the same state (a profile left with no member)."""
    first = open_warehouse(tmp_path / "w.duckdb")
    second = DuckDBWarehouse(tmp_path / "." / "w.duckdb")
    order: list[str] = []
    entered = threading.Event()

    def other() -> None:
        entered.set()
        with second.resolution_lock():
            order.append("second")

    with first.resolution_lock():
        thread = threading.Thread(target=other)
        thread.start()
        assert entered.wait(5)
        time.sleep(0.3)
        order.append("first")
    thread.join(5)
    assert order == ["first", "second"]
    first.close()
    second.close()
