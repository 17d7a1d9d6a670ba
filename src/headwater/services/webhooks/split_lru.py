"""Two least-recently-used maps of bounded size, a key in at most one of them.

The receiver keeps what it learns per connection id (the endpoint's look-up, a rate
limit's bucket) for ids that name a connection and for ids that do not, each part with
its own bound: a flood of made-up ids then forgets only made-up ids, never a real
connection's entry (`lookup`, `limits`).  Not thread-safe: callers hold their lock.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class SplitLRU(Generic[K, V]):
    """Entries of known keys (at most `max_known`) and of unknown ones (`max_unknown`)."""

    def __init__(self, max_known: int, max_unknown: int) -> None:
        self._parts: dict[bool, OrderedDict[K, V]] = {True: OrderedDict(), False: OrderedDict()}
        self._bounds = {True: max_known, False: max_unknown}

    def get(self, key: K) -> V | None:
        """The entry of `key` in either part, made the most recently used of its part."""
        for part in self._parts.values():
            entry = part.get(key)
            if entry is not None:
                part.move_to_end(key)
                return entry
        return None

    def put(self, key: K, value: V, *, known: bool) -> None:
        """Keep `value` in the part `known` says (out of the other), the oldest of that
        part forgotten past its bound."""
        self._parts[not known].pop(key, None)
        into = self._parts[known]
        into[key] = value
        into.move_to_end(key)
        while len(into) > self._bounds[known]:
            into.popitem(last=False)

    def pop(self, key: K) -> V | None:
        """Forget `key`; its entry, if it had one."""
        found = self._parts[True].pop(key, None)
        other = self._parts[False].pop(key, None)
        return found if found is not None else other
