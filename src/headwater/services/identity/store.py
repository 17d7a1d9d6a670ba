"""What identity resolution needs from the warehouse: the `IdentityStore` contract."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from headwater.services.identity.normalise import Key
from headwater.services.identity.records import Identity, IdentityKey, ProfilePlan, ProfileRow


@dataclass(frozen=True)
class Probe:
    """Values to find identities by.

    `keys` are normalised identifier keys by identifier path (`normalise`'s output);
    `sources` are ``(connection id, source id)`` pairs.
    """

    keys: Mapping[str, frozenset[Key]] = field(default_factory=dict)
    sources: frozenset[tuple[str, str]] = frozenset()

    def __bool__(self) -> bool:
        return bool(self.sources) or any(self.keys.values())


class IdentityStore(Protocol):
    """The identities and profiles of one workspace, as resolution reads and writes them.

    Reads see one consistent state: the identities as the run's committed writes left
    them, each with the profile id it had *before* this resolution (``_profile_id``;
    ``None`` for one never resolved), and the profile rows as the last resolution
    wrote them.  Returned lists carry no duplicates and come in no particular order;
    keys that do not exist are left out, never an error.  The warehouse implements
    this with set-based SQL (docs/identity.md): no method may cost more than the rows
    it returns plus an index lookup per probed value.  Infrastructure failures raise
    `WarehouseError`; nothing is written then.  One resolution at a time per workspace:
    the caller holds the workspace's resolution lock from the first read to `apply`.
    """

    def identities(self, keys: Collection[IdentityKey]) -> list[Identity]:
        """The identities with these keys."""

    def sharing(self, probe: Probe, known: Collection[IdentityKey] = ()) -> list[Identity]:
        """Every identity whose normalised key of some identifier is in
        ``probe.keys[identifier]``, or whose (connection, source id) is in
        ``probe.sources``.  Blocked and empty values never match (their key is null).
        Identities whose key is in `known` (the caller holds them) may be left out."""

    def members(self, profile_ids: Collection[str]) -> list[Identity]:
        """Every identity whose current profile id is one of `profile_ids`."""

    def with_members(
        self, keys: Collection[IdentityKey], former_profiles: Collection[str]
    ) -> list[Identity]:
        """The identities with these keys, and every identity whose current profile id
        is one of theirs or one of `former_profiles` (where an incremental resolution
        starts: `identities` then `members`, in one read)."""

    def profiles(self, profile_ids: Collection[str]) -> dict[str, ProfileRow]:
        """The profile rows with these ids, by id."""

    def all_identities(self) -> Iterable[Identity]:
        """Every identity (for a full rebuild)."""

    def all_profiles(self) -> Iterable[ProfileRow]:
        """Every profile row (for a full rebuild)."""

    def apply(self, plan: ProfilePlan) -> None:
        """Write a plan in one transaction: upsert `upserts`, delete `removed`, set the
        identities' profile ids from `memberships`, append `changes` to
        ``profile_changes``.  Applying the same plan twice leaves the same state."""
