"""The linking rules (DESIGN §10) and the fixed order in which links are considered.

Two identities are *linked* when

- rank 0: they come from the same connection with the same source id (two pipelines
  reading one Stripe customer), or
- rank k (k = 1, 2, ...): identifier k is the first identifier, in order, that both
  have (a non-null normalised key), and their keys are equal.  When the first
  identifier both have differs, they are not linked and lower identifiers are not
  consulted.

So at rank k a pair is *eligible* only if, for every identifier j < k, at most one of
the two has it.  `present_mask` encodes which earlier identifiers an identity has;
two identities are eligible at rank k when their masks share no bit.

Links are considered in a fixed order (the guard in `components` depends on it):
by rank, then by the shared value (the ``(connection, source id)`` pair at rank 0,
the normalised key at rank k), then by the pair's identity keys (the smaller key,
then the larger).  `link_groups` yields the links grouped that way: each group is
every identity sharing one value at one rank, sorted by identity key.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator, Sequence
from typing import NamedTuple

from headwater.services.identity.normalise import Key
from headwater.services.identity.records import Identity

#: Normalised identifier keys of one identity, in identifier order.
Keys = tuple[Key | None, ...]


class LinkGroup(NamedTuple):
    """Identities sharing one value at one rank (0 = source id, k = identifier k)."""

    rank: int
    value: Hashable
    members: list[int]  # indices into the identities, ascending (= identity key order)


def link_rank(a: Identity, a_keys: Keys, b: Identity, b_keys: Keys) -> int | None:
    """The rank of the link between two identities, or ``None`` if they are not linked.

    The lowest applicable rank: a same-source link (0) comes before identifiers.
    """
    if a.connection_id == b.connection_id and a.key.source_id == b.key.source_id:
        return 0
    for rank, (x, y) in enumerate(zip(a_keys, b_keys, strict=True), start=1):
        if x is not None and y is not None:
            return rank if x == y else None
    return None


def present_mask(keys: Keys, rank: int) -> int:
    """Bit j-1 set for each identifier j < `rank` that the identity has."""
    mask = 0
    for j in range(rank - 1):
        if keys[j] is not None:
            mask |= 1 << j
    return mask


def link_groups(identities: Sequence[Identity], keys: Sequence[Keys]) -> Iterator[LinkGroup]:
    """Every group of two or more identities sharing a value, in the fixed order.

    `identities` must be sorted by key; member lists then come out ascending.
    """
    by_source: dict[tuple[str, str], list[int]] = {}
    for i, identity in enumerate(identities):
        by_source.setdefault((identity.connection_id, identity.key.source_id), []).append(i)
    for source, members in sorted(by_source.items()):
        if len(members) > 1:
            yield LinkGroup(0, source, members)
    width = len(keys[0]) if keys else 0
    for rank in range(1, width + 1):
        by_value: dict[Key, list[int]] = {}
        for i, k in enumerate(keys):
            value = k[rank - 1]
            if value is not None:
                by_value.setdefault(value, []).append(i)
        for value in sorted(by_value):
            members = by_value[value]
            if len(members) > 1:
                yield LinkGroup(rank, value, members)
