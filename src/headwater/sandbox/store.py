"""The customer store: pre-serialised customers in ascending ``(created, seq)`` order.

Each customer is kept only as its JSON bytes, rendered once, so a list page is a slice
of a list joined into the body.  Cursors and ``created`` filters are bisections over
the parallel array of integer sort keys (see `headwater.sandbox.pages`).

Memory is what a million customers make it matter: per customer the store holds the
JSON bytes, one 8-byte key in an `array`, one list slot, and one dict entry from the
id to those same bytes.  Nothing else is kept per customer: the sort key of a customer
found by id is recovered from the ``created`` in its JSON (plus an identity check among
the few customers created in that second), and emails are read from the JSON when the
email filter is first used.
"""

from __future__ import annotations

import math
import time
from array import array
from bisect import bisect_left
from collections.abc import Iterable, Iterator
from itertools import pairwise

import orjson

from headwater.sandbox.errors import invalid, no_such
from headwater.sandbox.pages import LATEST_CREATED, CreatedRange, make_key, window

_CREATED = b'"created":'
_EMAIL = b',"email":'
_AFTER_EMAIL = b',"invoice_prefix":'


def check_clock_time(when: float) -> None:
    """ValueError unless `when` is a Unix time the sandbox clock can show: from 1970 to
    the latest ``created`` the store can keep (`LATEST_CREATED`, in 2038)."""
    if not math.isfinite(when):
        raise ValueError(f"must be a finite number; got {when}")
    if not 0 <= when <= LATEST_CREATED:
        raise ValueError(
            f"must keep the sandbox clock between Unix times 0 and {LATEST_CREATED} "
            "(2038-01-19T03:14:07Z)"
        )


class Clock:
    """Wall time plus an offset that tests move forward."""

    def __init__(self, start: float | None = None) -> None:
        if start is not None:
            check_clock_time(start)
        self.offset = 0.0 if start is None else start - time.time()

    def now(self) -> int:
        return int(time.time() + self.offset)

    def advance(self, seconds: float) -> None:
        """Move forward by `seconds` (ValueError, and no move, when the clock cannot)."""
        if not math.isfinite(seconds):
            raise ValueError(f"must be a finite number of seconds; got {seconds}")
        if seconds < 0:
            raise ValueError("the sandbox clock only moves forward")
        check_clock_time(time.time() + self.offset + seconds)
        self.offset += seconds

    def restore(self, offset: float) -> None:
        """Set the offset saved by an earlier run (ValueError if it is not a usable one)."""
        if not math.isfinite(offset):
            raise ValueError(f"the clock offset must be a finite number; got {offset}")
        check_clock_time(time.time() + offset)
        self.offset = offset


def created_in(blob: bytes) -> int:
    """The top-level ``created`` of a stored customer's JSON.

    Every key before ``created`` (id, object, address, balance) holds a string, number,
    null or flat object of strings, and a string cannot contain an unescaped quote, so
    the first ``"created":`` is the top-level one.
    """
    start = blob.index(_CREATED) + len(_CREATED)
    return int(blob[start : blob.index(b",", start)])


def email_in(blob: bytes) -> str | None:
    """The ``email`` of a stored customer's JSON (keys are always in Stripe's order)."""
    start = blob.find(_EMAIL)
    end = blob.find(_AFTER_EMAIL, start)
    if start < 0 or end < 0:
        email: str | None = orjson.loads(blob).get("email")
        return email
    value: str | None = orjson.loads(blob[start + len(_EMAIL) : end])
    return value


class CustomerStore:
    def __init__(self) -> None:
        self._keys = array("q")
        self._blobs: list[bytes] = []
        self._by_id: dict[str, bytes] = {}
        self.deleted: dict[str, int] = {}  # id -> sort key, so old cursors keep working
        self.seq = 0
        self._emails: dict[str, list[bytes]] | None = None

    def __len__(self) -> int:
        return len(self._blobs)

    def __contains__(self, customer_id: object) -> bool:
        return customer_id in self._by_id

    def items(self) -> Iterator[tuple[int, str, bytes]]:
        """``(sort key, id, JSON)`` oldest first."""
        for key, blob in zip(self._keys, self._blobs, strict=True):
            yield key, blob[7 : blob.index(b'"', 7)].decode(), blob  # blob is {"id":"...

    def get(self, customer_id: str) -> bytes | None:
        return self._by_id.get(customer_id)

    def next_key(self, created: int) -> int:
        self.seq += 1
        return make_key(created, self.seq)

    def add(self, customer_id: str, key: int, blob: bytes) -> None:
        """Insert; O(1) when `key` is the newest (the usual case: the clock moves forward)."""
        if customer_id in self._by_id:
            raise ValueError(f"duplicate customer id {customer_id}")
        keys = self._keys
        if not keys or key > keys[-1]:
            keys.append(key)
            self._blobs.append(blob)
        else:
            pos = bisect_left(keys, key)
            keys.insert(pos, key)
            self._blobs.insert(pos, blob)
        self._by_id[customer_id] = blob
        if self._emails is not None:
            self._index(blob, key)

    def isdisjoint(self, ids: Iterable[str]) -> bool:
        """True when none of `ids` is a stored customer's."""
        return self._by_id.keys().isdisjoint(ids)

    def extend(self, ids: list[str], created: list[int], blobs: list[bytes]) -> None:
        """Append customers newer than all stored ones, in order (bulk generation).

        Each gets the next sequence number; ids must be new and `created` ascending.
        """
        if not (len(ids) == len(created) == len(blobs)):
            raise ValueError("extend: ids, created and blobs differ in length")
        first = self.seq + 1
        keys = array("q", [make_key(c, first + n) for n, c in enumerate(created)])
        ordered = all(a <= b for a, b in pairwise(created))
        if not ordered or (self._keys and keys and keys[0] <= self._keys[-1]):
            raise ValueError("extend: customers must be newer than the stored ones, in order")
        if len(set(ids)) != len(ids) or not self.isdisjoint(ids):
            raise ValueError("extend: duplicate customer ids")
        self._by_id.update(zip(ids, blobs, strict=True))
        self.seq += len(ids)
        self._keys.extend(keys)
        self._blobs.extend(blobs)
        self._emails = None  # rebuilt on the next email query

    def replace(self, customer_id: str, blob: bytes) -> None:
        old = self._by_id[customer_id]
        pos = self._position(old)
        if self._emails is not None:
            self._unindex(old)
        self._blobs[pos] = self._by_id[customer_id] = blob
        if self._emails is not None:
            self._index(blob, self._keys[pos])

    def remove(self, customer_id: str) -> bytes:
        """Delete and return the customer's last JSON."""
        blob = self._by_id.pop(customer_id)
        pos = self._position(blob)
        self.deleted[customer_id] = self._keys[pos]
        del self._keys[pos]
        del self._blobs[pos]
        if self._emails is not None:
            self._unindex(blob)
        return blob

    def _position(self, blob: bytes) -> int:
        created = created_in(blob)
        keys, blobs = self._keys, self._blobs
        pos = bisect_left(keys, make_key(created, 0))
        end = bisect_left(keys, make_key(created + 1, 0))
        while pos < end:
            if blobs[pos] is blob:
                return pos
            pos += 1
        raise LookupError("stored customer not found at its created time")

    def cursor_key(self, customer_id: str, param: str) -> int:
        blob = self._by_id.get(customer_id)
        if blob is not None:
            return self._keys[self._position(blob)]
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
            start, end, has_more = window(self._keys, span, limit, after_key, before_key)
            return self._blobs[start:end][::-1], has_more
        blobs = self._email_index().get(email, [])
        keys = [self._keys[self._position(b)] for b in blobs]
        start, end, has_more = window(keys, span, limit, after_key, before_key)
        return blobs[start:end][::-1], has_more

    def _email_index(self) -> dict[str, list[bytes]]:
        # Built on the first email query (one pass over the JSON) and maintained from
        # then on; buckets hold the stored bytes themselves, in key order.
        if self._emails is None:
            index: dict[str, list[bytes]] = {}
            for blob in self._blobs:
                email = email_in(blob)
                if email is not None:
                    index.setdefault(email, []).append(blob)
            self._emails = index
        return self._emails

    def _index(self, blob: bytes, key: int) -> None:
        assert self._emails is not None
        email = email_in(blob)
        if email is None:
            return
        bucket = self._emails.setdefault(email, [])
        keys = [self._keys[self._position(b)] for b in bucket]
        bucket.insert(bisect_left(keys, key), blob)

    def _unindex(self, blob: bytes) -> None:
        assert self._emails is not None
        email = email_in(blob)
        bucket = None if email is None else self._emails.get(email)
        if bucket:
            bucket[:] = [b for b in bucket if b is not blob]
