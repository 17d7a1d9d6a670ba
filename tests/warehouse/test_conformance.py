"""The Warehouse contract (contract.py), run against every engine."""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest

from headwater.adapters.warehouse import OwnershipLost, Warehouse, WriteBatch, WriteResult
from headwater.adapters.warehouse.contract import (
    META_COLUMNS,
    PROFILE_META_COLUMNS,
    Capabilities,
    ModelChange,
)
from headwater.adapters.warehouse.profile_store import ProfileRecord, ProfileWrite
from headwater.kernel.errors import InvalidInput, NotFound
from headwater.kernel.model import Column, ConversionError, CustomerModel, Property, PropertyType
from headwater.kernel.records import IdentityRow
from headwater.kernel.state import PipelineState
from headwater.services.identity.ids import new_profile_id
from headwater.services.identity.records import Identity, IdentityKey

from .conftest import COLUMNS, Engine

WHEN = datetime(2024, 5, 1, 12, 30, tzinfo=UTC)
FULL = {
    "email": "ada@example.com",
    "age": 36,
    "score": 0.25,
    "balance": Decimal("1234.5"),
    "vip": True,
    "created_at": datetime(2023, 1, 2, 3, 4, 5, tzinfo=UTC),
    "birthday": date(1815, 12, 10),
    "metadata": {"plan": "gold", "seats": 3, "nested": {"ok": True}, "list": [1, "a"]},
    "tags": ["a", "b"],
    "address_city": "London",
    "order": "first",
    "user": 7,
}


def provisional(run: str, source: str, pipeline: str = "p1") -> str:
    """The profile id a write gives a new identity: its own new profile's id in `run`."""
    return new_profile_id(run, Identity(IdentityKey(pipeline, source), "c1", None, {}))


def written_id(warehouse: Warehouse, run: str, source: str, pipeline: str = "p1") -> str | None:
    """A new identity's ``_profile_id`` as written: provisional, or none (PostgreSQL)."""
    return provisional(run, source, pipeline) if warehouse.provisional_ids else None


def row(source_id: str, **values: Any) -> IdentityRow:
    return IdentityRow(source_id, WHEN, values)


def batch(
    *rows: IdentityRow,
    run: str = "run1",
    pipeline: str = "p1",
    deletes=(),
    state: PipelineState | None = None,
    model: int | None = None,
) -> WriteBatch:
    return WriteBatch(pipeline, "conn1", run, list(rows), list(deletes), state, model)


def own(warehouse: Warehouse, pipeline: str, run: str) -> None:
    """Claim the pipeline for `run` unless it owns it: a run claims once (a claim by the
    last owner is a resumed run's, which sets aside what its earlier attempt wrote)."""
    owned = warehouse.pipeline_state(pipeline)
    if owned is None or owned.owner_run_id != run:
        warehouse.claim(pipeline, run)


def write(warehouse: Warehouse, b: WriteBatch) -> WriteResult:
    """Write as a run that owns the pipeline: each new run claims it first."""
    own(warehouse, b.pipeline_id, b.run_id)
    return warehouse.write(b)


def purge(warehouse: Warehouse, pipeline: str, run: str, keep: Collection[str] = ()) -> int:
    own(warehouse, pipeline, run)
    return warehouse.purge_unseen(pipeline, run, keep=keep)


def model(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if not k.startswith("_")}


def pending(warehouse: Warehouse) -> set[str]:
    """The pending identities as 'pipeline:source'."""
    return {f"{p}:{s}" for p, s in warehouse.pending_identities().keys}


def columns_of(engine: Engine, warehouse: Warehouse, table: str) -> list[str]:
    rows = engine.raw(
        warehouse,
        "SELECT column_name FROM information_schema.columns WHERE table_schema = "
        f"'{engine.schema}' AND table_name = '{table}' ORDER BY ordinal_position",
    )
    return [r[0] for r in rows]


PROFILE = "0d7f3a52-2b1c-5e43-9a77-51a3b6c4e8d2"


def resolve_by_hand(warehouse: Warehouse, *source_ids: str) -> None:
    """Play a resolution: these p1 identities into one profile, all pending cleared."""
    warehouse.apply_profiles(
        ProfileWrite(
            upserts=[ProfileRecord(PROFILE, WHEN, len(source_ids), {"email": "x"})],
            memberships=[("p1", s, PROFILE) for s in source_ids],
            resolved=warehouse.pending_identities().batches,
        )
    )


def test_capabilities_are_data(warehouse: Warehouse, engine: Engine) -> None:
    assert warehouse.capabilities == Capabilities(engine=engine.name)


def test_tables_have_meta_then_model_columns(warehouse: Warehouse, engine: Engine) -> None:
    warehouse.ensure_columns(COLUMNS)  # a second call changes nothing
    write(warehouse, batch(row("cus_1", email="x")))
    [ident] = warehouse.identities()
    assert list(ident) == [*META_COLUMNS, *(c.name for c in COLUMNS)]
    assert columns_of(engine, warehouse, "profiles") == [
        *PROFILE_META_COLUMNS,
        *(c.name for c in COLUMNS),
    ]
    key = engine.raw(
        warehouse,
        "SELECT count(*) FROM information_schema.table_constraints WHERE table_schema = "
        f"'{engine.schema}' AND table_name = 'identities' AND constraint_type = 'UNIQUE'",
    )
    assert key[0][0] == 1


def test_write_round_trips_every_type(warehouse: Warehouse) -> None:
    result = write(warehouse, batch(row("cus_1", **FULL), row("cus_2", email="b@example.com")))
    assert (result.inserted, result.updated, result.deleted) == (2, 0, 0)
    first, second = warehouse.identities()
    assert model(first) == FULL
    assert first["_pipeline_id"] == "p1"
    assert first["_connection_id"] == "conn1"
    assert first["_run_id"] == "run1"
    assert first["_source_updated_at"] == WHEN
    assert abs((first["_imported_at"] - datetime.now(UTC)).total_seconds()) < 60
    # Columns a row lacks are NULL.
    assert model(second) == {c.name: None for c in COLUMNS} | {"email": "b@example.com"}


def test_writes_record_pending_identities_and_leave_profiles_to_resolution(
    warehouse: Warehouse,
) -> None:
    """Writes never touch profiles: they record what they touched, in their transaction.
    A new identity holds its provisional profile id (no profile's), an update keeps its."""
    write(warehouse, batch(row("cus_1", **FULL), row("cus_2", email="b")))
    assert [i["_profile_id"] for i in warehouse.identities()] == [
        written_id(warehouse, "run1", "cus_1"),
        written_id(warehouse, "run1", "cus_2"),
    ]
    assert warehouse.profiles() == []
    assert pending(warehouse) == {"p1:cus_1", "p1:cus_2"}
    assert warehouse.pending_identities().former_profiles == frozenset()
    resolve_by_hand(warehouse, "cus_1", "cus_2")
    assert pending(warehouse) == set()
    assert [p["_profile_id"] for p in warehouse.profiles()] == [PROFILE]
    # An update keeps the identity's profile id; a delete records the one it was in.
    write(warehouse, batch(row("cus_1", email="new@example.com"), run="run2"))
    assert [i["_profile_id"] for i in warehouse.identities()] == [PROFILE, PROFILE]
    assert pending(warehouse) == {"p1:cus_1"}
    write(warehouse, batch(deletes=["cus_2"], run="run2"))
    found = warehouse.pending_identities()
    assert {f"{p}:{s}" for p, s in found.keys} == {"p1:cus_1", "p1:cus_2"}
    assert found.former_profiles == {PROFILE}
    assert [p["_profile_id"] for p in warehouse.profiles()] == [PROFILE]  # resolution's job


def test_a_resolution_clears_only_the_batches_it_read(warehouse: Warehouse) -> None:
    write(warehouse, batch(row("cus_1")))
    read = warehouse.pending_identities()
    write(warehouse, batch(row("cus_2")))  # committed after the resolution read
    warehouse.apply_profiles(ProfileWrite(resolved=read.batches))
    warehouse.apply_profiles(ProfileWrite(resolved=read.batches))  # twice: harmless
    assert pending(warehouse) == {"p1:cus_2"}


def test_same_batch_twice_is_idempotent(warehouse: Warehouse) -> None:
    b = batch(row("cus_1", **FULL), row("cus_2", email="b"), row("cus_3", age=3))
    assert write(warehouse, b).inserted == 3
    before = warehouse.identities(), warehouse.profiles()
    again = write(warehouse, b)
    assert (again.inserted, again.updated, again.written) == (0, 3, 3)
    after = warehouse.identities(), warehouse.profiles()

    def stable(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [
            {k: v for k, v in r.items() if k not in ("_imported_at", "_updated_at")} for r in rows
        ]

    assert stable(after[0]) == stable(before[0])
    assert stable(after[1]) == stable(before[1])
    assert warehouse.count() == 3


def test_duplicate_source_ids_in_a_batch_last_wins(warehouse: Warehouse) -> None:
    result = write(
        warehouse,
        batch(row("cus_1", email="old"), row("cus_2", email="x"), row("cus_1", email="new")),
    )
    assert (result.inserted, result.updated) == (2, 0)
    assert [(i["_source_id"], i["email"]) for i in warehouse.identities()] == [
        ("cus_1", "new"),
        ("cus_2", "x"),
    ]
    assert pending(warehouse) == {"p1:cus_1", "p1:cus_2"}


def test_update_counts_and_overwrites(warehouse: Warehouse) -> None:
    write(warehouse, batch(row("cus_1", email="a", age=1)))
    result = write(warehouse, batch(row("cus_1", email="b"), row("cus_2"), run="run2"))
    assert (result.inserted, result.updated) == (1, 1)
    first = warehouse.identities()[0]
    assert (first["email"], first["age"], first["_run_id"]) == ("b", None, "run2")
    assert first["_profile_id"] == written_id(warehouse, "run1", "cus_1")  # kept


def test_a_change_read_again_never_moves_the_source_time_back(warehouse: Warehouse) -> None:
    """A full read stamps what it reads with its read time; the next incremental run reads
    the changes of the seconds before that read again, stamped with their (earlier) event
    times. The stamp keeps the later time (the values are the newest either way): it
    moved back, and among identities of one profile the one read again then lost its
    place as the latest, so the profile's values depended on which runs had read what,
    and differed from a fresh import of the same customers (CI, 4 December 2026)."""
    read = datetime(2024, 5, 1, 12, 30, 5, tzinfo=UTC)
    event = datetime(2024, 5, 1, 12, 30, 3, tzinfo=UTC)
    later = datetime(2024, 5, 1, 12, 31, tzinfo=UTC)
    write(warehouse, batch(IdentityRow("cus_1", read, {"email": "a"})))
    write(warehouse, batch(IdentityRow("cus_1", event, {"email": "b"}), run="run2"))
    [again] = warehouse.identities()
    assert (again["email"], again["_source_updated_at"]) == ("b", read)
    write(warehouse, batch(IdentityRow("cus_1", later, {"email": "c"}), run="run3"))
    [newer] = warehouse.identities()
    assert (newer["email"], newer["_source_updated_at"]) == ("c", later)
    write(warehouse, batch(IdentityRow("cus_1", None, {"email": "d"}), run="run4"))
    [unstamped] = warehouse.identities()
    assert (unstamped["email"], unstamped["_source_updated_at"]) == ("d", later)


def test_deletes_remove_identity_and_record_it_pending(warehouse: Warehouse) -> None:
    write(warehouse, batch(row("cus_1"), row("cus_2"), row("cus_3")))
    resolve_by_hand(warehouse, "cus_1", "cus_2", "cus_3")
    write(warehouse, batch(row("cus_1"), pipeline="p2"))
    result = write(warehouse, batch(deletes=["cus_1", "cus_2", "cus_2", "cus_missing"]))
    assert result.deleted == 2
    assert [i["_source_id"] for i in warehouse.identities("p1")] == ["cus_3"]
    assert warehouse.count("p2") == 1  # same source id, other pipeline: untouched
    found = warehouse.pending_identities()
    assert {f"{p}:{s}" for p, s in found.keys} == {"p1:cus_1", "p1:cus_2", "p2:cus_1"}
    assert found.former_profiles == {PROFILE}


def test_rows_and_deletes_in_one_batch(warehouse: Warehouse) -> None:
    write(warehouse, batch(row("cus_1"), row("cus_2")))
    result = write(warehouse, batch(row("cus_3", email="c"), deletes=["cus_1"]))
    assert (result.inserted, result.deleted) == (1, 1)
    assert [i["_source_id"] for i in warehouse.identities()] == ["cus_2", "cus_3"]
    assert pending(warehouse) == {"p1:cus_1", "p1:cus_2", "p1:cus_3"}


def test_purge_unseen(warehouse: Warehouse) -> None:
    write(warehouse, batch(row("cus_1"), row("cus_2"), row("cus_3"), row("cus_4"), run="old"))
    write(warehouse, batch(row("cus_9"), run="old", pipeline="p2"))
    write(warehouse, batch(row("cus_1"), run="new"))
    assert purge(warehouse, "p1", "new", keep={"cus_2"}) == 2
    assert [i["_source_id"] for i in warehouse.identities("p1")] == ["cus_1", "cus_2"]
    assert warehouse.count("p2") == 1
    resolve_by_hand(warehouse)
    assert purge(warehouse, "p1", "new") == 1  # cus_2 is no longer kept
    assert pending(warehouse) == {"p1:cus_2"}
    assert purge(warehouse, "p1", "new") == 0


def test_a_resumed_run_purges_what_its_earlier_attempt_wrote_and_it_did_not(
    warehouse: Warehouse,
) -> None:
    """A run claiming the pipeline it owned last resumes (the service stopped it): the
    rows its earlier attempt wrote are that attempt's, not this one's."""
    write(warehouse, batch(row("cus_1"), row("cus_2"), run="old"))
    write(warehouse, batch(row("cus_1"), row("cus_2"), row("cus_3"), run="r"))
    warehouse.claim("p1", "r")
    assert {i["_run_id"] for i in warehouse.identities("p1")} == {"r~earlier"}
    warehouse.write(batch(row("cus_1"), run="r"))
    assert warehouse.purge_unseen("p1", "r") == 2
    assert [(i["_source_id"], i["_run_id"]) for i in warehouse.identities("p1")] == [("cus_1", "r")]


def test_delete_pipeline(warehouse: Warehouse) -> None:
    write(warehouse, batch(row("cus_1"), row("cus_2")))
    write(warehouse, batch(row("cus_1"), pipeline="p2"))
    assert warehouse.delete_pipeline("p1") == 2
    assert warehouse.count() == 1
    assert warehouse.count("p1") == 0
    assert pending(warehouse) == {"p1:cus_1", "p1:cus_2", "p2:cus_1"}
    assert warehouse.delete_pipeline("p1") == 0


def test_model_changes_alter_both_tables(warehouse: Warehouse, engine: Engine, reopen) -> None:
    write(warehouse, batch(row("cus_1", email="a", age=5)))
    planned = [*COLUMNS, Column("plan", "plan", PropertyType.STRING)]
    warehouse.ensure_columns(planned)
    write(warehouse, batch(row("cus_2", plan="gold")))
    renamed = [
        Column("primary_email", "primary_email", c.type) if c.name == "email" else c
        for c in planned
    ]
    rename = ModelChange(planned, renamed, renamed=[("email", "primary_email")])
    warehouse.change_model(rename)
    warehouse.change_model(rename)  # a retried rename is a no-op
    dropped = [c for c in renamed if c.name != "age"]
    warehouse.change_model(ModelChange(renamed, dropped, dropped=["age"]))
    warehouse.change_model(ModelChange(renamed, dropped, dropped=["age"]))
    write(warehouse, batch(row("cus_3", primary_email="c")))
    for table in ("identities", "profiles"):
        names = columns_of(engine, warehouse, table)
        assert "email" not in names
        assert "age" not in names
        assert "plan" in names
    emails = {i["_source_id"]: i["primary_email"] for i in warehouse.identities()}
    assert emails == {"cus_1": "a", "cus_2": None, "cus_3": "c"}
    with pytest.raises(NotFound, match="nope"):
        warehouse.change_model(ModelChange(dropped, dropped, renamed=[("nope", "other")]))
    with pytest.raises(InvalidInput, match="reserved"):
        warehouse.change_model(ModelChange(dropped, dropped, dropped=["_source_id"]))
    again = reopen()
    try:
        assert again.count() == 3
        assert "primary_email" in columns_of(engine, again, "profiles")
    finally:
        again.close()


def test_unknown_column_is_rejected_and_nothing_written(warehouse: Warehouse) -> None:
    with pytest.raises(InvalidInput, match="nickname"):
        write(warehouse, batch(row("cus_1", email="a"), row("cus_2", nickname="x")))
    assert warehouse.count() == 0


def test_identities_and_count_filter_by_pipeline(warehouse: Warehouse) -> None:
    write(warehouse, batch(row("cus_2"), row("cus_1")))
    write(warehouse, batch(row("cus_1"), pipeline="p0"))
    assert warehouse.count() == 3
    assert warehouse.count("p1") == 2
    assert [(i["_pipeline_id"], i["_source_id"]) for i in warehouse.identities()] == [
        ("p0", "cus_1"),
        ("p1", "cus_1"),
        ("p1", "cus_2"),
    ]
    assert len(warehouse.identities("p0")) == 1


def test_committed_writes_survive_reopening(warehouse: Warehouse, reopen) -> None:
    write(warehouse, batch(row("cus_1", **FULL)))
    again = reopen()
    try:
        assert model(again.identities()[0]) == FULL
        write(again, batch(row("cus_1", email="z"), run="run2"))
        assert again.identities()[0]["_profile_id"] == written_id(again, "run1", "cus_1")
        assert pending(again) == {"p1:cus_1"}
    finally:
        again.close()


def test_a_failure_after_the_merge_leaves_nothing(warehouse: Warehouse, engine: Engine) -> None:
    write(warehouse, batch(row("cus_1", email="kept"), row("cus_2", email="kept")))
    resolve_by_hand(warehouse, "cus_1", "cus_2")
    before = warehouse.identities(), warehouse.profiles(), pending(warehouse)

    seen: list[dict[str, Any]] = []

    def boom() -> None:
        seen.extend(hooked.identities())  # inside its transaction: the merge is visible
        raise RuntimeError("injected failure after the merge")

    hooked = engine.open(after_merge=boom)
    try:
        with pytest.raises(RuntimeError, match="injected"):
            write(
                hooked,
                batch(row("cus_1", email="lost"), row("cus_3"), deletes=["cus_2"], run="run2"),
            )
    finally:
        hooked.close()
    assert [(i["_source_id"], i["email"]) for i in seen] == [
        ("cus_1", "lost"),
        ("cus_2", "kept"),
        ("cus_3", None),
    ]
    assert (warehouse.identities(), warehouse.profiles(), pending(warehouse)) == before
    assert write(warehouse, batch(row("cus_3"), run="run2")).inserted == 1


def test_a_failing_statement_mid_batch_rolls_back(warehouse: Warehouse, engine: Engine) -> None:
    """The identity merge succeeds, recording it pending fails: nothing may remain."""
    from headwater.adapters.warehouse import WarehouseError

    write(warehouse, batch(row("cus_1", email="kept")))
    before = warehouse.identities(), pending(warehouse)
    engine.raw(warehouse, "ALTER TABLE {s}.pending_identities RENAME TO pending_away")
    with pytest.raises(WarehouseError, match="pending_identities"):
        write(warehouse, batch(row("cus_1", email="lost"), row("cus_2"), run="run2"))
    engine.raw(warehouse, "ALTER TABLE {s}.pending_away RENAME TO pending_identities")
    assert (warehouse.identities(), pending(warehouse)) == before
    assert write(warehouse, batch(row("cus_2"), run="run2")).inserted == 1


def test_refused_values_are_rejected_per_row(warehouse: Warehouse, engine: Engine) -> None:
    """A value the engine cannot store fails its row, never the batch."""
    write(warehouse, batch(row("cus_1", email="gone"), row("cus_3", email="old")))
    bad = {"cus_3": "'age'"}
    rows = [row("cus_2", email="x"), row("cus_3", email="new", age=2**70), row("cus_4", age=-5)]
    if engine.name == "postgresql":  # PostgreSQL cannot store NUL in text, arrays or jsonb
        rows += [
            row("cus_5", email="a\x00b"),
            row("cus_6", tags=["ok", "n\x00l"]),
            row("cus_7", metadata={"k": "v\x00"}),
            row("cus_8", metadata={"k": "\\u0000 is only text"}, email="sk_test_" + "a" * 24),
        ]
        bad |= {"cus_5": "'email'", "cus_6": "'tags'", "cus_7": "'metadata'"}
    result = write(warehouse, batch(*rows, deletes=["cus_1"], run="run2"))
    assert sorted(sid for sid, _ in result.rejected) == sorted(bad)
    for sid, text in result.rejected:
        assert bad[sid] in text
        assert len(text) <= 300
    written = [r.source_id for r in rows if r.source_id not in bad]
    assert (result.inserted, result.updated, result.deleted) == (len(written), 0, 1)
    stored = {i["_source_id"]: i for i in warehouse.identities()}
    assert sorted(stored) == sorted([*written, "cus_3"])
    assert stored["cus_3"]["email"] == "old"  # the refused row left its identity alone
    assert stored["cus_4"]["age"] == -5
    assert pending(warehouse) == {f"p1:{s}" for s in [*written, "cus_1", "cus_3"]}


def test_engine_side_refusals_are_found_by_bisection(warehouse: Warehouse, engine: Engine) -> None:
    """Values only the engine refuses (a decimal overflowing the column) are isolated."""
    rows = [row(f"cus_{i:02d}", email=f"{i}@x", balance=Decimal(i)) for i in range(40)]
    huge = Decimal("1e200000")  # beyond DECIMAL(38,9) and beyond PostgreSQL's numeric
    rows[7] = row("cus_07", balance=huge)
    rows[31] = row("cus_31", balance=-huge)
    result = write(warehouse, batch(*rows))
    assert sorted(sid for sid, _ in result.rejected) == ["cus_07", "cus_31"]
    reason = {
        "duckdb": "DuckDB refused a value: Conversion Error",
        "postgresql": "PostgreSQL cannot stage row",
    }[engine.name]
    assert all(text.startswith(reason) for _, text in result.rejected), result.rejected
    assert result.inserted == 38
    assert warehouse.count() == 38
    assert len(pending(warehouse)) == 38
    stored = {i["_source_id"]: i["balance"] for i in warehouse.identities()}
    assert stored["cus_30"] == Decimal(30)


def test_a_batch_of_only_refused_rows_still_applies_its_deletes(warehouse: Warehouse) -> None:
    write(warehouse, batch(row("cus_1")))
    result = write(warehouse, batch(row("cus_2", age=2**64), deletes=["cus_1"]))
    assert [sid for sid, _ in result.rejected] == ["cus_2"]
    assert (result.inserted, result.deleted) == (0, 1)
    assert warehouse.count() == 0
    assert warehouse.count_profiles() == 0


def test_new_and_existing_rows_mixed_after_an_all_new_batch(warehouse: Warehouse) -> None:
    assert write(warehouse, batch(row("cus_1"), row("cus_2"))).inserted == 2
    result = write(warehouse, batch(row("cus_3"), row("cus_2", email="b"), run="run2"))
    assert (result.inserted, result.updated) == (1, 1)
    result = write(warehouse, batch(row("cus_4"), run="run2"))
    assert (result.inserted, result.updated) == (1, 0)
    assert warehouse.count() == len(pending(warehouse)) == 4
    assert [i["email"] for i in warehouse.identities()] == [None, "b", None, None]


def test_empty_batch_writes_nothing(warehouse: Warehouse) -> None:
    result = write(warehouse, batch())
    assert (result.inserted, result.updated, result.deleted) == (0, 0, 0)
    assert warehouse.count() == 0


def test_large_keep_set_and_many_rows(warehouse: Warehouse) -> None:
    rows = [row(f"cus_{i:05d}", email=f"{i}@x", age=i) for i in range(3000)]
    assert write(warehouse, batch(*rows)).inserted == 3000
    keep = {f"cus_{i:05d}" for i in range(0, 3000, 2)}
    assert purge(warehouse, "p1", "other-run", keep=keep) == 1500
    assert warehouse.count() == 1500
    assert len(pending(warehouse)) == 3000


def test_reopen_fixture_reads_committed_state(
    warehouse: Warehouse, reopen: Callable[[], Warehouse]
) -> None:
    write(warehouse, batch(row("cus_1")))
    other = reopen()
    try:
        assert other.count() == 1
    finally:
        other.close()


# -- ownership and saved state (DESIGN.md §6 rules 5 and 6) ----------------------------

S1 = PipelineState(position={"event_id": "evt_1", "created": 10}, max_created=5)
S2 = PipelineState(position={"event_id": "evt_2", "created": 20}, max_created=9)


def test_the_state_commits_with_its_rows_and_a_claim_reads_it(warehouse: Warehouse) -> None:
    assert warehouse.claim("p1", "run1") is None  # nothing saved in this warehouse yet
    assert warehouse.pipeline_state("p2") is None
    warehouse.write(batch(row("cus_1"), row("cus_2"), run="run1", state=S1))
    owned = warehouse.pipeline_state("p1")
    assert owned is not None
    assert (owned.owner_run_id, owned.state) == ("run1", S1)
    assert warehouse.write(batch(row("cus_3"), run="run1")).inserted == 1  # no state: kept
    assert warehouse.claim("p1", "run2") == S1  # the next run starts from it
    assert warehouse.purge_unseen("p1", "run2", keep={"cus_1"}, state=S2) == 2
    owned = warehouse.pipeline_state("p1")
    assert owned is not None
    assert (owned.owner_run_id, owned.state) == ("run2", S2)
    assert warehouse.pipeline_state("p2") is None  # other pipelines have their own rows


def test_a_run_that_was_taken_over_cannot_write_purge_or_save(warehouse: Warehouse) -> None:
    warehouse.claim("p1", "run1")
    warehouse.write(batch(row("cus_1", email="a"), row("cus_2", email="b"), state=S1))
    warehouse.claim("p1", "run2")  # a newer run takes the pipeline over
    before = warehouse.identities(), pending(warehouse)
    lost = "another run (run2) took over pipeline p1; this run stopped without writing"
    attempts: list[Callable[[], object]] = [
        lambda: warehouse.write(
            batch(row("cus_1", email="x"), row("cus_9"), deletes=["cus_2"], state=S2)
        ),
        lambda: warehouse.write(batch(state=S2)),  # a position save alone
        lambda: warehouse.write(batch(row("cus_5"))),
        lambda: warehouse.purge_unseen("p1", "run1", state=S2),
        lambda: warehouse.purge_unseen("p1", "run1"),
    ]
    for attempt in attempts:
        with pytest.raises(OwnershipLost) as refused:
            attempt()
        assert refused.value.message == lost
    assert (warehouse.identities(), pending(warehouse)) == before
    owned = warehouse.pipeline_state("p1")
    assert owned is not None
    assert (owned.owner_run_id, owned.state) == ("run2", S1)
    # The owner writes and purges as usual.
    assert warehouse.write(batch(row("cus_1", email="c"), run="run2")).updated == 1
    assert warehouse.purge_unseen("p1", "run2", state=S2) == 1
    assert [i["_source_id"] for i in warehouse.identities()] == ["cus_1"]


def test_a_pipeline_nobody_claimed_refuses_writes(warehouse: Warehouse) -> None:
    with pytest.raises(OwnershipLost, match="pipeline p1 has no owner in this warehouse"):
        warehouse.write(batch(row("cus_1")))
    with pytest.raises(OwnershipLost, match="run run1 stopped without writing"):
        warehouse.purge_unseen("p1", "run1")
    assert warehouse.count() == warehouse.count_profiles() == 0
    assert warehouse.pipeline_state("p1") is None


def test_a_failed_write_leaves_the_saved_state_as_it_was(
    warehouse: Warehouse, engine: Engine
) -> None:
    write(warehouse, batch(row("cus_1"), state=S1))

    def boom() -> None:
        raise RuntimeError("injected failure after the merge")

    hooked = engine.open(after_merge=boom)
    try:
        with pytest.raises(RuntimeError, match="injected"):
            hooked.write(batch(row("cus_2"), row("cus_1", email="new"), state=S2))
    finally:
        hooked.close()
    owned = warehouse.pipeline_state("p1")
    assert owned is not None
    assert owned.state == S1
    assert warehouse.count() == 1


def test_deleting_a_pipeline_forgets_its_owner_and_state(warehouse: Warehouse) -> None:
    write(warehouse, batch(row("cus_1"), state=S1))
    write(warehouse, batch(row("cus_1"), pipeline="p2", state=S2))
    assert warehouse.delete_pipeline("p1") == 1
    assert warehouse.pipeline_state("p1") is None
    assert warehouse.claim("p1", "run9") is None  # recreated: starts from nothing
    owned = warehouse.pipeline_state("p2")
    assert owned is not None
    assert owned.state == S2


def test_the_state_survives_reopening(warehouse: Warehouse, reopen) -> None:
    write(warehouse, batch(row("cus_1"), state=S1))
    again = reopen()
    try:
        assert again.claim("p1", "run2") == S1
    finally:
        again.close()


def test_a_takeover_waits_for_the_old_owners_write_in_flight(
    warehouse: Warehouse, engine: Engine
) -> None:
    """A claim from another session while the owner is inside a write transaction gets
    through only after that write committed (PostgreSQL: the owner row is locked; DuckDB:
    the claim conflicts and waits), and the old owner's next write sees the new owner."""
    newer = engine.open()
    claimed = threading.Event()
    waited: list[bool] = []

    def claim_meanwhile() -> None:
        if waited:  # only during the first write
            return
        pool.submit(lambda: (newer.claim("p1", "run2"), claimed.set()))
        waited.append(not claimed.wait(1.0))  # still inside the old owner's transaction

    older = engine.open(after_merge=claim_meanwhile)
    try:
        older.claim("p1", "run1")
        with ThreadPoolExecutor(1) as pool:
            assert older.write(batch(row("cus_1"))).inserted == 1
            assert claimed.wait(10)
        assert waited == [True]
        with pytest.raises(OwnershipLost, match=r"another run \(run2\) took over pipeline p1"):
            older.write(batch(row("cus_2")))
        assert [i["_source_id"] for i in newer.identities()] == ["cus_1"]
        owned = newer.pipeline_state("p1")
        assert owned is not None
        assert (owned.owner_run_id, owned.state) == ("run2", None)
    finally:
        older.close()
        newer.close()


def test_a_property_named_like_an_internal_alias_is_a_property_like_any(
    engine: Engine,
) -> None:
    """The write's staging select named its profile hash ``hw_pid`` next to the row's
    own columns: a property of that name was read in its place (hex values became
    profile ids the customer controlled; other values failed every write of the run)."""
    warehouse = engine.open()
    try:
        warehouse.ensure_columns([Column("hw_pid", "hw_pid", PropertyType.STRING)])
        done = write(warehouse, batch(row("cus_1", hw_pid="abc"), row("cus_2", hw_pid=None)))
        assert done.rejected == []
        found = {r["_source_id"]: r for r in warehouse.identities("p1")}
        assert found["cus_1"]["hw_pid"] == "abc"
        expected = written_id(warehouse, "run1", "cus_1")
        assert (str(found["cus_1"]["_profile_id"]) if expected else None) == expected
    finally:
        warehouse.close()


def test_decimals_converted_by_the_model_read_back_alike_on_every_engine(
    warehouse: Warehouse,
) -> None:
    """Decimals are DECIMAL(38, 9): DuckDB rounded the digits past the ninth (half away
    from zero) while PostgreSQL's numeric kept them all, so one import read back
    0.123456789 on one engine and 0.1234567891234 on the other; the model now rounds."""
    balance = CustomerModel((Property("balance", PropertyType.DECIMAL),))
    given = {  # what is given, what is read back (as text: the scale is read too)
        "cus_1": ("0.1234567891234", "0.123456789"),
        "cus_2": ("0.0000000025", "3E-9"),
        "cus_3": ("-2.5000000015", "-2.500000002"),
        "cus_4": (1e-10, "0E-9"),
        "cus_5": (
            "1234567890" * 2 + "123456789.1234567894",
            "1234567890" * 2 + "123456789.123456789",
        ),
    }
    rows = [row(sid, **balance.to_columns({"balance": v})) for sid, (v, _) in given.items()]
    result = write(warehouse, batch(*rows))
    assert result.rejected == []
    stored = {i["_source_id"]: str(i["balance"]) for i in warehouse.identities()}
    assert stored == {sid: want for sid, (_, want) in given.items()}
    # Rounding up past 29 digits before the point is refused by the model, not the engine.
    with pytest.raises(ConversionError, match="'balance'"):
        balance.to_columns({"balance": "99999999999999999999999999999.9999999996"})


def test_a_column_of_another_type_than_its_property_fails_its_values_by_name(
    warehouse: Warehouse,
) -> None:
    """A warehouse can hold a property's column with another type than the model's
    (made under the property's earlier type: a workspace switched back to a warehouse
    after dropping and adding the property, or an older column of that name).  The
    tables were kept as they were, and each engine then did its own thing: DuckDB
    truncated a float 5.5 into its integer column as 5, PostgreSQL took true as 1, and
    the rest failed with engine messages naming no property ('bad argument type for
    built-in operation').  Each such value is now its record's error naming the
    column and both types; the rest of the batch lands."""
    warehouse.ensure_columns(
        [
            Column("seats", "seats", PropertyType.INTEGER),
            Column("plan", "plan", PropertyType.STRING),
        ]
    )
    model = [
        *COLUMNS,
        Column("seats", "seats", PropertyType.FLOAT),
        Column("plan", "plan", PropertyType.BOOLEAN),
    ]
    warehouse.ensure_columns(model)  # the columns stay as they are
    result = write(
        warehouse,
        batch(
            row("cus_1", email="a", seats=5.5),
            row("cus_2", email="b", plan=True),
            row("cus_3", email="c", seats=None, plan=None),
        ),
    )
    assert sorted(sid for sid, _ in result.rejected) == ["cus_1", "cus_2"]
    reasons = dict(result.rejected)
    assert reasons["cus_1"] == (
        "column 'seats' is integer in the warehouse but float in the Customer Model "
        "(drop or rename that column, or give the property its type back)"
    )
    assert "column 'plan' is string in the warehouse but boolean" in reasons["cus_2"]
    assert [(i["_source_id"], i["seats"], i["plan"]) for i in warehouse.identities()] == [
        ("cus_3", None, None)
    ]
