"""`WarehouseIdentityStore`: the `IdentityStore` contract over a warehouse adapter.

The warehouse runs the set-based SQL (`adapters/warehouse/profile_store`); this module
only translates between its plain records and the values of identity resolution.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable

from headwater.adapters.warehouse.contract import Warehouse
from headwater.adapters.warehouse.identity_rebuild import Job, Outcome
from headwater.adapters.warehouse.pending import Pending
from headwater.adapters.warehouse.profile_store import (
    ChangeRecord,
    IdentityRecord,
    KeyRows,
    ProfileRecord,
    ProfileWrite,
)
from headwater.kernel.model import PropertyType
from headwater.services.identity.keys import GUARD, key_spec
from headwater.services.identity.normalise import identifier_keys
from headwater.services.identity.records import (
    ChangeKind,
    Context,
    Identity,
    IdentityKey,
    ProfileChange,
    ProfilePlan,
    ProfileRow,
)
from headwater.services.identity.resolve import resolve_changes
from headwater.services.identity.settings import IdentitySettings
from headwater.services.identity.store import Probe


def _identity(r: IdentityRecord) -> Identity:
    return Identity(
        IdentityKey(r.pipeline_id, r.source_id),
        r.connection_id,
        r.source_updated_at,
        r.values,
        r.profile_id,
    )


def _row(r: ProfileRecord) -> ProfileRow:
    return ProfileRow(r.id, r.updated_at, r.identity_count, r.values)


def change(r: ChangeRecord) -> ProfileChange:
    """A logged ``profile_changes`` row as a `ProfileChange`."""
    return ProfileChange(ChangeKind(r.kind), r.before, r.after, r.run_id, r.at)


class WarehouseIdentityStore:
    """Identities and profiles of one workspace's warehouse, as resolution reads them."""

    def __init__(
        self, warehouse: Warehouse, settings: IdentitySettings, *, keyed: bool = False
    ) -> None:
        """`keyed`: the warehouse's ``identity_keys`` are current for `settings` (the
        caller checked the fingerprint), so candidates are found by their keys;
        otherwise by comparing the lower-cased columns (a scan)."""
        self._warehouse = warehouse
        self._settings = settings
        self._keyed = keyed
        self._last: tuple[frozenset[IdentityKey], list[Identity]] | None = None
        # Probes name identifiers by path; the warehouse knows their columns.
        self._columns = {i.path: i.column for i in settings.identifiers}

    def identities(self, keys: Collection[IdentityKey]) -> list[Identity]:
        asked = frozenset(keys)
        if self._last is not None and self._last[0] == asked:
            return list(self._last[1])
        found = self._warehouse.identities_by_key([(k.pipeline_id, k.source_id) for k in asked])
        out = [_identity(r) for r in found]
        if self._keyed:  # one resolution under the lock: `key_rows` asks again for the seeds
            self._last = (asked, out)
        return out

    def sharing(self, probe: Probe, known: Collection[IdentityKey] = ()) -> list[Identity]:
        if self._keyed:
            found = self._warehouse.identities_sharing_keys(
                [probe.keys.get(i.path, frozenset()) for i in self._settings.identifiers],
                [i.type is PropertyType.INTEGER for i in self._settings.identifiers],
                probe.sources,
                {(k.pipeline_id, k.source_id) for k in known},
            )
            return [_identity(r) for r in found]
        keys: dict[str, Collection[str | int]] = {
            self._columns[path]: values for path, values in probe.keys.items() if values
        }
        found = self._warehouse.identities_sharing(keys, probe.sources)
        return [_identity(r) for r in found]

    def members(self, profile_ids: Collection[str]) -> list[Identity]:
        return [_identity(r) for r in self._warehouse.identities_in_profiles(profile_ids)]

    def with_members(
        self, keys: Collection[IdentityKey], former_profiles: Collection[str]
    ) -> list[Identity]:
        asked = frozenset(keys)
        found = self._warehouse.identities_with_members(
            [(k.pipeline_id, k.source_id) for k in asked], former_profiles
        )
        out = [_identity(r) for r in found]
        if self._keyed:  # `key_rows` asks again for the seeds
            self._last = (asked, [i for i in out if i.key in asked])
        return out

    def profiles(self, profile_ids: Collection[str]) -> dict[str, ProfileRow]:
        return {r.id: _row(r) for r in self._warehouse.profile_records(profile_ids)}

    def all_identities(self) -> Iterable[Identity]:
        return [_identity(r) for r in self._warehouse.all_identity_records()]

    def all_profiles(self) -> Iterable[ProfileRow]:
        return [_row(r) for r in self._warehouse.profile_records(None)]

    def pending(self) -> Pending:
        """What runs wrote or deleted since the last resolution (``pending_identities``)."""
        return self._warehouse.pending_identities()

    def key_rows(self, started: Collection[IdentityKey]) -> KeyRows:
        """The ``identity_keys`` rows of the identities a resolution `started` from."""
        settings = self._settings
        rows = [
            (i.key.pipeline_id, i.key.source_id, identifier_keys(i.values, settings))
            for i in self.identities(started)
        ]
        integer = tuple(i.type is PropertyType.INTEGER for i in settings.identifiers)
        return KeyRows([(k.pipeline_id, k.source_id) for k in started], rows, integer)

    def apply(
        self, plan: ProfilePlan, resolved: Collection[str] = (), keys: KeyRows | None = None
    ) -> None:
        """Write `plan`, removing the pending batches it `resolved` and rewriting the
        key rows `keys`, in one transaction."""
        self._last = None
        self._warehouse.apply_profiles(
            ProfileWrite(
                upserts=[
                    ProfileRecord(u.id, u.updated_at, u.identity_count, u.values)
                    for u in plan.upserts
                ],
                removed=plan.removed,
                memberships=[(k.pipeline_id, k.source_id, p) for k, p in plan.memberships.items()],
                changes=[
                    ChangeRecord(c.kind.value, c.before, c.after, c.run_id, c.at)
                    for c in plan.changes
                ],
                resolved=resolved,
                keys=keys,
            )
        )


#: A resolution whose pending identities are more than this share of the warehouse
#: (a first import, say) recomputes everything instead: the result is the same
#: (`resolve_changes` and a rebuild always agree) and one set-based pass over all is
#: cheaper than following links out of most of them.
REBUILD_SHARE = 0.25
#: Below this many pending identities the share is not even counted.
REBUILD_MIN = 5_000


def outcome(plan: ProfilePlan) -> Outcome:
    """An incremental resolution's plan as the counts a rebuild reports."""
    return Outcome(
        considered=plan.considered,
        written=len(plan.upserts),
        removed=len(plan.removed),
        moved=len(plan.memberships),
        merges=[(c.before, c.after[0]) for c in plan.changes if c.kind is ChangeKind.MERGE],
        splits=[(c.before[0], c.after) for c in plan.changes if c.kind is ChangeKind.SPLIT],
    )


def rebuild_in_warehouse(
    warehouse: Warehouse,
    settings: IdentitySettings,
    context: Context,
    resolved: Collection[str] = (),
) -> Outcome:
    """Every profile recomputed set-based in the warehouse (docs/identity.md §8), the
    key table rebuilt for `settings`, and the pending batches `resolved` removed.  The
    caller holds the resolution lock."""
    job = Job(
        key_spec(settings), context.run_id, context.at, context.pipeline_order, GUARD, resolved
    )
    return warehouse.rebuild_profiles(job)


def resolve_warehouse(
    warehouse: Warehouse,
    settings: IdentitySettings | Callable[[], IdentitySettings],
    context: Context,
) -> Outcome:
    """Resolve what runs wrote or deleted since the last resolution (DESIGN §10).

    Under the warehouse's resolution lock: read the pending rows; if the key table
    was built with other settings (or never), or the pending identities are most of
    the warehouse, rebuild set-based; otherwise resolve their neighbourhood, found by
    the keys, and apply the plan with the pending identities' new keys, removing the
    batches read, in one transaction.  `settings` may be a function reading them: it is
    called under the lock, so a resolution never applies settings that a rebuild of
    newer ones (`identity set`) replaced while it waited for the lock.
    """
    with warehouse.resolution_lock():
        if callable(settings):
            settings = settings()
        batches, count = warehouse.pending_summary()
        current = warehouse.identity_keys_fingerprint() == key_spec(settings).fingerprint
        if current and not batches:
            return Outcome()
        many = count >= REBUILD_MIN
        if not current or (many and count > REBUILD_SHARE * warehouse.count()):
            return rebuild_in_warehouse(warehouse, settings, context, batches)
        pending = warehouse.pending_identities()
        store = WarehouseIdentityStore(warehouse, settings, keyed=True)
        touched = [IdentityKey(p, s) for p, s in pending.keys]
        plan = resolve_changes(store, settings, context, touched, pending.former_profiles)
        store.apply(plan, pending.batches, store.key_rows(touched))
    return outcome(plan)
