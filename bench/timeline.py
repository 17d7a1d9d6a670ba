"""Where a latency-bound import's time went, from the sandbox's request timeline.

The importer's process times (launched, the run's start and end, exited) are set
beside the sandbox's record of each API request (admitted, answered), all in wall-clock
seconds of one machine; the read requests are those of one operation (customers for a
full run, events for an incremental one):

    start-up   process launched -> the run's row exists (the CLI's imports, settings)
    setup      run start -> first API request (warehouse, claim, reading process)
    position   first API request -> first read request (the event position)
    ramp       first read request -> the first second at 90% of the budget
    steady     the seconds between, and the requests they carried
    tail       the last second at 90% of the budget -> last read answer
    ending     last answer -> the run's end (last writes, purge, position, resolution)
    exit       the run's end -> process exit
"""

from __future__ import annotations

import math
from typing import Any

CUSTOMERS = "GET /v1/customers"


def _full_seconds(admitted: list[float], first: float, budget: float) -> list[int]:
    """Indexes of the one-second bins after `first` that carried >= 90% of `budget`."""
    bins = [0] * (math.ceil(max(admitted) - first) + 1)
    for at in admitted:
        bins[int(at - first)] += 1
    return [i for i, n in enumerate(bins) if n >= 0.9 * budget]


def describe(
    times: dict[str, float],
    timeline: list[tuple[float, float, int, str]],
    budget: float,
    operation: str = CUSTOMERS,
) -> str:
    """One line: the phases above, in seconds (requests before launch are not the run's)."""
    timeline = [row for row in timeline if row[0] >= times["launched"]]
    reads = [row for row in timeline if row[3] == operation]
    if not reads or not timeline:
        return f"timeline: no {operation} requests recorded"
    first_api = min(row[0] for row in timeline)
    admitted = sorted(row[0] for row in reads)
    first, last_answer = admitted[0], max(row[1] for row in reads)
    full = _full_seconds(admitted, first, budget)
    ramp_end = first + full[0] if full else last_answer
    tail_start = first + full[-1] + 1 if full else last_answer
    steady = sum(1 for at in admitted if ramp_end <= at < tail_start)
    rate = steady / (tail_start - ramp_end) if tail_start > ramp_end else 0.0
    parts: dict[str, Any] = {
        "start-up": times["started"] - times["launched"],
        "setup": first_api - times["started"],
        "position": first - first_api,
        "ramp": ramp_end - first,
        "steady": tail_start - ramp_end,
        "tail": last_answer - tail_start,
        "ending": times["finished"] - last_answer,
        "exit": times["exited"] - times["finished"],
    }
    text = ", ".join(f"{name} {seconds:.2f}" for name, seconds in parts.items())
    return f"timeline (s): {text}; steady {steady} requests at {rate:.1f}/s"
