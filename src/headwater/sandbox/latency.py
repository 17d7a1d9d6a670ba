"""How long the sandbox takes to answer: a constant, a distribution, a cost per object.

Stripe's list endpoints take from a few hundred milliseconds to over a second, with a
long tail and a cost that grows with the objects a page returns.  The sandbox adds, per
answered request: ``latency_ms`` (constant) + a uniform ``jitter_ms`` + a lognormal
draw with median ``latency_median_ms`` and 99th percentile ``latency_p99_ms`` +
``latency_per_object_ms`` for each object returned (a page of 100 costs 100 times it).
"""

from __future__ import annotations

import math
import random
from statistics import NormalDist

from headwater.sandbox.config import Knobs

Z99 = NormalDist().inv_cdf(0.99)  # a normal variable is below Z99 sigmas 99% of the time


def lognormal_ms(median: float, p99: float, rng: random.Random) -> float:
    """A draw with the given median and 99th percentile (the median alone if p99 <= it)."""
    if p99 <= median:
        return median
    sigma = math.log(p99 / median) / Z99
    return rng.lognormvariate(math.log(median), sigma)


class Latency:
    """Samples each request's added latency from the current knobs."""

    def __init__(self, knobs: Knobs, seed: int) -> None:
        self.knobs = knobs
        self.rng = random.Random(f"{seed}:latency")

    def seconds(self, objects: int) -> float:
        """The delay for an answer that returns `objects` objects."""
        k = self.knobs
        ms = k.latency_ms
        if k.jitter_ms:
            ms += self.rng.uniform(0, k.jitter_ms)
        if k.latency_median_ms:
            ms += lognormal_ms(k.latency_median_ms, k.latency_p99_ms, self.rng)
        if k.latency_per_object_ms:
            ms += k.latency_per_object_ms * objects
        return ms / 1000.0
