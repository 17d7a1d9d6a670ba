"""Stable profile ids, and the merges and splits that change them.

Given the new components and the profile each identity was in before:

1. Every former profile has one *heir*: the new component holding most of its former
   identities that still exist (ties: the component whose smallest identity key is
   smallest).  A former profile with no identity left has no heir and is removed.
2. A component that is the heir of no former profile gets a new id.  A component that
   is the heir of exactly one keeps that id; so an unchanged or growing profile keeps
   its id, and on a split the part with most of the old identities keeps it.
3. A component that is the heir of several former profiles (a merge) keeps the id of
   the largest of them by former identity count (``_identity_count`` before this
   resolution); ties: the smallest profile id.  The others are removed.
4. New ids are UUIDs (v3 layout, MD5) of the run id and the component's smallest
   identity key: the same inputs always give the same ids (a rebuild equals the
   incremental step), and two runs never mint the same id.

Logged changes: a *merge* for every component holding identities of two or more
former profiles (ids before → its id); a *split* for every former profile whose
remaining identities lie in two or more components (its id → their ids).  One event
can be both (a part of A joins B: B's component logs a merge, A logs a split).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from headwater.services.identity.records import Identity

#: Hashed before the name: ids of profiles never collide with other MD5 names.
_PREFIX = "headwater-profile"
_VARIANT = {c: "89ab"[int(c, 16) & 3] for c in "0123456789abcdef"}


def new_profile_id(run_id: str, identity: Identity) -> str:
    """The id a component gets when it inherits none (rule 4): the UUID version 3 layout
    over MD5 of the run id and the smallest identity key.  The warehouse computes the
    very same in SQL for a set-based rebuild (``sql.profile_md5``: MD5 is what
    both engines have built in)."""
    pipeline_id, source_id = identity.key
    # MD5 is a stable name hash here (as in UUIDv3), not a security measure.
    digest = hashlib.md5(
        f"{_PREFIX}\x1f{run_id}\x1f{pipeline_id}\x1f{source_id}".encode(),
        usedforsecurity=False,
    ).hexdigest()
    return (
        f"{digest[:8]}-{digest[8:12]}-3{digest[13:16]}-"
        f"{_VARIANT[digest[16]]}{digest[17:20]}-{digest[20:32]}"
    )


@dataclass(frozen=True)
class Assignment:
    """The id of each component (by position) and the merges and splits."""

    ids: list[str]
    merges: list[tuple[tuple[str, ...], str]]  # (ids before, id after)
    splits: list[tuple[str, tuple[str, ...]]]  # (id before, ids after)


def assign_ids(
    identities: Sequence[Identity],
    components: Sequence[Sequence[int]],
    former_counts: Mapping[str, int],
    run_id: str,
) -> Assignment:
    """Apply the rules above.  `components` are ordered by their smallest index."""
    parts: dict[str, dict[int, int]] = {}  # former id -> component position -> identities
    for position, members in enumerate(components):
        for i in members:
            former = identities[i].profile_id
            if former is not None:
                counts = parts.setdefault(former, {})
                counts[position] = counts.get(position, 0) + 1
    claims: dict[int, list[str]] = {}
    for former, counts in parts.items():
        heir = min(counts, key=lambda p: (-counts[p], p))
        claims.setdefault(heir, []).append(former)

    def size(former: str) -> int:
        return former_counts.get(former, sum(parts[former].values()))

    ids: list[str] = []
    merges: list[tuple[tuple[str, ...], str]] = []
    for position, members in enumerate(components):
        claimants = claims.get(position)
        if claimants:
            ids.append(min(claimants, key=lambda f: (-size(f), f)))
        else:
            ids.append(new_profile_id(run_id, identities[members[0]]))
        before = {identities[i].profile_id for i in members} - {None}
        if len(before) > 1:
            merges.append((tuple(sorted(b for b in before if b is not None)), ids[-1]))
    splits = [
        (former, tuple(sorted(ids[p] for p in counts)))
        for former, counts in sorted(parts.items())
        if len(counts) > 1
    ]
    return Assignment(ids, merges, splits)
