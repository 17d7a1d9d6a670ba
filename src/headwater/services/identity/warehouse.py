"""`WarehouseIdentityStore`: the `IdentityStore` contract over a warehouse adapter.

The warehouse runs the set-based SQL (`adapters/warehouse/profile_store`); this module
only translates between its plain records and the values of identity resolution.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

from headwater.adapters.warehouse.contract import Warehouse
from headwater.adapters.warehouse.pending import Pending
from headwater.adapters.warehouse.profile_store import (
    ChangeRecord,
    IdentityRecord,
    ProfileRecord,
    ProfileWrite,
)
from headwater.services.identity.records import (
    ChangeKind,
    Identity,
    IdentityKey,
    ProfileChange,
    ProfilePlan,
    ProfileRow,
)
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

    def __init__(self, warehouse: Warehouse, settings: IdentitySettings) -> None:
        self._warehouse = warehouse
        # Probes name identifiers by path; the warehouse knows their columns.
        self._columns = {i.path: i.column for i in settings.identifiers}

    def identities(self, keys: Collection[IdentityKey]) -> list[Identity]:
        found = self._warehouse.identities_by_key([(k.pipeline_id, k.source_id) for k in keys])
        return [_identity(r) for r in found]

    def sharing(self, probe: Probe) -> list[Identity]:
        keys: dict[str, Collection[str | int]] = {
            self._columns[path]: values for path, values in probe.keys.items() if values
        }
        found = self._warehouse.identities_sharing(keys, probe.sources)
        return [_identity(r) for r in found]

    def members(self, profile_ids: Collection[str]) -> list[Identity]:
        return [_identity(r) for r in self._warehouse.identities_in_profiles(profile_ids)]

    def profiles(self, profile_ids: Collection[str]) -> dict[str, ProfileRow]:
        return {r.id: _row(r) for r in self._warehouse.profile_records(profile_ids)}

    def all_identities(self) -> Iterable[Identity]:
        return [_identity(r) for r in self._warehouse.all_identity_records()]

    def all_profiles(self) -> Iterable[ProfileRow]:
        return [_row(r) for r in self._warehouse.profile_records(None)]

    def pending(self) -> Pending:
        """What runs wrote or deleted since the last resolution (``pending_identities``)."""
        return self._warehouse.pending_identities()

    def apply(self, plan: ProfilePlan, resolved: Collection[str] = ()) -> None:
        """Write `plan`, removing the pending batches it `resolved`, in one transaction."""
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
            )
        )
