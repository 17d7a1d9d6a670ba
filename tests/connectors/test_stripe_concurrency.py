"""The adaptive concurrency controller against a simulated Stripe endpoint.

The simulation runs on a fake clock: a client paced by its request budget (a token
bucket with no burst, as the reader's) sends whenever the controller allows; the server
answers after a lognormal latency, and refuses with a quick 429 past its rate limit
(a one-second burst, like Stripe's) or its concurrency limit.
"""

from __future__ import annotations

import heapq
import math
import random
from dataclasses import dataclass, field

import pytest

from headwater.adapters.connectors.stripe.concurrency import (
    ConcurrencyController,
    ConcurrencySettings,
    Flight,
    Outcome,
)

Z99 = 2.3263478740408408  # the 99th percentile of the standard normal


@dataclass
class Server:
    """A Stripe endpoint: latency with the given median and p99, and its limits.

    With `knee`, the server queues past `knee` requests in flight: latency grows in
    proportion to the excess, so more concurrency no longer brings more throughput.
    """

    median: float
    p99: float
    rate: float = 0.0  # requests/s, 0 = unlimited
    concurrency: int = 0  # requests in flight, 0 = unlimited
    knee: int = 0
    refusal_seconds: float = 0.02
    #: Whether a 429 names its limiter (Stripe's ``Stripe-Rate-Limited-Reason``).
    names_refusals: bool = True

    def mean_latency(self) -> float:
        sigma = math.log(self.p99 / self.median) / Z99
        return self.median * math.exp(sigma * sigma / 2)


@dataclass
class Result:
    answered: int = 0
    rate_limited: int = 0
    peak_in_flight: int = 0
    peak_limit: int = 0
    latencies: list[float] = field(default_factory=list)


class Simulation:
    """A client, the controller and a server on one fake clock."""

    def __init__(self, settings: ConcurrencySettings, server: Server, seed: int = 1) -> None:
        self.now = 0.0
        self.server = server
        self.budget = settings.budget
        self.controller = ConcurrencyController(settings, lambda: self.now)
        self.rng = random.Random(seed)
        self.sigma = math.log(server.p99 / server.median) / Z99
        self.client_tokens = 1.0
        self.server_tokens = server.rate
        self.server_in_flight = 0
        self.stamp = 0.0
        self.pending: list[tuple[float, int, Flight, Outcome, bool]] = []
        self.sequence = 0
        self.result_sent = 0  # requests sent since the start

    def run(self, until: float, measure_from: float) -> Result:
        result = Result()
        while self.now < until:
            self._send(result)
            due = self.pending[0][0] if self.pending else math.inf
            if self.controller.may_start():
                due = min(due, self.now + (1.0 - self.client_tokens) / self.budget)
            self._refill(max(due, self.now + 1e-9))
            while self.pending and self.pending[0][0] <= self.now:
                _, _, flight, outcome, held = heapq.heappop(self.pending)
                self.server_in_flight -= held
                self.controller.finished(flight, outcome)
                if flight.started_at >= measure_from:
                    if outcome is Outcome.ANSWERED:
                        result.answered += 1
                        result.latencies.append(self.now - flight.started_at)
                    else:
                        result.rate_limited += 1
            result.peak_limit = max(result.peak_limit, self.controller.limit)
        return result

    def _refill(self, now: float) -> None:
        elapsed = now - self.stamp
        self.client_tokens = min(1.0, self.client_tokens + elapsed * self.budget)
        if self.server.rate:
            self.server_tokens = min(
                self.server.rate, self.server_tokens + elapsed * self.server.rate
            )
        self.now = self.stamp = now

    def _send(self, result: Result) -> None:
        while self.controller.may_start() and self.client_tokens >= 1.0 - 1e-9:
            self.client_tokens -= 1.0
            self.result_sent += 1
            flight = self.controller.started()
            result.peak_in_flight = max(result.peak_in_flight, self.controller.in_flight)
            s = self.server
            over_rate = s.rate > 0 and self.server_tokens < 1.0
            over_concurrency = s.concurrency > 0 and self.server_in_flight >= s.concurrency
            if over_rate or over_concurrency:
                named = s.names_refusals and not over_rate
                refused = Outcome.CONCURRENCY_LIMITED if named else Outcome.RATE_LIMITED
                self._answer(self.now + s.refusal_seconds, flight, refused, False)
                continue
            self.server_tokens -= 1.0 if s.rate else 0.0
            self.server_in_flight += 1
            latency = self.rng.lognormvariate(math.log(s.median), self.sigma)
            if s.knee and self.server_in_flight > s.knee:
                latency *= self.server_in_flight / s.knee
            self._answer(self.now + latency, flight, Outcome.ANSWERED, True)

    def _answer(self, when: float, flight: Flight, outcome: Outcome, held: bool) -> None:
        self.sequence += 1
        heapq.heappush(self.pending, (when, self.sequence, flight, outcome, held))


def _throughput(result: Result, seconds: float) -> float:
    return result.answered / seconds


@pytest.mark.parametrize(("median", "cap"), [(0.1, 20), (0.3, 20), (1.0, 40)])
def test_converges_to_the_budget(median: float, cap: int) -> None:
    """At 100 ms, 300 ms and 1 s median (p99 three times it), the budget is kept full.

    At 1 s the mean latency is 1.12 s, so Little's law needs 28 in flight for 25/s:
    more than the default cap of 20 (see the next test); this one raises the cap.
    """
    settings = ConcurrencySettings(budget=25.0, cap=cap)
    server = Server(median=median, p99=3 * median, rate=25.0)
    result = Simulation(settings, server).run(until=330.0, measure_from=30.0)
    assert _throughput(result, 300.0) >= 0.92 * 25.0
    assert result.rate_limited <= 0.02 * (result.answered + result.rate_limited)
    assert result.peak_in_flight <= cap


def test_the_cap_binds_at_one_second_latency() -> None:
    settings = ConcurrencySettings(budget=25.0)  # cap 20
    server = Server(median=1.0, p99=3.0, rate=25.0)
    result = Simulation(settings, server).run(until=330.0, measure_from=30.0)
    allowed = 20 / server.mean_latency()  # 17.9/s: what 20 in flight can carry
    assert _throughput(result, 300.0) >= 0.92 * allowed
    assert result.peak_in_flight == 20
    assert result.peak_limit == 20


@pytest.mark.parametrize("limit", [6, 10])
def test_finds_the_servers_concurrency_limit_with_few_429s(limit: int) -> None:
    """A server that allows `limit` in flight (Stripe's is unpublished) at 300 ms."""
    settings = ConcurrencySettings(budget=25.0)
    server = Server(median=0.3, p99=0.9, rate=25.0, concurrency=limit)
    result = Simulation(settings, server).run(until=330.0, measure_from=30.0)
    allowed = min(25.0, limit / server.mean_latency())
    assert _throughput(result, 300.0) >= 0.9 * allowed
    assert result.rate_limited >= 1  # it did probe, and found the limit
    assert result.rate_limited <= 0.02 * (result.answered + result.rate_limited)


def _import_share(server: Server, seeds: range) -> float:
    """The mean share of the budget (25/s) answered in a 40,000-customer import's 17 s
    from a cold start, over `seeds`."""
    shares = []
    for seed in seeds:
        simulation = Simulation(ConcurrencySettings(budget=25.0), server, seed)
        shares.append(simulation.run(until=17.0, measure_from=0.0).answered / (17.0 * 25.0))
    return sum(shares) / len(shares)


def test_a_refusal_named_a_concurrency_limit_costs_less_of_an_import() -> None:
    """At 300 ms against a concurrency limit of 10 (issue 16's scenario), the first
    refusal halved the limit: a round trip or two at half the budget as every read
    began (0.924 of the budget, unnamed refusals).  Named by Stripe as the concurrency
    limiter's, it only takes the limit to the level below the refused one."""
    named = Server(median=0.3, p99=0.9, rate=25.0, concurrency=10)
    unnamed = Server(median=0.3, p99=0.9, rate=25.0, concurrency=10, names_refusals=False)
    with_names = _import_share(named, range(20))
    assert with_names >= 0.93
    assert with_names >= _import_share(unnamed, range(20)) + 0.008


def test_backs_off_from_a_queueing_server() -> None:
    """Past its knee the server only queues: concurrency stays near the knee, not the cap."""
    settings = ConcurrencySettings(budget=200.0, cap=60)
    server = Server(median=0.1, p99=0.3, knee=8)
    result = Simulation(settings, server).run(until=130.0, measure_from=30.0)
    base = server.mean_latency()
    assert _throughput(result, 100.0) >= 0.8 * 8 / base  # what the knee carries
    assert sum(result.latencies) / len(result.latencies) <= 2.5 * base
    unbounded = Simulation(ConcurrencySettings(budget=200.0, cap=60, latency_growth=1e9), server)
    queued = unbounded.run(until=130.0, measure_from=30.0)
    assert sum(queued.latencies) / len(queued.latencies) >= 4 * base  # without the signal


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _answer(controller: ConcurrencyController, clock: FakeClock, latency: float) -> None:
    flight = controller.started()
    clock.now += latency
    controller.finished(flight, Outcome.ANSWERED)


def test_429_cuts_the_limit_once_per_round_trip_and_sets_a_ceiling() -> None:
    clock = FakeClock()
    controller = ConcurrencyController(ConcurrencySettings(budget=100.0, cap=30), clock)
    for _ in range(200):
        _answer(controller, clock, 0.2)
    assert controller.limit == 30  # 100/s x 0.2 s = 20, plus the margin, capped
    flights = [controller.started() for _ in range(14)]
    clock.now += 0.02
    controller.finished(flights[-1], Outcome.RATE_LIMITED)  # refused at 14 in flight
    assert controller.limit == 7  # min(30, 14) x 0.5
    controller.finished(flights[-2], Outcome.RATE_LIMITED)  # same round trip: no new cut
    assert controller.limit == 7
    for flight in flights[:-2]:
        controller.finished(flight, Outcome.FAILED)  # no signal either way
    assert controller.limit == 7
    for _ in range(20):
        _answer(controller, clock, 0.2)
    assert controller.limit == 12  # recovered quickly to the ceiling (13 - 1), not past it
    clock.now += 10.0  # probe_after: the ceiling expires
    for _ in range(40):
        _answer(controller, clock, 0.2)
    assert 13 <= controller.limit <= 16  # probing above it, one per round trip


def test_a_refused_probe_returns_to_the_ceiling_without_halving() -> None:
    """The limit found (13 in flight refused: ceiling 12), a probe above it 10 s later
    that is refused again returns the limit to the level below it, not to half."""
    clock = FakeClock()
    controller = ConcurrencyController(ConcurrencySettings(budget=100.0, cap=30), clock)
    for _ in range(200):
        _answer(controller, clock, 0.2)
    flights = [controller.started() for _ in range(13)]
    controller.finished(flights[-1], Outcome.RATE_LIMITED)
    for flight in flights[:-1]:
        controller.finished(flight, Outcome.ANSWERED)
    for _ in range(20):
        _answer(controller, clock, 0.2)
    assert controller.limit == 12
    clock.now += 10.0
    while controller.limit < 14:  # probing: 13 answered, then 14 in flight
        flights = [controller.started() for _ in range(controller.limit)]
        clock.now += 0.2
        for flight in flights:
            controller.finished(flight, Outcome.ANSWERED)
    flights = [controller.started() for _ in range(14)]
    controller.finished(flights[-1], Outcome.RATE_LIMITED)  # refused at 14
    assert controller.limit == 13  # not 7
    for flight in flights[:-1]:
        controller.finished(flight, Outcome.ANSWERED)
    # Refused below the ceiling (the limit fell): halving, as for the first refusal.
    clock.now += 0.2
    flights = [controller.started() for _ in range(10)]
    controller.finished(flights[-1], Outcome.RATE_LIMITED)
    assert controller.limit <= 5


def test_a_named_concurrency_refusal_takes_the_limit_below_it_without_halving() -> None:
    """Stripe says which limiter refused: a concurrency limiter's first 429 sets the
    limit and the ceiling to the level below the refused one; refused again below that
    (other clients of the key, a lower limit) it halves, as any rate refusal does."""
    clock = FakeClock()
    controller = ConcurrencyController(ConcurrencySettings(budget=100.0, cap=30), clock)
    for _ in range(200):
        _answer(controller, clock, 0.2)
    flights = [controller.started() for _ in range(14)]
    controller.finished(flights[-1], Outcome.CONCURRENCY_LIMITED)  # refused at 14
    assert (controller.limit, controller.ceiling) == (13, 13)  # a rate 429: 7
    for flight in flights[:-1]:
        controller.finished(flight, Outcome.ANSWERED)  # sent before: no new cut
    assert controller.limit == 13
    clock.now += 0.2
    flights = [controller.started() for _ in range(11)]
    controller.finished(flights[-1], Outcome.CONCURRENCY_LIMITED)  # refused at 11 < 13
    assert controller.limit == 5  # min(13, 11) x 0.5
    assert controller.ceiling == 10


def test_latency_growth_cuts_then_a_new_normal_is_accepted() -> None:
    clock = FakeClock()
    controller = ConcurrencyController(ConcurrencySettings(budget=25.0), clock)
    for _ in range(200):
        _answer(controller, clock, 0.1)
    steady = controller.limit
    assert steady == math.ceil(2.5 + 2 * math.sqrt(2.5) + 1)
    for _ in range(6):
        _answer(controller, clock, 0.5)
    assert controller.limit < steady  # recent latency > 2 x baseline: cut
    for _ in range(400):
        _answer(controller, clock, 0.5)
    need = 25 * 0.5
    assert controller.limit == min(20, math.ceil(need + 2 * math.sqrt(need) + 1))


def test_limit_never_exceeds_the_cap_or_falls_below_one() -> None:
    clock = FakeClock()
    settings = ConcurrencySettings(budget=1000.0, cap=5, initial=1)
    controller = ConcurrencyController(settings, clock)
    for _ in range(100):
        _answer(controller, clock, 1.0)
    assert controller.limit == 5
    for _ in range(50):
        flight = controller.started()
        clock.now += 10.0
        controller.finished(flight, Outcome.RATE_LIMITED)
    assert controller.limit == 1
    assert controller.may_start()


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="budget"):
        ConcurrencySettings(budget=0)
    with pytest.raises(ValueError, match="initial"):
        ConcurrencySettings(budget=10, cap=4, initial=5)
    with pytest.raises(ValueError, match="backoff"):
        ConcurrencySettings(budget=10, backoff=1.0)
    with pytest.raises(ValueError, match="latency_growth"):
        ConcurrencySettings(budget=10, latency_growth=1.0)


def test_the_first_answer_sets_the_limit_to_littles_law_at_once() -> None:
    """No slow start from a guess: one latency known, the budget's need is known."""
    clock = FakeClock()
    settings = ConcurrencySettings(budget=25.0, cap=40, initial=8)
    controller = ConcurrencyController(settings, clock)
    _answer(controller, clock, 1.0)
    assert controller.limit == math.ceil(25 + 2 * math.sqrt(25) + 1)  # 36
    fast = ConcurrencyController(settings, clock)
    _answer(fast, clock, 0.1)  # 7 needed: the initial 8 stays
    assert fast.limit == 8


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_budget_is_full_from_the_first_round_trip_at_one_second(seed: int) -> None:
    """A read sends one request first (its first page plans the windows); from its answer
    on, at a 1 s median, the budget is spent in full (slow start from there sent a
    third of it in the next seconds)."""
    settings = ConcurrencySettings(budget=25.0, cap=40, initial=1)
    simulation = Simulation(settings, Server(median=1.0, p99=3.0, rate=25.0), seed)
    result = simulation.run(until=5.0, measure_from=0.0)
    first_answer = result.latencies[0]  # sent at 0
    assert simulation.result_sent >= 0.9 * 25 * (5.0 - first_answer)


@pytest.mark.parametrize(("latency", "cap", "limit"), [(0.3, 20, 14), (1.0, 32, 32)])
def test_an_answer_received_elsewhere_sets_the_limit_like_a_first_answer_here(
    latency: float, cap: int, limit: int
) -> None:
    """The reading process starts from the run's first page: its latency is known before
    the process sends anything, and the first windows are planned for that limit."""
    clock = FakeClock()
    controller = ConcurrencyController(ConcurrencySettings(budget=25.0, cap=cap, initial=8), clock)
    controller.answered_elsewhere(latency)
    assert controller.in_flight == 0
    assert controller.mean_latency == pytest.approx(latency)
    assert controller.limit == controller.target() == limit  # 25/s x latency, the margin
