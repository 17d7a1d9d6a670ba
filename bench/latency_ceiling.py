"""The most any reader can reach in `bench/import.py`'s latency scenarios (issue 16).

Those scenarios ask a full read of 40,000 customers (400 pages of 100) to sustain a
share of the 2,500 customers/s that a budget of 25 requests/s allows, against the
sandbox's latency: a lognormal draw per request, with a median and a p99 three times
it.  However well a reader plans, its read takes at least the time to send its
requests within the budget plus the answer to the last of them; and a reader that does
not know where an account's customers lie in time must wait for a first answer before
it can ask for anything else.  This bench simulates two ideal readers with the
sandbox's own latency model (`sandbox.latency.lognormal_ms`) and the connection's own
request budget (`RequestBudget` on a simulated clock), no CPU cost and no limit on
requests in flight, exactly one request per page:

    clairvoyant  knows every page before it starts: 400 requests from t = 0
    first page   sends one request, then, with its answer, the other 399

and prints the mean share of the budget each reaches over many simulated reads (and
the 10th percentile), measured as `bench/import.py` measures it: customers per second
against 2,500/s (the budget's sliding window lets the first second carry 25 requests
at once, so at low latency a share can exceed 1).  A target above the clairvoyant
reader's share cannot be met by any reader; Headwater's reader is the second kind, and
also pays for partial pages (a window's last page holds less than 100 customers:
405-450 requests instead of 400; `--requests 445` shows what that costs).

    python bench/latency_ceiling.py [--reads 400] [--customers 40000] [--requests 400]
"""

from __future__ import annotations

import argparse
import random
import statistics

from headwater.adapters.connectors.stripe.ratelimit import RequestBudget
from headwater.sandbox.latency import lognormal_ms

BUDGET = 25.0  # requests/s
PAGE = 100  # customers per page
MEDIANS_MS = (100.0, 300.0, 1000.0)


class SimulatedClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += max(0.0, seconds)


def read_seconds(requests: int, median_ms: float, first_page: bool, rng: random.Random) -> float:
    """When the last answer of one ideal read arrives, the read starting at 0."""
    clock = SimulatedClock()
    budget = RequestBudget(BUDGET, clock=clock, sleep=clock.sleep)

    def latency() -> float:
        return lognormal_ms(median_ms, 3 * median_ms, rng) / 1000

    end = 0.0
    if first_page:  # one request, and nothing else until its answer
        budget.acquire()
        clock.now += latency()
        end = clock.now
        requests -= 1
    for _ in range(requests):
        budget.acquire()  # advances the simulated clock to this request's send time
        end = max(end, clock.now + latency())
    return end


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reads", type=int, default=400, help="simulated reads per figure")
    parser.add_argument("--customers", type=int, default=40_000)
    parser.add_argument("--requests", type=int, default=0, help="per read (default: pages of 100)")
    args = parser.parse_args()
    rng = random.Random(16)
    requests = args.requests or -(-args.customers // PAGE)
    ideal = args.customers / (BUDGET * PAGE)  # seconds at exactly the budget
    print(
        f"{args.customers:,} customers in {requests} requests, {BUDGET:g} requests/s: "
        f"{ideal:.1f} s at the budget"
    )
    for median in MEDIANS_MS:
        for first_page in (False, True):
            shares = sorted(
                ideal / read_seconds(requests, median, first_page, rng) for _ in range(args.reads)
            )
            kind = "first page" if first_page else "clairvoyant"
            low = shares[len(shares) // 10]
            print(
                f"  {median:>6g} ms median (p99 {3 * median:g} ms), {kind:>11}: "
                f"mean {statistics.mean(shares):.3f} of the budget (10th percentile {low:.3f})"
            )


if __name__ == "__main__":
    main()
