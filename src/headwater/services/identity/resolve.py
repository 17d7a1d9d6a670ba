"""The two entry points: resolve after a run (incremental) and rebuild (everything).

Incremental resolution works on a *closed neighbourhood*: every identity whose profile
could change.  It starts from the identities a run touched (written, updated, deleted)
and every identity of the profiles they were in, then follows links outwards: it asks
the store for the identities sharing a normalised identifier value or a (connection,
source id) with the frontier (one set-based query per round), keeps those actually
linked to the frontier by the rules, and repeats until nothing new is linked.  The
result is a union of whole connected components of the link graph, so partitioning
it alone gives exactly what partitioning the whole warehouse would; every former
profile met lies wholly inside it (its identities were joined by links that either
still exist or run through a touched identity, whose profile is a seed).  Its cost
follows the size of those components, not the size of the warehouse.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import replace

from headwater.services.identity.components import partition
from headwater.services.identity.ids import assign_ids
from headwater.services.identity.links import Keys, present_mask
from headwater.services.identity.normalise import Key, identifier_keys
from headwater.services.identity.records import (
    ChangeKind,
    Context,
    Identity,
    IdentityKey,
    ProfileChange,
    ProfilePlan,
    ProfileRow,
)
from headwater.services.identity.settings import IdentitySettings
from headwater.services.identity.store import IdentityStore, Probe
from headwater.services.identity.values import pipeline_ranks, profile_values


def resolve_changes(
    store: IdentityStore,
    settings: IdentitySettings,
    context: Context,
    touched: Collection[IdentityKey],
    former_profiles: Collection[str] = (),
) -> ProfilePlan:
    """The profile writes after a run touched `touched` identities.

    `former_profiles` are the profile ids of touched identities that no longer exist
    (the warehouse returns them when it deletes), so their profiles are revisited.
    """
    scope = neighbourhood(store, settings, touched, former_profiles)
    formers = set(former_profiles) | {i.profile_id for i in scope if i.profile_id is not None}
    return plan_profiles(scope, store.profiles(formers), formers, settings, context)


def rebuild(store: IdentityStore, settings: IdentitySettings, context: Context) -> ProfilePlan:
    """The profile writes that make every profile right, from all identities."""
    rows = {row.id: row for row in store.all_profiles()}
    scope = list(store.all_identities())
    formers = set(rows) | {i.profile_id for i in scope if i.profile_id is not None}
    return plan_profiles(scope, rows, formers, settings, context)


def neighbourhood(
    store: IdentityStore,
    settings: IdentitySettings,
    touched: Collection[IdentityKey],
    former_profiles: Collection[str] = (),
) -> list[Identity]:
    """The closed neighbourhood of the touched identities (see the module docstring)."""
    found = {i.key: i for i in store.with_members(touched, former_profiles)}
    keys = {k: identifier_keys(i.values, settings) for k, i in found.items()}
    frontier = list(found.values())
    gone = set(touched).difference(found)  # deleted: never found again
    while frontier:
        # The store may leave out what is held already (on DuckDB it then reads the
        # wide rows of the others only; the frontier finds itself in every round).
        probe = _probe(frontier, keys, settings)
        candidates = [c for c in store.sharing(probe, gone.union(found)) if c.key not in found]
        for c in candidates:
            keys[c.key] = identifier_keys(c.values, settings)
        frontier = _linked_to(frontier, candidates, keys)
        found.update((i.key, i) for i in frontier)
    return list(found.values())


def _probe(
    frontier: Sequence[Identity], keys: Mapping[IdentityKey, Keys], settings: IdentitySettings
) -> Probe:
    values: list[set[Key]] = [set() for _ in settings.identifiers]
    for identity in frontier:
        for position, key in enumerate(keys[identity.key]):
            if key is not None:
                values[position].add(key)
    return Probe(
        {i.path: frozenset(v) for i, v in zip(settings.identifiers, values, strict=True) if v},
        frozenset((i.connection_id, i.key.source_id) for i in frontier),
    )


def _linked_to(
    frontier: Sequence[Identity], candidates: Sequence[Identity], keys: Mapping[IdentityKey, Keys]
) -> list[Identity]:
    """The candidates that the rules link to at least one frontier identity."""
    sources = {(i.connection_id, i.key.source_id) for i in frontier}
    masks: dict[tuple[int, Key], set[int]] = {}  # (rank, key) -> earlier-identifier masks
    for identity in frontier:
        own = keys[identity.key]
        for rank, key in enumerate(own, start=1):
            if key is not None:
                masks.setdefault((rank, key), set()).add(present_mask(own, rank))
    linked = []
    for c in candidates:
        own = keys[c.key]
        if (c.connection_id, c.key.source_id) in sources or any(
            any(m & present_mask(own, rank) == 0 for m in masks.get((rank, key), ()))
            for rank, key in enumerate(own, start=1)
            if key is not None
        ):
            linked.append(c)
    return linked


def plan_profiles(
    scope: Iterable[Identity],
    rows: Mapping[str, ProfileRow],
    formers: Collection[str],
    settings: IdentitySettings,
    context: Context,
) -> ProfilePlan:
    """Partition `scope` (closed), give ids, compute values, and diff with `rows`.

    `formers` are every profile id the scope's identities were in, plus profiles that
    lost all their identities; those not kept are removed.  An id that names no row of
    `rows` (a write's provisional id, ``sql.identity_upsert``) is no former profile: it
    is neither inherited nor logged, though an identity already holding the id its
    profile gets is not moved.
    """
    identities = sorted(scope, key=lambda i: i.key)
    keys = [identifier_keys(i.values, settings) for i in identities]
    components = partition(identities, keys)
    counts = {p: row.identity_count for p, row in rows.items()}
    formerly = [
        i if i.profile_id is None or i.profile_id in rows else replace(i, profile_id=None)
        for i in identities
    ]
    assignment = assign_ids(formerly, components, counts, context.run_id)
    ranks = pipeline_ranks(context.pipeline_order)
    upserts: list[ProfileRow] = []
    memberships: dict[IdentityKey, str] = {}
    for profile_id, component in zip(assignment.ids, components, strict=True):
        members = [identities[i] for i in component]
        values = profile_values(members, ranks)
        old = rows.get(profile_id)
        if old is None or old.identity_count != len(members) or old.values != values:
            upserts.append(ProfileRow(profile_id, context.at, len(members), values))
        for member in members:
            if member.profile_id != profile_id:
                memberships[member.key] = profile_id
    kept = set(assignment.ids)
    changes = [
        ProfileChange(ChangeKind.MERGE, before, (after,), context.run_id, context.at)
        for before, after in assignment.merges
    ] + [
        ProfileChange(ChangeKind.SPLIT, (before,), after, context.run_id, context.at)
        for before, after in assignment.splits
    ]
    return ProfilePlan(
        upserts=tuple(upserts),
        removed=tuple(sorted(p for p in formers if p not in kept and p in rows)),
        memberships=memberships,
        changes=tuple(changes),
        considered=len(identities),
    )
