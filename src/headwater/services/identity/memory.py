"""`MemoryIdentityStore`: the `IdentityStore` contract held in Python dictionaries.

A complete implementation (the tests' warehouse, and the yardstick of the bench), with
indexes on the normalised keys like the ones the warehouse keeps.  `put` and `delete`
play the warehouse write path: they keep an identity's former profile id, so that
resolution can tell where it was.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Iterable, Iterator

from headwater.services.identity.normalise import Key, identifier_keys
from headwater.services.identity.records import (
    Identity,
    IdentityKey,
    ProfileChange,
    ProfilePlan,
    ProfileRow,
)
from headwater.services.identity.settings import IdentitySettings
from headwater.services.identity.store import Probe


class MemoryIdentityStore:
    def __init__(self, settings: IdentitySettings) -> None:
        self.settings = settings
        self.rows: dict[IdentityKey, Identity] = {}
        self.profile_rows: dict[str, ProfileRow] = {}
        self.changes: list[ProfileChange] = []
        self._by_key: dict[tuple[str, Key], set[IdentityKey]] = {}
        self._by_source: dict[tuple[str, str], set[IdentityKey]] = {}
        self._by_profile: dict[str, set[IdentityKey]] = {}

    # -- the write path (what a run does before resolution) ---------------------------

    def put(self, identity: Identity) -> str | None:
        """Insert or overwrite an identity, keeping its profile id; returns that id."""
        old = self.rows.get(identity.key)
        former = old.profile_id if old is not None else None
        if old is not None:
            self._unindex(old)
        row = dataclasses.replace(identity, profile_id=former)
        self.rows[row.key] = row
        self._index(row)
        return former

    def load(self, identity: Identity, profile: ProfileRow | None = None) -> None:
        """Store an identity exactly as given, profile id included (restoring a state)."""
        old = self.rows.get(identity.key)
        if old is not None:
            self._unindex(old)
        self.rows[identity.key] = identity
        self._index(identity)
        if profile is not None:
            self.profile_rows[profile.id] = profile

    def delete(self, key: IdentityKey) -> str | None:
        """Remove an identity; returns the profile id it was in (its profile stays
        until resolution, as in the warehouse)."""
        old = self.rows.pop(key, None)
        if old is None:
            return None
        self._unindex(old)
        return old.profile_id

    # -- IdentityStore --------------------------------------------------------------

    def identities(self, keys: Collection[IdentityKey]) -> list[Identity]:
        return [self.rows[k] for k in set(keys) if k in self.rows]

    def sharing(self, probe: Probe, known: Collection[IdentityKey] = ()) -> list[Identity]:
        found: set[IdentityKey] = set()
        for path, values in probe.keys.items():
            for value in values:
                found.update(self._by_key.get((path, value), ()))
        for source in probe.sources:
            found.update(self._by_source.get(source, ()))
        return [self.rows[k] for k in found.difference(known)]

    def members(self, profile_ids: Collection[str]) -> list[Identity]:
        found: set[IdentityKey] = set()
        for profile_id in profile_ids:
            found.update(self._by_profile.get(profile_id, ()))
        return [self.rows[k] for k in found]

    def with_members(
        self, keys: Collection[IdentityKey], former_profiles: Collection[str]
    ) -> list[Identity]:
        seeds = self.identities(keys)
        profiles = set(former_profiles) | {s.profile_id for s in seeds if s.profile_id is not None}
        found = {s.key: s for s in seeds}
        for member in self.members(profiles):
            found.setdefault(member.key, member)
        return list(found.values())

    def profiles(self, profile_ids: Collection[str]) -> dict[str, ProfileRow]:
        rows = self.profile_rows
        return {p: rows[p] for p in profile_ids if p in rows}

    def all_identities(self) -> Iterator[Identity]:
        return iter(list(self.rows.values()))

    def all_profiles(self) -> Iterable[ProfileRow]:
        return list(self.profile_rows.values())

    def apply(self, plan: ProfilePlan) -> None:
        for profile_id in plan.removed:
            self.profile_rows.pop(profile_id, None)
        for row in plan.upserts:
            self.profile_rows[row.id] = row
        for key, profile_id in plan.memberships.items():
            old = self.rows.get(key)
            if old is not None and old.profile_id != profile_id:
                self._unindex(old)
                moved = dataclasses.replace(old, profile_id=profile_id)
                self.rows[key] = moved
                self._index(moved)
        known = set(self.changes)
        self.changes.extend(c for c in plan.changes if c not in known)

    # -- indexes --------------------------------------------------------------------

    def _entries(self, row: Identity) -> Iterator[set[IdentityKey]]:
        keys = identifier_keys(row.values, self.settings)
        for identifier, key in zip(self.settings.identifiers, keys, strict=True):
            if key is not None:
                yield self._by_key.setdefault((identifier.path, key), set())
        yield self._by_source.setdefault((row.connection_id, row.key.source_id), set())
        if row.profile_id is not None:
            yield self._by_profile.setdefault(row.profile_id, set())

    def _index(self, row: Identity) -> None:
        for entry in self._entries(row):
            entry.add(row.key)

    def _unindex(self, row: Identity) -> None:
        for entry in self._entries(row):
            entry.discard(row.key)
