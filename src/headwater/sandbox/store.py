"""The customer store: pre-serialised customers in ascending ``(created, seq)`` order.

Each customer is kept as its JSON bytes, rendered once, so a list page is a slice of
a list joined into the body.  Cursors and ``created`` filters are bisections over the
parallel list of integer sort keys (see `headwater.sandbox.pages`).
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Iterator

from headwater.sandbox.errors import invalid, no_such
from headwater.sandbox.pages import CreatedRange, make_key, window


class Clock:
    """Wall time plus an offset that tests move forward."""

    def __init__(self, start: float | None = None) -> None:
        self.offset = 0.0 if start is None else start - time.time()

    def now(self) -> int:
        return int(time.time() + self.offset)

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("the sandbox clock only moves forward")
        self.offset += seconds


class Stored:
    """One customer: its id, sort key, JSON bytes and the email used by the filter."""

    __slots__ = ("blob", "email", "id", "key")

    def __init__(self, id_: str, key: int, blob: bytes, email: str | None) -> None:
        self.id = id_
        self.key = key
        self.blob = blob
        self.email = email


class CustomerStore:
    def __init__(self) -> None:
        self._keys: list[int] = []
        self._recs: list[Stored] = []
        self._by_id: dict[str, Stored] = {}
        self.deleted: dict[str, int] = {}  # id -> sort key, so old cursors keep working
        self.seq = 0
        self._emails: dict[str, list[Stored]] | None = None

    def __len__(self) -> int:
        return len(self._recs)

    def __iter__(self) -> Iterator[Stored]:
        return iter(self._recs)

    def get(self, customer_id: str) -> Stored | None:
        return self._by_id.get(customer_id)

    def next_key(self, created: int) -> int:
        self.seq += 1
        return make_key(created, self.seq)

    def add(self, rec: Stored) -> None:
        """Insert; O(1) when `rec` is the newest (the usual case: the clock moves forward)."""
        if rec.id in self._by_id:
            raise ValueError(f"duplicate customer id {rec.id}")
        if not self._keys or rec.key > self._keys[-1]:
            self._keys.append(rec.key)
            self._recs.append(rec)
        else:
            pos = bisect_left(self._keys, rec.key)
            self._keys.insert(pos, rec.key)
            self._recs.insert(pos, rec)
        self._by_id[rec.id] = rec
        if self._emails is not None and rec.email is not None:
            self._emails.setdefault(rec.email, []).append(rec)

    def replace(self, customer_id: str, blob: bytes, email: str | None) -> None:
        rec = self._by_id[customer_id]
        if self._emails is not None and rec.email != email:
            self._unindex(rec)
            if email is not None:
                bucket = self._emails.setdefault(email, [])
                bucket.insert(bisect_left([r.key for r in bucket], rec.key), rec)
        rec.blob = blob
        rec.email = email

    def remove(self, customer_id: str) -> None:
        rec = self._by_id.pop(customer_id)
        pos = bisect_left(self._keys, rec.key)
        del self._keys[pos]
        del self._recs[pos]
        self.deleted[customer_id] = rec.key
        if self._emails is not None:
            self._unindex(rec)

    def _unindex(self, rec: Stored) -> None:
        assert self._emails is not None
        bucket = self._emails.get(rec.email or "")
        if bucket and rec in bucket:
            bucket.remove(rec)

    def cursor_key(self, customer_id: str, param: str) -> int:
        rec = self._by_id.get(customer_id)
        if rec is not None:
            return rec.key
        if customer_id in self.deleted:
            return self.deleted[customer_id]
        raise no_such("customer", customer_id, param=param)

    def page(
        self,
        span: CreatedRange,
        limit: int,
        after: str | None = None,
        before: str | None = None,
        email: str | None = None,
    ) -> tuple[list[bytes], bool]:
        """The blobs of one list page, newest first, and ``has_more``."""
        if after is not None and before is not None:
            raise invalid(
                "You may only specify one of these parameters: ending_before, starting_after.",
                param="starting_after",
            )
        after_key = None if after is None else self.cursor_key(after, "starting_after")
        before_key = None if before is None else self.cursor_key(before, "ending_before")
        if email is None:
            keys, recs = self._keys, self._recs
        else:
            recs = self._email_index().get(email, [])
            keys = [r.key for r in recs]
        start, end, has_more = window(keys, span, limit, after_key, before_key)
        return [r.blob for r in reversed(recs[start:end])], has_more

    def _email_index(self) -> dict[str, list[Stored]]:
        # Built on the first email query and maintained from then on.
        if self._emails is None:
            index: dict[str, list[Stored]] = {}
            for rec in self._recs:
                if rec.email is not None:
                    index.setdefault(rec.email, []).append(rec)
            self._emails = index
        return self._emails
