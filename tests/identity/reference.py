"""The rules of DESIGN §10 written plainly, by brute force, to check the real code against.

Nothing here is clever: every pair of identities is compared, links are sorted in the
documented order and applied one by one with the guard.  It shares no code with
`headwater.services.identity` beyond the value types.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from headwater.kernel.model import PropertyType
from headwater.services.identity import IdentityKey, IdentitySettings
from headwater.services.identity.records import Identity

WHITESPACE = " \t\n\r\x0b\x0c"


def _blocked(text: str, blocked: Sequence[str]) -> bool:
    for raw in blocked:
        entry = raw.strip(WHITESPACE).lower()
        if "*" not in entry:
            if text == entry:
                return True
            continue
        # A '*' matches any run of characters: check the pieces appear in order.
        pieces = entry.split("*")
        if not (text.startswith(pieces[0]) and text.endswith(pieces[-1])):
            continue
        position = len(pieces[0])
        end = len(text) - len(pieces[-1])
        for piece in pieces[1:-1]:
            found = text.find(piece, position, end)
            if found < 0:
                break
            position = found + len(piece)
        else:
            if position <= end:
                return True
    return False


def plain_key(value: Any, ptype: PropertyType, blocked: Sequence[str]) -> Any:
    """A value's comparison key by the rules, or None."""
    if ptype is PropertyType.INTEGER:
        if type(value) is not int or value in {int(b) for b in blocked}:
            return None
        return value
    if not isinstance(value, str):
        return None
    text = value.strip(WHITESPACE).lower()
    if text == "" or _blocked(text, blocked):
        return None
    return text


def plain_keys(identity: Identity, settings: IdentitySettings) -> list[Any]:
    return [
        plain_key(identity.values.get(i.column), i.type, i.blocked) for i in settings.identifiers
    ]


def links(
    identities: Sequence[Identity], settings: IdentitySettings, *, first_rank_first: bool = False
) -> list[tuple[Any, ...]]:
    """Every link as (rank, shared value, i, j), i < j, sorted in the documented order.

    With `first_rank_first`, links of the first identifier come before same-source links
    (docs/identity.md §8 relies on that order giving the same profiles).
    """
    keys = [plain_keys(x, settings) for x in identities]
    out = []
    for i in range(len(identities)):
        for j in range(i + 1, len(identities)):
            a, b = identities[i], identities[j]
            if a.connection_id == b.connection_id and a.key.source_id == b.key.source_id:
                out.append((0, (a.connection_id, a.key.source_id), i, j))
            for rank in range(len(settings.identifiers)):
                x, y = keys[i][rank], keys[j][rank]
                if x is not None and y is not None:
                    if x == y:
                        out.append((rank + 1, x, i, j))
                    break  # the first identifier both have decides
    if first_rank_first:
        return sorted(out, key=lambda link: (-1 if link[0] == 1 else link[0], *link[1:]))
    return sorted(out)


def reference_partition(
    identities: Iterable[Identity], settings: IdentitySettings, *, first_rank_first: bool = False
) -> set[frozenset[IdentityKey]]:
    """Connected components of the links, skipping a link that joins two components
    holding different first-identifier values."""
    ordered = sorted(identities, key=lambda x: x.key)
    first = [plain_keys(x, settings)[0] for x in ordered]
    group = list(range(len(ordered)))  # group[i] = label; relabel on join (slow, plain)
    for _rank, _value, i, j in links(ordered, settings, first_rank_first=first_rank_first):
        gi, gj = group[i], group[j]
        if gi == gj:
            continue
        values_i = {first[n] for n in range(len(ordered)) if group[n] == gi} - {None}
        values_j = {first[n] for n in range(len(ordered)) if group[n] == gj} - {None}
        if values_i and values_j and values_i != values_j:
            continue
        group = [gi if g == gj else g for g in group]
    out: dict[int, set[IdentityKey]] = {}
    for n, g in enumerate(group):
        out.setdefault(g, set()).add(ordered[n].key)
    return {frozenset(c) for c in out.values()}


def expected_ids(
    partition: set[frozenset[IdentityKey]],
    membership: Mapping[IdentityKey, str | None],
    counts: Mapping[str, int],
) -> dict[frozenset[IdentityKey], str | None]:
    """The id each component must have by the survival rules; None = a new id."""
    formers = {p for p in membership.values() if p is not None}
    heirs: dict[str, frozenset[IdentityKey]] = {}
    for former in formers:
        still = {k for k, p in membership.items() if p == former}
        best = sorted((c for c in partition if c & still), key=lambda c: (-len(c & still), min(c)))[
            0
        ]
        heirs[former] = best
    out: dict[frozenset[IdentityKey], str | None] = {}
    for component in partition:
        claimants = [f for f, c in heirs.items() if c == component]
        out[component] = (
            sorted(claimants, key=lambda f: (-counts.get(f, 0), f))[0] if claimants else None
        )
    return out


def expected_values(members: Sequence[Identity], pipeline_order: Sequence[str]) -> dict[str, Any]:
    """Per column the non-null value of the newest identity (ties: pipeline order,
    then key)."""

    def newest(x: Identity) -> tuple[Any, ...]:
        rank = (
            pipeline_order.index(x.key.pipeline_id)
            if x.key.pipeline_id in pipeline_order
            else len(pipeline_order)
        )
        at = x.source_updated_at
        return (at is None, -(at.timestamp() if at else 0), rank, x.key)

    out: dict[str, Any] = {}
    columns = {c for m in members for c in m.values}
    for column in columns:
        present = [m for m in sorted(members, key=newest) if m.values.get(column) is not None]
        out[column] = present[0].values[column] if present else None
    return out
