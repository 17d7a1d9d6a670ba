"""The identity-resolution capability of the Warehouse contract, on every engine.

The warehouse finds candidates set-based and writes what resolution decides; the
results must equal those of the in-memory `IdentityStore` given the same identities.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from headwater.adapters.warehouse import Warehouse, WriteBatch
from headwater.adapters.warehouse.profile_store import (
    ChangeRecord,
    ProfileRecord,
    ProfileWrite,
)
from headwater.kernel.model import CustomerModel, Property, PropertyType
from headwater.services.identity import (
    ChangeKind,
    Context,
    Identity,
    IdentityKey,
    MemoryIdentityStore,
    Probe,
    identity_settings,
    rebuild,
    resolve_changes,
)
from headwater.services.identity.warehouse import WarehouseIdentityStore, rebuild_in_warehouse

from .conftest import Engine
from .test_conformance import batch, row, write, written_id

T = PropertyType
MODEL = CustomerModel(
    (
        Property("email", T.STRING),
        Property("user", T.INTEGER),
        Property("metadata", T.JSON),
        Property("balance", T.DECIMAL),
    )
)
SETTINGS = identity_settings(MODEL, ["email", "user"])
AT = datetime(2024, 6, 1, tzinfo=UTC)


def store(warehouse: Warehouse) -> WarehouseIdentityStore:
    return WarehouseIdentityStore(warehouse, SETTINGS)


def partition(warehouse: Warehouse) -> set[frozenset[tuple[str, str]]]:
    groups: dict[str, set[tuple[str, str]]] = {}
    for i in warehouse.identities():
        groups.setdefault(i["_profile_id"], set()).add((i["_pipeline_id"], i["_source_id"]))
    return {frozenset(g) for g in groups.values()}


def memory_twin(warehouse: Warehouse) -> MemoryIdentityStore:
    """The same identities and profiles, held in memory."""
    twin = MemoryIdentityStore(SETTINGS)
    for i in store(warehouse).all_identities():
        twin.load(i)
    for p in store(warehouse).all_profiles():
        twin.profile_rows[p.id] = p
    return twin


def seed(warehouse: Warehouse) -> None:
    write(
        warehouse,
        batch(
            row("cus_1", email=" Ann@Example.com ", user=7, metadata={"a": [1]}),
            row("cus_2", email="bob@example.com", user=7),
            row("cus_3", user=7, balance=Decimal("2.5")),
            row("cus_4", email="test@example.com"),  # blocked: links nobody
            row("cus_5", email="TEST@example.com"),
        ),
    )
    write(
        warehouse,
        batch(
            row("cus_1", email="ann@example.com\t"),  # same customer, other pipeline
            row("x_9", email="\nBOB@EXAMPLE.COM"),
            pipeline="p2",
        ),
    )


def test_sharing_finds_normalised_values_and_same_sources(warehouse: Warehouse) -> None:
    seed(warehouse)
    s = store(warehouse)
    found = s.sharing(Probe({"email": frozenset({"ann@example.com"})}))
    assert {i.key for i in found} == {IdentityKey("p1", "cus_1"), IdentityKey("p2", "cus_1")}
    found = s.sharing(Probe({"user": frozenset({7})}, frozenset({("conn1", "x_9")})))
    assert {i.key.source_id for i in found} == {"cus_1", "cus_2", "cus_3", "x_9"}
    assert s.sharing(Probe({"email": frozenset({"nobody@example.com"})})) == []
    assert s.sharing(Probe()) == []


def test_reads_return_identities_with_their_values(warehouse: Warehouse) -> None:
    seed(warehouse)
    s = store(warehouse)
    [ann] = s.identities([IdentityKey("p1", "cus_1"), IdentityKey("p1", "missing")])
    assert ann.profile_id == written_id(warehouse, "run1", "cus_1")  # not resolved yet
    assert s.profiles([ann.profile_id or "none"]) == {}  # names no profile
    s.apply(rebuild(s, SETTINGS, Context("r0", AT, ("p1", "p2"))))
    [ann] = s.identities([IdentityKey("p1", "cus_1"), IdentityKey("p1", "missing")])
    assert ann.connection_id == "conn1"
    assert ann.values["metadata"] == {"a": [1]}
    assert ann.values["email"] == " Ann@Example.com "
    assert ann.profile_id is not None
    assert {i.key for i in s.members([ann.profile_id])} == {
        ann.key,
        IdentityKey("p2", "cus_1"),
        IdentityKey("p1", "cus_3"),
    }
    assert s.members([]) == []
    assert s.identities([]) == []
    assert set(s.profiles([ann.profile_id, "nope"])) == {ann.profile_id}


def test_rebuild_in_the_warehouse_equals_the_memory_store(warehouse: Warehouse) -> None:
    seed(warehouse)
    twin = memory_twin(warehouse)
    context = Context("rebuild-1", AT, ("p1", "p2"))
    expected = rebuild(twin, SETTINGS, context)
    store(warehouse).apply(rebuild(store(warehouse), SETTINGS, context))
    twin.apply(expected)
    assert partition(warehouse) == {
        frozenset({("p1", "cus_1"), ("p2", "cus_1"), ("p1", "cus_3")}),
        frozenset({("p1", "cus_2"), ("p2", "x_9")}),
        frozenset({("p1", "cus_4")}),
        frozenset({("p1", "cus_5")}),
    }
    assert {i.key: i.profile_id for i in store(warehouse).all_identities()} == {
        k: i.profile_id for k, i in twin.rows.items()
    }
    profiles = {p["_profile_id"]: p for p in warehouse.profiles()}
    assert profiles.keys() == twin.profile_rows.keys()
    for pid, mine in twin.profile_rows.items():
        assert profiles[pid]["_identity_count"] == mine.identity_count
        assert {k: profiles[pid][k] for k in mine.values} == dict(mine.values)
    # Nothing left to do: a second rebuild writes nothing.
    again = rebuild(store(warehouse), SETTINGS, Context("rebuild-2", AT, ("p1", "p2")))
    assert again.upserts == ()
    assert again.removed == ()
    assert not again.memberships


def test_an_email_change_splits_and_is_logged(warehouse: Warehouse) -> None:
    seed(warehouse)
    s = store(warehouse)
    s.apply(rebuild(s, SETTINGS, Context("r0", AT, ("p1", "p2"))))
    [before] = {i.profile_id for i in s.identities([IdentityKey("p2", "x_9")])}
    write(warehouse, batch(row("x_9", email="carol@example.com"), pipeline="p2", run="run2"))
    twin = memory_twin(warehouse)
    context = Context("r1", AT + timedelta(hours=1), ("p1", "p2"))
    touched = [IdentityKey("p2", "x_9")]
    plan = resolve_changes(s, SETTINGS, context, touched)
    assert plan == resolve_changes(twin, SETTINGS, context, touched)
    s.apply(plan)
    s.apply(plan)  # applying twice changes nothing more
    assert frozenset({("p2", "x_9")}) in partition(warehouse)
    [split] = [c for c in warehouse.profile_changes() if c.run_id == "r1"]
    assert split.kind == ChangeKind.SPLIT.value
    assert split.before == (before,)
    assert before in split.after
    assert len(split.after) == 2


def test_apply_writes_profiles_memberships_and_changes(warehouse: Warehouse) -> None:
    write(warehouse, batch(row("cus_1", email="a@x.io"), row("cus_2", email="a@x.io")))
    old = {
        "cus_1": "0d7f3a52-2b1c-5e43-9a77-51a3b6c4e8d1",
        "cus_2": "0d7f3a52-2b1c-5e43-9a77-51a3b6c4e8d2",
    }
    warehouse.apply_profiles(
        ProfileWrite(
            upserts=[ProfileRecord(old[s], AT, 1, {"email": "a@x.io"}) for s in old],
            memberships=[("p1", s, old[s]) for s in old],
        )
    )
    keep = old["cus_1"]
    values: dict[str, Any] = {"email": "a@x.io", "user": 3, "metadata": {"k": 1}}
    write_plan = ProfileWrite(
        upserts=[ProfileRecord(keep, AT, 2, values)],
        removed=[old["cus_2"]],
        memberships=[("p1", "cus_2", keep)],
        changes=[ChangeRecord("merge", (old["cus_1"], old["cus_2"]), (keep,), "r9", AT)],
    )
    warehouse.apply_profiles(write_plan)
    warehouse.apply_profiles(write_plan)
    [profile] = warehouse.profiles()
    assert profile["_profile_id"] == keep
    assert profile["_identity_count"] == 2
    assert profile["metadata"] == {"k": 1}
    assert profile["user"] == 3
    assert {i["_profile_id"] for i in warehouse.identities()} == {keep}
    assert warehouse.profile_changes() == [write_plan.changes[0]]
    # One profile's history is found in the warehouse, not by reading the whole log.
    other = "00000000-0000-4000-8000-00000000000f"
    warehouse.apply_profiles(
        ProfileWrite(changes=[ChangeRecord("split", (other,), (other, "x%_"), "r10", AT)])
    )
    assert warehouse.profile_changes(involving=keep) == [write_plan.changes[0]]
    assert [c.run_id for c in warehouse.profile_changes(involving=other)] == ["r10"]
    assert warehouse.profile_changes(involving="x%") == []  # an id is whole, not a pattern
    assert len(warehouse.profile_changes()) == 2


def test_one_resolution_at_a_time(warehouse: Warehouse, engine: Engine) -> None:
    """While one resolution holds the lock, another waits for it to be released."""
    seed(warehouse)
    other = engine.open() if engine.name == "postgresql" else warehouse
    entered = threading.Event()
    order: list[str] = []

    def second() -> None:
        with other.resolution_lock():
            order.append("second")
        entered.set()

    try:
        with warehouse.resolution_lock():
            thread = threading.Thread(target=second)
            thread.start()
            assert not entered.wait(0.5)  # blocked while the first holds the lock
            order.append("first")
        assert entered.wait(10)
        thread.join()
        assert order == ["first", "second"]
    finally:
        if other is not warehouse:
            other.close()


def test_profile_rows_round_trip_every_type(warehouse: Warehouse) -> None:
    """Profile rows are bound column-wise as arrays: every model type, and nulls."""
    from .test_conformance import FULL, model

    ids = ("0d7f3a52-2b1c-5e43-9a77-51a3b6c4e8d1", "0d7f3a52-2b1c-5e43-9a77-51a3b6c4e8d2")
    empty = dict.fromkeys(FULL)
    warehouse.apply_profiles(
        ProfileWrite(upserts=[ProfileRecord(ids[0], AT, 3, FULL), ProfileRecord(ids[1], AT, 1, {})])
    )
    found = {p["_profile_id"]: p for p in warehouse.profiles()}
    assert model(found[ids[0]]) == FULL
    assert model(found[ids[1]]) == empty
    assert found[ids[0]]["_identity_count"] == 3
    assert found[ids[0]]["_updated_at"] == AT


def keyed(warehouse: Warehouse) -> WarehouseIdentityStore:
    """The store as an incremental resolution uses it: after a set-based rebuild, whose
    key table serves the lookups."""
    with warehouse.resolution_lock():
        batches = warehouse.pending_identities().batches
        rebuild_in_warehouse(warehouse, SETTINGS, Context("r0", AT, ("p1", "p2")), batches)
    return WarehouseIdentityStore(warehouse, SETTINGS, keyed=True)


def by_key(found: list[Identity]) -> list[Identity]:
    return sorted(found, key=lambda i: i.key)


def test_keyed_lookups_equal_the_memory_store(warehouse: Warehouse) -> None:
    """`sharing` by the key table and `with_members` (where a resolution starts) find
    exactly what the in-memory store finds: a source id probed on one connection does
    not find the same source id on another."""
    seed(warehouse)
    write(warehouse, WriteBatch("p3", "conn3", "run3", [row("x_9", user=8), row("cus_7")]))
    s = keyed(warehouse)
    twin = memory_twin(warehouse)
    probes = [
        Probe({"email": frozenset({"ann@example.com", "bob@example.com"})}),
        Probe({"user": frozenset({7, 8})}),
        Probe({}, frozenset({("conn1", "x_9"), ("conn1", "cus_1")})),
        Probe({}, frozenset({("conn3", "x_9")})),
        Probe({"email": frozenset({"bob@example.com"})}, frozenset({("conn3", "cus_7")})),
        Probe({"email": frozenset({"test@example.com", "nobody@example.com"})}),
        Probe(),
    ]
    for probe in probes:
        assert by_key(s.sharing(probe)) == by_key(twin.sharing(probe)), probe
        # What the caller holds may be left out, nothing else (on DuckDB the wide rows
        # of the others are read after the key table: none may be lost on the way).
        every = by_key(twin.sharing(probe))
        for known in ({i.key for i in every[::2]}, {i.key for i in every}):
            rest = [i for i in by_key(s.sharing(probe, known)) if i.key not in known]
            assert rest == [i for i in every if i.key not in known], (probe, known)
    found = s.sharing(Probe({}, frozenset({("conn1", "x_9")})))
    assert {i.key for i in found} == {IdentityKey("p2", "x_9")}
    [ann] = s.identities([IdentityKey("p1", "cus_1")])
    [bob] = s.identities([IdentityKey("p1", "cus_2")])
    assert ann.profile_id is not None
    assert bob.profile_id is not None
    starts: list[tuple[list[IdentityKey], list[str]]] = [
        ([IdentityKey("p1", "cus_1")], []),
        ([IdentityKey("p1", "cus_1"), IdentityKey("p1", "missing")], [bob.profile_id]),
        ([], [bob.profile_id, "not-a-profile"]),
        ([IdentityKey("p3", "x_9")], []),  # never resolved: no profile
        ([], []),
    ]
    for keys, formers in starts:
        got = s.with_members(keys, formers)
        assert by_key(got) == by_key(twin.with_members(keys, formers)), (keys, formers)
    assert {i.key for i in s.with_members([ann.key], [])} == {
        ann.key,
        IdentityKey("p2", "cus_1"),
        IdentityKey("p1", "cus_3"),
    }


def test_postgres_lookups_probe_indexes_without_statistics(
    warehouse: Warehouse, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The incremental lookups are index probes whatever PostgreSQL's estimates: with
    `identities` never analysed (autovacuum off), the source probe scanned and sorted
    it whole (1.8 s at a million identities)."""
    if engine.name != "postgresql":
        pytest.skip("a PostgreSQL planner question")
    rows = [row(f"cus_{n}", email=f"u{n}@example.com", user=n) for n in range(3000)]
    write(warehouse, batch(*rows))
    write(warehouse, batch(*rows[:1500], pipeline="p2", run="run2"))
    s = keyed(warehouse)
    plans: list[str] = []
    real = warehouse._execute  # type: ignore[attr-defined]

    def explained(cur: Any) -> Any:
        run = real(cur)

        def execute(query: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
            if "FROM" in query and "identities" in query:
                plans.append("\n".join(r[0] for r in run("EXPLAIN " + query, params)))
            return run(query, params)

        return execute

    monkeypatch.setattr(warehouse, "_execute", explained)
    probe = Probe(
        {"email": frozenset(f"u{n}@example.com" for n in range(0, 3000, 7))},
        frozenset(("conn1", f"cus_{n}") for n in range(0, 3000, 5)),
    )
    assert s.sharing(probe)
    assert s.with_members([IdentityKey("p1", f"cus_{n}") for n in range(0, 3000, 3)], [])
    assert len(plans) == 2
    for plan in plans:
        assert "Seq Scan on identities" not in plan, plan
        assert "Seq Scan on identity_keys" not in plan, plan
