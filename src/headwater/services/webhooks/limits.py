"""Limits on deliveries: body size, and a rate per connection.

The rate limit is a token bucket per connection id, kept in this process (each
serving process enforces it on what it receives), one for verified deliveries and one
for refused ones: a delivery is verified first (the connection's endpoint looked up,
a decryption and an HMAC), then charged to the bucket of its kind.  So a flood of forged
deliveries (anyone who knows a receiver URL can send them) uses up only the refusals'
bucket and gets 429s, while Stripe's own deliveries go on.  The look-up (two key reads
in the store) is kept about a second in this process (`lookup`), so such a flood reads
the store about once a second per connection id, not twice per delivery; what it costs
per delivery is a decryption and an HMAC, in this process only.  Before, one bucket was
charged before the check, and the flood got Stripe's deliveries refused (429) too.  A
refused delivery costs Stripe nothing but a retry later, and loses nothing: the Events
API stays the truth.  Ids that are not connections have buckets of their id too, so
probing many ids is limited per id and never reveals which exist (the answer is the
same 400 or 429).  Each limiter keeps at most `MAX_BUCKETS` buckets of connections (ids
with a stored secret, as the look-up says) and, apart, at most `MAX_BUCKETS` of other
ids, in each the least recently used forgotten (and a forgotten bucket comes back
full): were they kept together, a flood to more made-up ids than the bound would push
out the bucket of a real connection being flooded too, and give it a fresh burst of
refusals again and again.  An id keeps its bucket when it becomes a connection or
stops being one.

Why per process and not a counter in the metadata store, though with N `serve`
processes behind a load balancer a connection may get N times the rate: a shared
counter would give every request a write in the store that all processes share,
turning a flood at one process into load on all of them.  What the limit protects is
each process's own capacity, and that grows with the processes: the operator who runs
N of them chose N times the capacity.  Duplicates and coalescing, which must hold
across processes, are in the store (`adapters.store.webhooks`), after the signature
check.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from headwater.services.webhooks.split_lru import SplitLRU

#: Stripe's customer events are a few kilobytes; 512 KiB leaves room for large metadata.
MAX_BODY_BYTES = 512 * 1024


@dataclass(frozen=True)
class DeliveryLimits:
    """`per_second` deliveries per connection on average, bursts up to `burst`."""

    per_second: float = 50.0
    burst: float = 400.0
    max_body_bytes: int = MAX_BODY_BYTES


#: The most buckets a limiter keeps of connections, and apart of other ids (as the
#: look-up's `MAX_LOOKUPS` and `MAX_MISSES`).
MAX_BUCKETS = 10_000


class RateLimiter:
    """Token buckets by key: at most `max_keys` of known keys (connections) and, apart,
    at most `max_unknown` of unknown ones (in each the oldest forgotten)."""

    def __init__(
        self,
        limits: DeliveryLimits,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = MAX_BUCKETS,
        max_unknown: int = MAX_BUCKETS,
    ) -> None:
        self._limits = limits
        self._clock = clock
        # (tokens, when last charged) by key, known keys apart from unknown ones.
        self._buckets: SplitLRU[str, tuple[float, float]] = SplitLRU(max_keys, max_unknown)
        self._lock = threading.Lock()

    def take(self, key: str, *, known: bool = True) -> float:
        """Take one token for `key` (`known`: it names a connection): 0.0 when allowed,
        else seconds until one is free."""
        limits = self._limits
        now = self._clock()
        with self._lock:
            tokens, then = self._buckets.get(key) or (limits.burst, now)
            tokens = min(limits.burst, tokens + (now - then) * limits.per_second)
            wait = 0.0
            if tokens >= 1.0:
                tokens -= 1.0
            else:
                wait = (1.0 - tokens) / limits.per_second
            self._buckets.put(key, (tokens, now), known=known)
        return wait


def retry_after(wait: float) -> int:
    """Whole seconds for a ``Retry-After`` header (at least 1)."""
    return max(1, math.ceil(wait))
