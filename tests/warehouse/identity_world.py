"""The identity `World` on a real warehouse: runs write batches, then resolve.

Each step writes through `Warehouse.write` (which records the pending identities),
then resolves them with the service's own `resolve_warehouse`, and checks the result
against the brute-force reference (`tests/identity/reference.py`): the partition, the
guard, the profile rows, the surviving ids, the logged merges and splits, that an
in-memory rebuild from the same starting state agrees, and that a warehouse rebuild
afterwards changes nothing.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import timedelta

from tests.identity.reference import (
    expected_ids,
    expected_values,
    plain_keys,
    reference_partition,
)
from tests.identity.world import MODEL, ORDER, PIPELINES, T0

from headwater.adapters.warehouse import Warehouse, WriteBatch
from headwater.kernel.records import IdentityRow
from headwater.services.identity import (
    ChangeKind,
    Context,
    Identity,
    IdentityKey,
    IdentitySettings,
    MemoryIdentityStore,
    ProfileChange,
    rebuild,
)
from headwater.services.identity.ids import new_profile_id
from headwater.services.identity.warehouse import (
    WarehouseIdentityStore,
    change,
    rebuild_in_warehouse,
)
from headwater.services.profiles import resolve_warehouse

TABLES = ("identities", "profiles", "profile_changes", "pending_identities", "pipeline_state")


def twin(warehouse: Warehouse, settings: IdentitySettings) -> MemoryIdentityStore:
    """The warehouse's identities, profiles and change log, held in memory."""
    store = WarehouseIdentityStore(warehouse, settings)
    out = MemoryIdentityStore(settings)
    for i in store.all_identities():
        out.load(i)
    profiles = list(store.all_profiles())
    for p in profiles:
        out.profile_rows[p.id] = p
    # Each id once: no index enforces it on DuckDB (`TypeMapper.profile_primary_key`).
    assert len(out.profile_rows) == len(profiles), "a profile id is written twice"
    out.changes = [change(c) for c in warehouse.profile_changes()]
    return out


class WarehouseWorld:
    """Drives a warehouse like the run engine does; `store` is its state after a step."""

    def __init__(
        self, warehouse: Warehouse, settings: IdentitySettings, *, rebuild: bool = False
    ) -> None:
        """`rebuild`: every step resolves by the set-based rebuild, not incrementally."""
        self.warehouse = warehouse
        self.settings = settings
        self.rebuild = rebuild
        self.steps = 0
        self.store = twin(warehouse, settings)
        #: Every run is killed between its writes and its resolution while this is set.
        self.killing = False

    def run(
        self,
        puts: Sequence[Identity] = (),
        deletes: Collection[IdentityKey] = (),
        *,
        killed: bool = False,
    ) -> None:
        """One run: its writes, then its resolution (none when the run is `killed`
        between the two: the next run's resolution takes its pending identities)."""
        self.steps += 1
        run_id = f"run_{self.steps}"
        for pipeline in sorted({p.key.pipeline_id for p in puts} | {k[0] for k in deletes}):
            self.warehouse.claim(pipeline, run_id)
            rows = [
                IdentityRow(p.key.source_id, p.source_updated_at, dict(p.values))
                for p in puts
                if p.key.pipeline_id == pipeline
            ]
            gone = [k.source_id for k in deletes if k.pipeline_id == pipeline]
            self.warehouse.write(WriteBatch(pipeline, PIPELINES[pipeline], run_id, rows, gone))
        before = twin(self.warehouse, self.settings)
        if killed or self.killing:
            self.store = before
            return
        context = Context(run_id, T0 + timedelta(hours=self.steps), ORDER)
        if self.rebuild:
            with self.warehouse.resolution_lock():
                batches = self.warehouse.pending_identities().batches
                rebuild_in_warehouse(self.warehouse, self.settings, context, batches)
        else:
            resolve_warehouse(self.warehouse, self.settings, context)
        self.store = twin(self.warehouse, self.settings)
        check(self.warehouse, self.store, before, context)


def check(
    warehouse: Warehouse,
    store: MemoryIdentityStore,
    before: MemoryIdentityStore,
    context: Context,
) -> None:
    settings = store.settings
    identities = list(store.rows.values())
    actual: dict[str, set[IdentityKey]] = {}
    for row in identities:
        assert row.profile_id is not None, f"{row.key} has no profile"
        actual.setdefault(row.profile_id, set()).add(row.key)
    reference = reference_partition(identities, settings)
    assert {frozenset(c) for c in actual.values()} == reference
    for members in actual.values():  # the guard
        assert len({plain_keys(store.rows[k], settings)[0] for k in members} - {None}) <= 1
    assert set(store.profile_rows) == set(actual)
    for profile_id, members in actual.items():
        row = store.profile_rows[profile_id]
        assert row.identity_count == len(members)
        assert dict(row.values) == expected_values([store.rows[k] for k in members], ORDER)
    # A profile id naming no profile (a write's provisional one) is no former profile.
    membership = {
        k: p if (p := before.rows[k].profile_id) in before.profile_rows else None
        for k in store.rows
    }
    counts = {p: r.identity_count for p, r in before.profile_rows.items()}
    formers = {p for p in membership.values() if p is not None}
    for component, wanted in expected_ids(reference, membership, counts).items():
        (got,) = {store.rows[k].profile_id for k in component}
        assert got not in formers if wanted is None else got == wanted
        if wanted is None:  # rule 4: of the run and the component's smallest identity
            assert got == new_profile_id(context.run_id, store.rows[min(component)])
    logged = [c for c in store.changes if c.run_id == context.run_id]
    for c in logged:
        assert c.kind in (ChangeKind.MERGE, ChangeKind.SPLIT)
        # Only former profiles are merged or split (no write's provisional id).
        assert set(c.before) <= set(before.profile_rows)
    # Incremental equals a rebuild from the same starting state...
    again = MemoryIdentityStore(settings)
    for i in before.rows.values():
        again.load(i)
    again.profile_rows = dict(before.profile_rows)
    again.apply(rebuild(again, settings, context))
    assert {k: i.profile_id for k, i in again.rows.items()} == {
        k: i.profile_id for k, i in store.rows.items()
    }
    assert {p: (r.identity_count, dict(r.values)) for p, r in again.profile_rows.items()} == {
        p: (r.identity_count, dict(r.values)) for p, r in store.profile_rows.items()
    }
    assert sorted(map(_plain, again.changes)) == sorted(map(_plain, logged))
    # ... and a rebuild afterwards changes nothing, in Python and set-based.
    later = Context("rebuild", context.at + timedelta(minutes=1), ORDER)
    plan = rebuild(WarehouseIdentityStore(warehouse, settings), settings, later)
    assert (plan.upserts, plan.removed, dict(plan.memberships), plan.changes) == ((), (), {}, ())
    assert not warehouse.pending_identities()
    with warehouse.resolution_lock():
        done = rebuild_in_warehouse(warehouse, settings, later)
    assert (done.considered, done.written, done.removed, done.moved) == (len(identities), 0, 0, 0)
    assert (done.merges, done.splits) == ([], [])


def _plain(c: ProfileChange) -> tuple[str, tuple[str, ...], tuple[str, ...], str]:
    return (c.kind.value, c.before, c.after, c.run_id)


__all__ = ["MODEL", "TABLES", "WarehouseWorld"]
