"""A small world for identity tests: a Customer Model, pipelines, and a checked step."""

from __future__ import annotations

import copy
from collections.abc import Collection, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.identity.reference import (
    expected_ids,
    expected_values,
    plain_keys,
    reference_partition,
)

from headwater.kernel.model import CustomerModel, Property, PropertyType
from headwater.services.identity import (
    ChangeKind,
    Context,
    Identity,
    IdentityKey,
    IdentitySettings,
    MemoryIdentityStore,
    identity_settings,
    rebuild,
    resolve_changes,
)

STRING, INTEGER = PropertyType.STRING, PropertyType.INTEGER
MODEL = CustomerModel(
    (
        Property("email", STRING),
        Property("phone", STRING),
        Property("name", STRING),
        Property("customer_no", INTEGER),
        Property("address", PropertyType.OBJECT, "", (Property("city", STRING),)),
        Property("score", PropertyType.FLOAT),
    )
)
#: pipeline -> connection; pipelines 1 and 2 read the same Stripe account.
PIPELINES = {"pl_1": "conn_a", "pl_2": "conn_a", "pl_3": "conn_b"}
ORDER = ("pl_1", "pl_2", "pl_3")
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def settings_for(*identifiers: str, **blocked: Sequence[str]) -> IdentitySettings:
    return identity_settings(MODEL, identifiers, blocked or None)


def identity(
    pipeline: str,
    source: str,
    email: str | None = None,
    phone: str | None = None,
    *,
    at: int | None = 0,
    name: str | None = None,
    customer_no: int | None = None,
) -> Identity:
    """An identity of `pipeline`; `at` is its source change time in seconds after T0."""
    return Identity(
        IdentityKey(pipeline, source),
        PIPELINES[pipeline],
        None if at is None else T0 + timedelta(seconds=at),
        {"email": email, "phone": phone, "name": name, "customer_no": customer_no},
    )


class World:
    """A `MemoryIdentityStore` driven like the run engine will drive the warehouse."""

    def __init__(self, settings: IdentitySettings) -> None:
        self.settings = settings
        self.store = MemoryIdentityStore(settings)
        self.steps = 0

    def context(self) -> Context:
        return Context(f"run_{self.steps}", T0 + timedelta(hours=self.steps), ORDER)

    def run(self, puts: Sequence[Identity] = (), deletes: Collection[IdentityKey] = ()) -> None:
        """One run: write, then resolve incrementally; check every rule afterwards."""
        self.steps += 1
        touched: set[IdentityKey] = set()
        formers: set[str] = set()
        for row in puts:
            self.store.put(row)
            touched.add(row.key)
        for key in deletes:
            former = self.store.delete(key)
            touched.add(key)
            if former is not None:
                formers.add(former)
        before = copy.deepcopy(self.store)
        context = self.context()
        plan = resolve_changes(self.store, self.settings, context, touched, formers)
        self.store.apply(plan)
        check(self.store, before, context)

    def profiles(self) -> dict[str, set[IdentityKey]]:
        out: dict[str, set[IdentityKey]] = {}
        for row in self.store.rows.values():
            assert row.profile_id is not None
            out.setdefault(row.profile_id, set()).add(row.key)
        return out

    def profile_of(self, pipeline: str, source: str) -> str:
        found = self.store.rows[IdentityKey(pipeline, source)].profile_id
        assert found is not None
        return found


def check(store: MemoryIdentityStore, before: MemoryIdentityStore, context: Context) -> None:
    """Every rule, on the state after one resolution (`before` is the state it saw)."""
    settings = store.settings
    identities = list(store.rows.values())
    # 1. The partition is the reference partition, and the guard holds.
    actual: dict[str, set[IdentityKey]] = {}
    for row in identities:
        assert row.profile_id is not None, f"{row.key} has no profile"
        actual.setdefault(row.profile_id, set()).add(row.key)
    reference = reference_partition(identities, settings)
    assert {frozenset(c) for c in actual.values()} == reference
    for members in actual.values():
        firsts = {plain_keys(store.rows[k], settings)[0] for k in members} - {None}
        assert len(firsts) <= 1, f"guard broken: {firsts}"
    # 2. The rows: one per profile, with its count and values; nothing else.
    assert set(store.profile_rows) == set(actual)
    for profile_id, members in actual.items():
        profile = store.profile_rows[profile_id]
        assert profile.identity_count == len(members)
        assert profile.values == expected_values([store.rows[k] for k in members], ORDER)
    # 3. Ids survive by the rules.
    membership = {k: before.rows[k].profile_id for k in store.rows}
    counts = {p: r.identity_count for p, r in before.profile_rows.items()}
    formers = {p for p in membership.values() if p is not None}
    for component, wanted in expected_ids(reference, membership, counts).items():
        (got,) = {store.rows[k].profile_id for k in component}
        if wanted is None:
            assert got not in formers, f"{got} reused; a new id was expected"
        else:
            assert got == wanted
    # 4. Merges and splits logged: exactly the ones the partition change implies.
    logged = [c for c in store.changes if c.run_id == context.run_id]
    merges = {(c.before, c.after[0]) for c in logged if c.kind is ChangeKind.MERGE}
    splits = {(c.before[0], c.after) for c in logged if c.kind is ChangeKind.SPLIT}
    wanted_merges = set()
    for component in reference:
        olds = {p for k in component if (p := membership[k]) is not None}
        if len(olds) > 1:
            wanted_merges.add((tuple(sorted(olds)), store.rows[min(component)].profile_id))
    assert merges == wanted_merges
    wanted_splits = set()
    for former in formers:
        now = {p for k in membership if membership[k] == former and (p := store.rows[k].profile_id)}
        if len(now) > 1:
            wanted_splits.add((former, tuple(sorted(now))))
    assert splits == wanted_splits
    # 5. A rebuild from the same starting state gives the same result...
    again = copy.deepcopy(before)
    again.apply(rebuild(again, settings, context))
    assert again.rows == store.rows
    assert again.profile_rows == store.profile_rows
    assert again.changes == store.changes
    # ... and a rebuild afterwards changes nothing.
    later = Context("rebuild", context.at + timedelta(minutes=1), ORDER)
    plan = rebuild(store, settings, later)
    assert (plan.upserts, plan.removed, dict(plan.memberships), plan.changes) == ((), (), {}, ())


def values_of(store: MemoryIdentityStore, profile_id: str) -> dict[str, Any]:
    return dict(store.profile_rows[profile_id].values)
