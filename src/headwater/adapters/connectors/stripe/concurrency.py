"""How many requests to keep in flight to Stripe: adaptive, toward the request budget.

A connection may send `budget` requests per second.  With one request in flight at a
time, a reader at 300 ms per page sends about 3 per second: the budget is full only when
enough requests are in flight to cover the latency.  By Little's law that is
``budget x mean latency``; this controller keeps that many in flight (plus a margin for
the latency's spread), never more than `cap`, and adapts while the run goes:

- **Start**: from `initial`; the first answer tells the latency, and the limit jumps to
  the Little's-law target it gives (no slow start from a guess: at 1 s per request,
  doubling from 8 took two round trips below the budget); then one more per answered
  request until the first sign of congestion: a 429 or latency growth.
- **Additive increase**: after that, one more per round trip (``1/limit`` per answer),
  up to the Little's-law target, the `cap`, and a ceiling learned from the last 429.
- **Multiplicative decrease on a 429**: the limit (at most the level in flight when the
  refused request was sent) is multiplied by `backoff`, and that level less one
  becomes a ceiling that the limit recovers to quickly (one more per answer) and stays
  under for `probe_after` seconds; then the limit probes above it again, one per
  round trip.  Stripe's concurrency limit is not published, so it is found this way
  and re-checked rarely: a probe costs about one 429 per `probe_after` seconds, and a
  refused probe (at or above the ceiling) only returns the limit to the level below
  it, without halving.  Nor does the first 429 that Stripe names a concurrency
  limiter's (`Outcome.CONCURRENCY_LIMITED`, from ``Stripe-Rate-Limited-Reason``): the
  level it was refused at is the news; refused again below it, the limit halves.
- **Multiplicative decrease on latency growth**: when recent latency (a short average)
  exceeds the baseline by `latency_growth` times, the server is queueing our requests:
  the limit is multiplied by `latency_backoff`, once per round trip while it lasts.
  The baseline is the lowest long-run mean latency seen, so queueing we cause cannot
  raise it.  A slower server is told apart from our own queueing by the cuts
  themselves: if halving the limit has not brought latency down by a quarter, the
  latency is not ours; it becomes the new baseline and the limit returns to where the
  cuts began.  For the same reason the Little's-law target counts latency only up to
  `latency_growth` times the baseline: more is queueing, which more requests in flight
  would only lengthen.

Decreases are judged only by answers to requests sent after the last decrease: the
others say nothing about the new limit (so there is at most one cut per round trip).
Answers that are neither a success nor a 429 (timeouts, 5xx, network errors) only free
their slot: they say nothing about concurrency.

The controller is pure logic: it is told when requests start and finish, reads time
from the injected `clock`, and keeps no threads and does no I/O.  It is not
thread-safe: its caller serialises calls (one lock, or one thread).

How the reader uses it (`flight.Gate`): one controller per connection, shared by the
reader's worker threads under one lock, with the connection's request budget
(`ratelimit.RequestBudget`) still enforcing the budget.  A worker that has a page to
fetch waits until `may_start()` (a condition variable notified after each
`finished`), then acquires a send time from the budget, calls
`started()` right before sending and `finished(flight, outcome)` when the answer (or
the error) arrives, before any retry is scheduled, so that the retry waits for a slot
like any other request.  The worker pool is sized at `cap`; `limit` decides how many of
them may have a request out.  The window planner reads `limit` to plan enough
``created`` windows for that many requests in flight.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum


class Outcome(Enum):
    """What became of a request, as far as concurrency is concerned."""

    ANSWERED = "answered"  # any answer but a 429: its latency is a sample
    RATE_LIMITED = "rate_limited"  # a 429 of a rate limiter, or of one not named
    #: A 429 of a concurrency limiter (``Stripe-Rate-Limited-Reason: global-concurrency``
    #: or ``endpoint-concurrency``): the level it was sent at is over the limit.
    CONCURRENCY_LIMITED = "concurrency_limited"
    FAILED = "failed"  # timeout, connection error, 5xx: no signal, only a freed slot


@dataclass(frozen=True)
class ConcurrencySettings:
    """The controller's parameters; only `budget` has no default.

    `budget` is requests per second (the connection's request budget); `cap` the most
    requests ever in flight; `initial` the limit before anything is known.  The cap
    binds before the budget when ``budget x mean latency`` exceeds it: at 25/s and a
    1 s median with a 3 s p99 (mean 1.12 s), 20 in flight carry 17.9/s, 0.72 of it.
    """

    budget: float
    cap: int = 20
    initial: int = 2
    backoff: float = 0.5
    latency_backoff: float = 0.8
    latency_growth: float = 2.0
    probe_after: float = 10.0

    def __post_init__(self) -> None:
        if not self.budget > 0:
            raise ValueError(f"budget must be positive, got {self.budget!r}")
        if self.cap < 1:
            raise ValueError(f"cap must be at least 1, got {self.cap!r}")
        if not 1 <= self.initial <= self.cap:
            raise ValueError(f"initial must be between 1 and cap, got {self.initial!r}")
        for name in ("backoff", "latency_backoff"):
            factor = getattr(self, name)
            if not 0 < factor < 1:
                raise ValueError(f"{name} must be between 0 and 1, got {factor!r}")
        if not self.latency_growth > 1:
            raise ValueError(f"latency_growth must exceed 1, got {self.latency_growth!r}")
        if self.probe_after < 0:
            raise ValueError(f"probe_after must be >= 0, got {self.probe_after!r}")


@dataclass(frozen=True)
class Flight:
    """A request in flight: when it was sent, and how many were in flight then (itself
    included)."""

    started_at: float
    level: int


# Smoothing of the latency averages: the weight of the newest answer (at first each
# answer weighs 1/n, so that the first averages are plain means, not the first draw).
_MEAN_WEIGHT = 0.05  # ~20 answers: the mean latency that Little's law needs
_RECENT_WEIGHT = 0.1  # ~10 answers: quick enough to see queueing start, yet not noise
_SLOW_WEIGHT = 0.01  # ~100 answers: steady enough that its minimum is not a lucky dip
_BASELINE_AFTER = 20  # answers before the slow mean is trusted as a baseline
_NOT_OURS = 0.75  # latency still at 3/4 of where it was after halving the limit


@dataclass
class _Growth:
    """A latency-growth episode: cuts are judged by answers to requests sent after them."""

    began_limit: float
    threshold: float  # latency above this is growth: the baseline x `latency_growth`
    reference: tuple[float, float] | None = None  # (limit, latency) at the first judgement
    total: float = 0.0  # latencies of answers to requests sent since the last cut
    count: int = 0


class ConcurrencyController:
    """Decides how many requests may be in flight; see the module docstring."""

    def __init__(self, settings: ConcurrencySettings, clock: Callable[[], float]) -> None:
        self.settings = settings
        self._clock = clock
        self._limit = float(settings.initial)
        self._in_flight = 0
        self._starting = True
        self._answers = 0
        self._mean = 0.0
        self._recent = 0.0
        self._slow = 0.0
        self._baseline: float | None = None
        self._growth: _Growth | None = None
        self._ceiling: float | None = None
        self._ceiling_until = -math.inf
        self._cut_at = -math.inf  # when the limit was last decreased

    @property
    def limit(self) -> int:
        """How many requests may be in flight now."""
        return max(1, min(self.settings.cap, math.floor(self._limit)))

    @property
    def in_flight(self) -> int:
        return self._in_flight

    @property
    def mean_latency(self) -> float | None:
        """The smoothed mean latency of answered requests, in seconds (None before any)."""
        return self._mean if self._answers else None

    @property
    def ceiling(self) -> int | None:
        """The level below the one at which Stripe last refused a request (429), which
        the limit re-probes now and then; None before any refusal."""
        return None if self._ceiling is None else math.floor(self._ceiling)

    @property
    def baseline(self) -> float | None:
        """The latency without queueing, in seconds (None while warming up)."""
        return self._baseline

    def may_start(self) -> bool:
        """Whether one more request may be sent now."""
        return self._in_flight < self.limit

    def target(self) -> int:
        """Little's law: the requests in flight that fill the budget at the mean latency.

        ``budget x mean`` on average, plus two standard deviations of the number in
        flight (about its square root, as for requests sent independently) and one, so
        that latency's spread rarely leaves the budget unused; never more than `cap`.
        The mean counts up to `latency_growth` times the baseline (the rest is queueing).
        """
        if not self._answers:
            return self.settings.cap
        latency = self._mean
        if self._baseline is not None:
            latency = min(latency, self._baseline * self.settings.latency_growth)
        need = self.settings.budget * latency
        return min(self.settings.cap, math.ceil(need + 2 * math.sqrt(need) + 1))

    def started(self) -> Flight:
        """A request is being sent now (whether or not `may_start` said so)."""
        self._in_flight += 1
        return Flight(self._clock(), self._in_flight)

    def answered_elsewhere(self, latency: float) -> None:
        """An answer `latency` seconds after its request, sent by another client of the
        connection (the run's first page, for its reading process): it counts as if
        sent here, alone in flight, so that the first answer sets the limit at once."""
        self._in_flight += 1
        self.finished(Flight(self._clock() - latency, 1), Outcome.ANSWERED)

    def finished(self, flight: Flight, outcome: Outcome) -> None:
        """`flight` has its answer (or its error); adapt the limit to what it says."""
        self._in_flight -= 1
        now = self._clock()
        if outcome is Outcome.RATE_LIMITED or outcome is Outcome.CONCURRENCY_LIMITED:
            self._on_rate_limited(flight, now, outcome is Outcome.CONCURRENCY_LIMITED)
        elif outcome is Outcome.ANSWERED:
            self._on_answered(flight, now)

    def _cut(self, factor: float, now: float) -> None:
        self._starting = False
        self._limit = max(1.0, self._limit * factor)
        self._cut_at = now

    def _on_rate_limited(self, flight: Flight, now: float, concurrency: bool) -> None:
        refused_at = float(max(1, flight.level - 1))
        if flight.started_at < self._cut_at:
            # Sent before the last cut: the same episode; sharpen the ceiling only.
            self._ceiling = refused_at if self._ceiling is None else min(self._ceiling, refused_at)
            return
        # A refused probe above the known ceiling: the limit goes back to the level below
        # it, without halving (halving cost a round trip or two at half the budget for
        # each probe, every `probe_after`).  So does the first refusal that Stripe says
        # its concurrency limiter made: the level it was sent at is the news, and halving
        # left the budget half used for a round trip or two at the start of every read.
        # Refused again below that level (other clients of the key, a lower limit), the
        # limit is halved.
        known = self._ceiling
        exact = (known is None and concurrency) or (known is not None and refused_at >= known)
        self._limit = min(self._limit, refused_at if exact else refused_at + 1)
        self._cut(1.0 if exact else self.settings.backoff, now)
        self._ceiling = refused_at
        self._ceiling_until = now + self.settings.probe_after

    def _on_answered(self, flight: Flight, now: float) -> None:
        latency = now - flight.started_at
        self._observe(latency)
        if flight.started_at < self._cut_at:
            return  # sent before the last cut: says nothing about the new limit
        if self._growth is not None:
            self._judge_growth(self._growth, latency, now)
            return
        baseline = self._baseline
        if baseline is not None and self._recent > baseline * self.settings.latency_growth:
            self._growth = _Growth(self._limit, baseline * self.settings.latency_growth)
            self._cut(self.settings.latency_backoff, now)
            return
        self._increase(now)

    def _increase(self, now: float) -> None:
        ceiling = self._ceiling if now < self._ceiling_until else None
        if self._starting and self._answers == 1 and ceiling is None:
            # The first latency known: as many in flight as it says the budget needs.
            self._limit = max(self._limit, float(self.target()))
            return
        if self._starting or (ceiling is not None and self._limit < ceiling):
            self._limit += 1.0
        else:
            self._limit += 1.0 / self._limit
        # More than the target would only wait on the budget; a lower target (latency
        # fell) lowers the limit with it.
        upper = float(self.target())
        if ceiling is not None:
            upper = min(upper, ceiling)
        self._limit = min(self._limit, upper)

    def _judge_growth(self, growth: _Growth, latency: float, now: float) -> None:
        """After enough answers sent since the last cut: cured, not ours, or cut again."""
        growth.total += latency
        growth.count += 1
        if growth.count < max(3, self.limit // 2):
            return
        after = growth.total / growth.count
        if after <= growth.threshold:
            self._growth = None  # fewer requests in flight made answers fast again
            self._recent = after
            return
        if growth.reference is None:
            growth.reference = (self._limit, after)
        limit, reference = growth.reference
        halved = self._limit <= max(1.0, limit / 2)
        if self._limit <= 1.0 or (halved and after >= reference * _NOT_OURS):
            # Fewer requests did not make answers faster: the server is slower, not
            # queueing ours.  Accept the new latency and undo the cuts.
            self._baseline = self._slow = self._recent = after
            self._limit = growth.began_limit
            self._growth = None
            self._cut_at = now
            return
        growth.total, growth.count = 0.0, 0
        self._cut(self.settings.latency_backoff, now)

    def _observe(self, latency: float) -> None:
        """Fold one answer's latency into the averages and the baseline."""
        self._answers += 1
        n = self._answers
        self._mean += max(_MEAN_WEIGHT, 1 / n) * (latency - self._mean)
        self._recent += max(_RECENT_WEIGHT, 1 / n) * (latency - self._recent)
        self._slow += max(_SLOW_WEIGHT, 1 / n) * (latency - self._slow)
        if n >= _BASELINE_AFTER:
            low = self._baseline
            self._baseline = self._slow if low is None else min(low, self._slow)
