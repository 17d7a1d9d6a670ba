"""The set-based parts of identity resolution on every engine: the SQL that mints new
profile ids, the values of profiles of every model type and size, and the key table
following the settings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
import pytest

from headwater.adapters.warehouse import Warehouse
from headwater.adapters.warehouse.identity_values import LEVELS
from headwater.adapters.warehouse.sql import profile_md5, uuid_layout
from headwater.kernel.records import IdentityRow
from headwater.services.identity import (
    Context,
    IdentityKey,
    MemoryIdentityStore,
    identity_settings,
    rebuild,
)
from headwater.services.identity import keys as identity_keys_rules
from headwater.services.identity.ids import new_profile_id
from headwater.services.identity.keys import key_spec
from headwater.services.identity.records import Identity
from headwater.services.identity.warehouse import (
    WarehouseIdentityStore,
    rebuild_in_warehouse,
    resolve_warehouse,
)

from .conftest import Engine
from .test_conformance import COLUMNS, FULL, batch, model, row, write
from .test_conformance_profiles import MODEL

AT = datetime(2024, 6, 1, tzinfo=UTC)
COLUMNS_NAMES = [c.name for c in COLUMNS]


@pytest.mark.parametrize(
    ("run", "pipeline", "source"),
    [("run_1", "pl_1", "cus_1"), ("it's", "pl'1", "cus_é"), ("%(x)s", "p", "\u212a")],
)
def test_sql_mints_the_ids_python_mints(
    warehouse: Warehouse, engine: Engine, run: str, pipeline: str, source: str
) -> None:
    def literal(text: str) -> str:
        return "'" + text.replace("'", "''") + "'"

    digest = profile_md5(literal(run), literal(pipeline), literal(source))
    bits = warehouse.spelling.uuid_bits  # type: ignore[attr-defined]
    statement = f"SELECT {uuid_layout('h', bits)} FROM (SELECT {digest} AS h) AS x"
    [(made,)] = engine.raw(warehouse, statement)
    identity = Identity(IdentityKey(pipeline, source), "conn1", None, {})
    assert made == new_profile_id(run, identity)


def test_both_layouts_of_an_md5_are_one_uuid() -> None:
    """DuckDB sets the version and variant on the number (`uuid_bits`): the same text
    as the cut and joined hex, for every value of the nibbles they overwrite."""
    conn = duckdb.connect()
    digests = "SELECT md5(CAST(x AS VARCHAR)) AS h FROM range(20000) AS t(x)"
    differ = conn.execute(
        f"SELECT count(*) FILTER (WHERE {uuid_layout('h', True)} <> {uuid_layout('h')}), "
        "count(DISTINCT substr(h, 13, 1) || substr(h, 17, 1)) FROM "
        f"({digests}) AS d"
    ).fetchall()
    assert differ == [(0, 256)]


def _values(n: int, k: int) -> dict[str, Any]:
    """Member `k` of a profile of `n`: some values only on older members."""
    values = {name: value for name, value in FULL.items() if (len(name) + n + k) % 3 != 0}
    values["email"] = f"shared{n}@example.com"
    values["user"] = None
    return values


def test_values_of_every_type_and_size_equal_the_python_rebuild(
    warehouse: Warehouse,
) -> None:
    """Profiles of 1 .. LEVELS + 2 identities (the coalesce over ranks, and the ordered
    aggregate beyond), every model type, ties broken by pipeline order and key."""
    settings = identity_settings(MODEL, ["email"])
    for n in range(1, LEVELS + 3):
        rows = [
            IdentityRow(f"cus_{n}_{k}", AT - timedelta(hours=k % 3), _values(n, k))
            for k in range(n)
        ]
        write(warehouse, batch(*rows[::2]))
        write(warehouse, batch(*rows[1::2], pipeline="p2"))
    twin = MemoryIdentityStore(settings)
    for i in WarehouseIdentityStore(warehouse, settings).all_identities():
        twin.load(i)
    context = Context("rebuild-1", AT, ("p2", "p1"))
    twin.apply(rebuild(twin, settings, context))
    with warehouse.resolution_lock():
        done = rebuild_in_warehouse(warehouse, settings, context)
    assert (done.considered, done.written) == (len(twin.rows), len(twin.profile_rows))
    found = {p["_profile_id"]: p for p in warehouse.profiles()}
    assert found.keys() == twin.profile_rows.keys()
    for profile_id, expected in twin.profile_rows.items():
        assert found[profile_id]["_identity_count"] == expected.identity_count
        assert model(found[profile_id]) == {c: expected.values.get(c) for c in COLUMNS_NAMES}


def _twin_rebuild(
    warehouse: Warehouse, settings: Any, context: Context, twin: MemoryIdentityStore | None = None
) -> MemoryIdentityStore:
    """The Python rebuild of the warehouse's identities, applied to a twin store (given:
    one holding the profiles of the last rebuild)."""
    twin = twin or MemoryIdentityStore(settings)
    for i in WarehouseIdentityStore(warehouse, settings).all_identities():
        twin.load(i)
    twin.apply(rebuild(twin, settings, context))
    return twin


def test_a_rebuild_follows_key_order_not_the_order_rows_are_stored_in(
    warehouse: Warehouse,
) -> None:
    """Where the rules fall back on identity-key order (a new profile's id from its
    smallest identity, equal values by key, a split profile's heir among equal parts),
    the rebuild orders by key, whatever order the rows were written in (here: the
    reverse), and agrees with the Python rebuild, the first time and after a split."""
    settings = identity_settings(MODEL, ["email"])
    for p in ("p2", "p1"):  # p2 first: rows stored after the ones they follow
        rows = [
            IdentityRow(f"cus_{k}", AT, {"email": f"grp{k // 4}@x.io", "address_city": f"{p} {k}"})
            for k in range(11, -1, -1)
        ]
        write(warehouse, batch(*rows, pipeline=p))
    first = Context("rebuild-1", AT, ("p1", "p2"))
    twin = _twin_rebuild(warehouse, settings, first)
    with warehouse.resolution_lock():
        rebuild_in_warehouse(warehouse, settings, first)
    found = {p["_profile_id"]: p for p in warehouse.profiles()}
    assert found.keys() == twin.profile_rows.keys()
    assert len(found) == 3
    for profile_id, expected in twin.profile_rows.items():
        assert found[profile_id]["address_city"] == expected.values["address_city"]
        assert found[profile_id]["address_city"].startswith("p1 ")
    # Each profile of eight splits in two equal parts: the part holding its smallest
    # identity keeps the id.
    later = AT + timedelta(hours=1)
    moved = [
        IdentityRow(f"cus_{k}", later, {"email": f"new{k // 4}@x.io"}) for k in (11, 10, 7, 6, 3, 2)
    ]
    write(warehouse, batch(*moved, pipeline="p1"))
    write(warehouse, batch(*moved, pipeline="p2"))
    second = Context("rebuild-2", later, ("p1", "p2"))
    twin = _twin_rebuild(warehouse, settings, second, twin)
    with warehouse.resolution_lock():
        done = rebuild_in_warehouse(warehouse, settings, second)
    assert len(done.splits) == 3
    found = {p["_profile_id"]: p for p in warehouse.profiles()}
    assert found.keys() == twin.profile_rows.keys()
    assert len(found) == 6
    for profile_id, expected in twin.profile_rows.items():
        assert found[profile_id]["_identity_count"] == expected.identity_count
        assert model(found[profile_id])["email"] == expected.values["email"]


def test_new_identity_settings_rebuild_the_keys_and_the_profiles(warehouse: Warehouse) -> None:
    """The key table remembers the settings it was built with: other settings make the
    next resolution a rebuild, even with nothing pending."""
    write(warehouse, batch(row("a", email="ann@x.io", user=7), row("b", email="bob@x.io", user=7)))
    write(warehouse, batch(row("c", user=7), pipeline="p2"))
    email = identity_settings(MODEL, ["email"])
    resolve_warehouse(warehouse, email, Context("r1", AT))
    assert len(warehouse.profiles()) == 3
    assert warehouse.identity_keys_fingerprint() is not None
    assert not warehouse.pending_identities()
    user_first = identity_settings(MODEL, ["user", "email"])
    done = resolve_warehouse(warehouse, user_first, Context("r2", AT))
    assert done.considered == 3  # a rebuild: nothing was pending
    [profile] = warehouse.profiles()
    assert profile["_identity_count"] == 3
    again = resolve_warehouse(warehouse, user_first, Context("r3", AT))
    assert again.considered == 0  # keys current, nothing pending: nothing to do


@pytest.mark.parametrize("stored", ["old layout", "other hash"])
def test_a_key_table_hashed_otherwise_is_rebuilt(
    warehouse: Warehouse, engine: Engine, stored: str
) -> None:
    """DuckDB probes the key table by the engine's hashes of the keys: a table made
    before the hashes, or hashed by another DuckDB, finds nothing by them, so it is no
    current table and the next resolution rebuilds it (and the profiles)."""
    if engine.name != "duckdb":
        pytest.skip("PostgreSQL probes the keys by their indexes, not by hashes")
    settings = identity_settings(MODEL, ["email"])
    write(warehouse, batch(row("a", email="ann@x.io"), row("b", email="bob@x.io")))
    resolve_warehouse(warehouse, settings, Context("r1", AT))
    fingerprint = key_spec(settings).fingerprint
    assert warehouse.identity_keys_fingerprint() == fingerprint
    if stored == "old layout":
        engine.raw(warehouse, "ALTER TABLE {s}.identity_keys DROP COLUMN _hs")
        engine.raw(warehouse, "ALTER TABLE {s}.identity_keys DROP COLUMN _h1")
        marked = fingerprint
    else:
        marked = f"{fingerprint} hash:12345"
    engine.raw(warehouse, f"UPDATE {{s}}.identity_keys_settings SET fingerprint = '{marked}'")
    assert warehouse.identity_keys_fingerprint() is None
    write(warehouse, batch(row("c", email="ANN@x.io "), run="run2", pipeline="p2"))
    done = resolve_warehouse(warehouse, settings, Context("r2", AT))
    assert done.considered == 3  # a rebuild, not the one pending identity's neighbourhood
    assert warehouse.identity_keys_fingerprint() == fingerprint
    assert sorted(p["_identity_count"] for p in warehouse.profiles()) == [1, 2]
    write(warehouse, batch(row("d", email="bob@x.io"), run="run3", pipeline="p2"))
    resolve_warehouse(warehouse, settings, Context("r3", AT))  # by the hashes again
    assert sorted(p["_identity_count"] for p in warehouse.profiles()) == [2, 2]


def test_values_padded_or_made_of_unicode_spaces_key_as_python_trims_them(
    warehouse: Warehouse,
) -> None:
    """Only ASCII whitespace was trimmed, so an email padded with a no-break space never
    joined its customer, and customers whose email was such spaces alone all shared one
    key: one profile.  Python keys the values that are not ASCII (SQL the others), on
    the run's resolution and in a rebuild alike."""
    settings = identity_settings(MODEL, ["email"])
    write(warehouse, batch(row("a", email="ann@x.io"), row("b", email="\u00a0Ann@x.io\u3000")))
    write(warehouse, batch(row("c", email="\u00a0"), row("d", email="\u3000\u2003"), run="r"))
    resolve_warehouse(warehouse, settings, Context("r1", AT))
    by_source = {i["_source_id"]: i["_profile_id"] for i in warehouse.identities()}
    assert by_source["a"] == by_source["b"]
    assert len({by_source["a"], by_source["c"], by_source["d"]}) == 3
    write(warehouse, batch(row("e", email="\u2002ANN@X.IO"), run="run2", pipeline="p2"))
    resolve_warehouse(warehouse, settings, Context("r2", AT))  # found by its key
    assert {i["_profile_id"] for i in warehouse.identities() if i["_source_id"] in "abe"} == {
        by_source["a"]
    }
    with warehouse.resolution_lock():
        done = rebuild_in_warehouse(warehouse, settings, Context("r3", AT))
    assert (done.considered, done.written, done.moved) == (5, 0, 0)


def test_keys_made_by_an_older_normalisation_are_stale(monkeypatch: pytest.MonkeyPatch) -> None:
    """A key table keyed before whitespace beyond ASCII's was trimmed holds stale keys:
    its fingerprint is no current one, so the next resolution rebuilds it."""
    settings = identity_settings(MODEL, ["email"])
    now = key_spec(settings).fingerprint
    monkeypatch.setattr(identity_keys_rules, "NORMALISATION", 1)
    assert key_spec(settings).fingerprint != now


def test_an_identifier_value_longer_than_an_index_entry_resolves(
    warehouse: Warehouse, engine: Engine
) -> None:
    """PostgreSQL indexed each key as is, and a b-tree entry holds at most 2,704 bytes:
    one customer whose email was longer (incompressible text of 4,000 characters here)
    failed the resolution after the run that wrote it, and every later one (it stayed
    pending), and every rebuild.  It indexes a prefix of each text key now; a key table
    indexed the old way is no current table (the next resolution rebuilds it)."""
    settings = identity_settings(MODEL, ["email"])
    noise = "".join(f"{n * 7919 % 1_000_003:06x}" for n in range(700))  # no repeats
    long = f"{noise}@x.io"
    write(warehouse, batch(row("a", email="ann@x.io"), row("b", email="bob@x.io")))
    resolve_warehouse(warehouse, settings, Context("r1", AT))
    write(warehouse, batch(row("c", email=long), row("d", email="Ann@x.io"), run="run2"))
    resolve_warehouse(warehouse, settings, Context("r2", AT))
    assert not warehouse.pending_identities()
    write(warehouse, batch(row("e", email=f" {long.upper()}"), run="run3", pipeline="p2"))
    resolve_warehouse(warehouse, settings, Context("r3", AT))  # found by the long key
    assert not warehouse.pending_identities()
    by_source = {i["_source_id"]: i["_profile_id"] for i in warehouse.identities()}
    assert by_source["c"] == by_source["e"] != by_source["a"] == by_source["d"]
    assert sorted(p["_identity_count"] for p in warehouse.profiles()) == [1, 2, 2]
    with warehouse.resolution_lock():
        done = rebuild_in_warehouse(warehouse, settings, Context("r4", AT))
    assert (done.considered, done.written, done.moved) == (5, 0, 0)
    if engine.name == "postgresql":
        fingerprint = key_spec(settings).fingerprint
        assert warehouse.identity_keys_fingerprint() == fingerprint
        old = f"UPDATE {{s}}.identity_keys_settings SET fingerprint = '{fingerprint}'"
        engine.raw(warehouse, old)
        assert warehouse.identity_keys_fingerprint() is None
