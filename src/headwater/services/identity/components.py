"""Profiles as connected components of links, with the guard.

The guard: a profile never holds two different values of the first identifier.  Links
are taken in the fixed order of `links` (rank, shared value, pair of identity keys);
a link whose two ends are already in one component changes nothing, and a link that
would join two components holding *different* first-identifier values is skipped.
Every component therefore holds at most one first-identifier value, and the result
depends only on the identities, never on the order they were read or imported.

Work: one union-find over the identities given (the affected part of the graph).
Rank-1 links join identities with equal first-identifier values, so they can never
trip the guard and each group is joined as a chain.  At rank 0 and ranks ≥ 2 a group
is swept pair by pair in the fixed order, skipping pairs that are not eligible and
stopping as soon as the whole group is one component; a member walks only the
members it can be eligible with.  The one expensive shape is a large group (many
customers sharing one phone number, say) mixing identities with and without the first
identifier: it costs (with) x (without) steps.  Such a value is almost always a
placeholder that belongs in the identifier's blocked list.
"""

from __future__ import annotations

import heapq
from bisect import bisect_right
from collections.abc import Sequence
from itertools import islice

from headwater.services.identity.links import Keys, LinkGroup, link_groups, present_mask
from headwater.services.identity.normalise import Key
from headwater.services.identity.records import Identity


class GuardedUnion:
    """Union-find whose components remember their first-identifier value."""

    def __init__(self, first: Sequence[Key | None]) -> None:
        self.parent = list(range(len(first)))
        self.size = [1] * len(first)
        self.first = list(first)

    def find(self, i: int) -> int:
        parent = self.parent
        root = i
        while parent[root] != root:
            root = parent[root]
        while parent[i] != root:  # path compression
            parent[i], i = root, parent[i]
        return root

    def join(self, a: int, b: int) -> bool:
        """Join the components of `a` and `b` unless the guard forbids it.

        Returns whether the two are now one component (also when they already were).
        """
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return True
        fa, fb = self.first[ra], self.first[rb]
        if fa is not None and fb is not None and fa != fb:
            return False
        if self.size[ra] < self.size[rb]:
            ra, rb = rb, ra
        self.parent[rb] = ra
        self.size[ra] += self.size[rb]
        self.first[ra] = fa if fa is not None else fb
        return True


def partition(identities: Sequence[Identity], keys: Sequence[Keys]) -> list[list[int]]:
    """The profiles of `identities` (sorted by key) as lists of indices, ascending.

    Components come out ordered by their smallest index.
    """
    union = GuardedUnion([k[0] if k else None for k in keys])
    for group in link_groups(identities, keys):
        if group.rank == 1:
            first = group.members[0]
            for other in group.members[1:]:
                union.join(first, other)
        else:
            _sweep(group, keys, union)
    components: dict[int, list[int]] = {}
    for i in range(len(identities)):
        components.setdefault(union.find(i), []).append(i)
    return sorted(components.values(), key=lambda c: c[0])


def _sweep(group: LinkGroup, keys: Sequence[Keys], union: GuardedUnion) -> None:
    """Consider the group's eligible pairs (a, b), a < b, in order, under the guard.

    Members are split into classes by which earlier identifiers they have; a member
    only walks the classes it can be eligible with, so a group of identities that all
    have the first identifier (a phone shared by many emails) costs one step each.
    """
    members = group.members
    if group.rank == 0:
        masks = [0] * len(members)
    else:
        masks = [present_mask(keys[m], group.rank) for m in members]
    classes: dict[int, list[int]] = {}
    for position, mask in enumerate(masks):
        classes.setdefault(mask, []).append(position)
    roots = len({union.find(m) for m in members})
    for i, a in enumerate(members):
        tails = [
            islice(positions, bisect_right(positions, i), None)
            for mask, positions in classes.items()
            if not mask & masks[i]  # both having an earlier identifier: that one decided
        ]
        for j in tails[0] if len(tails) == 1 else heapq.merge(*tails):
            b = members[j]
            if union.find(a) == union.find(b):
                continue
            if union.join(a, b):
                roots -= 1
                if roots == 1:
                    return
