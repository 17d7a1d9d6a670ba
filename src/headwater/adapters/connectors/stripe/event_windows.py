"""Many pending events, read in parallel by `created` windows, handed on in exact order.

Read one after another, pending events cost a round trip per page: at 300 ms, about
330 events/s whatever the budget.  When the first page after the saved position shows
that many more are pending, the rest is cut into `created` windows of about
`PAGES_PER_WINDOW` pages each (at the density that page showed; the last ones smaller)
up to the server's "now", the last one open-ended.  Worker threads read windows newest
first (the order Stripe lists in); the consumer takes them back in time order, each
reversed, so events arrive exactly in the order the sequential walk (``ending_before``)
would give them: windows are disjoint and ordered by second, and within a window
Stripe's list order is the order of the events.  What is created while the windows
are read is picked up by the sequential walk that continues after the newest event
handed on.

Threads: at most `workers` windows are read at once (the client's `Gate` decides how
many requests are actually in flight, its request budget the budget), and at most
``workers + 2`` windows are read ahead of the consumer, which bounds memory.  Closing
the generator stops the workers (their next request raises `Cancelled`).
"""

from __future__ import annotations

import itertools
import math
import threading
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from headwater.adapters.connectors.stripe.errors import MalformedResponse
from headwater.adapters.connectors.stripe.http import StripeHTTP
from headwater.adapters.connectors.stripe.pagination import Cursor, parse_list
from headwater.adapters.connectors.stripe.windows import Window
from headwater.kernel.records import Record

PATH = "/v1/events"
#: Pages of events per window: each window ends in a partial page (a call that carries
#: less than a full one), and the windows read ahead are held in memory.
PAGES_PER_WINDOW = 8
#: Read in parallel only when at least this many pages seem pending.
PARALLEL_FROM_PAGES = 4
#: At most this many windows per window read at once are planned from one first page:
#: its density is a guess for the whole backlog (a burst of 100 events in one second,
#: then a quiet day, guessed 8.6 million events: 10,800 windows, a call each at least).
#: Past it, only the oldest windows are planned, full size (closed: the sequential walk
#: goes on after them and plans again from the density it then sees).
MOST_WINDOWS_PER_WORKER = 16


def plan(first: list[Record], now: int | None, page_size: int, workers: int) -> list[Window]:
    """Windows for what is pending after `first` (the oldest page after the position,
    oldest first), or none when reading on one page at a time is as good.

    The first window starts at the second of the page's newest event (the reader drops
    what that second holds up to that event); the last is open-ended (unless the plan
    stops at `MOST_WINDOWS_PER_WORKER`).  Windows hold
    about `PAGES_PER_WINDOW` pages each, but the last ones taper down to one page: the
    windows read last are read together, and a window's pages come one after another,
    so the read ends when the longest of them does (at 300 ms, eight pages each left
    the budget half used for the last 3 s).
    """
    if workers < 2 or now is None or not first:
        return []
    start, oldest = int(first[-1]["created"]), int(first[0]["created"])
    density = len(first) / (start - oldest + 1)  # events per second
    pending = density * (now + 1 - start)
    if pending < PARALLEL_FROM_PAGES * page_size:
        return []
    ahead = workers + 2  # windows read at once (see `WindowedEvents.events`)
    most = MOST_WINDOWS_PER_WORKER * ahead
    full = max(1, int(PAGES_PER_WINDOW * page_size / density))  # seconds of a window
    if now + 1 - start > most * full:  # the oldest `most`, then plan again (see above)
        return [Window(start + i * full, start + (i + 1) * full) for i in range(most)]
    widths = _widths(now + 1 - start, density, page_size, ahead)
    edges = list(itertools.accumulate(reversed(widths), initial=start))[:-1]
    windows = [Window(a, b) for a, b in itertools.pairwise(edges)]
    return [*windows, Window(edges[-1])]


def _widths(span: int, density: float, page_size: int, ahead: int) -> list[int]:
    """Seconds per window, newest first, over `span` seconds."""
    widths: list[int] = []
    left, index = span, 1
    while left > 0:
        pages = min(PAGES_PER_WINDOW, math.ceil(index * PAGES_PER_WINDOW / ahead))
        width = min(left, max(1, int(pages * page_size / density)))
        widths.append(width)
        left, index = left - width, index + 1
    return widths


class WindowedEvents:
    """Reads event windows in parallel; yields their events in chronological order."""

    def __init__(self, http: StripeHTTP, params: dict[str, Any], workers: int) -> None:
        self.http = http
        self.params = params
        self.workers = workers
        self.stop = threading.Event()

    def events(self, windows: list[Window], after: Record) -> Iterator[list[Record]]:
        """Pages (oldest first, at most a page size each) of the events in `windows`
        that come after `after`, the newest event already handed on."""
        size = int(self.params["limit"])
        ahead: deque[Future[list[Record]]] = deque()
        todo = iter(windows)
        pool = ThreadPoolExecutor(self.workers, thread_name_prefix="stripe-events")
        try:
            first = True
            while True:
                while len(ahead) < self.workers + 2 and (window := next(todo, None)):
                    ahead.append(pool.submit(self._read, window))
                if not ahead:
                    return
                chronological = ahead.popleft().result()[::-1]
                if first:
                    chronological = _after(chronological, after)
                    first = False
                for i in range(0, len(chronological), size):
                    yield chronological[i : i + size]
        finally:
            self.stop.set()
            gate = self.http.gate
            if gate is not None:
                gate.wake()
            pool.shutdown(wait=True, cancel_futures=True)

    def _read(self, window: Window) -> list[Record]:
        """Every event in `window`, newest first."""
        params = {**self.params, **window.params()}
        cursor = Cursor("starting_after")
        events: list[Record] = []
        while not cursor.finished:
            reply = self.http.get(PATH, {**params, **cursor.params()}, self.stop)
            data, has_more = parse_list(reply.body, f"GET {PATH}")
            events += data
            cursor.advance(data, has_more)
        return events


def _after(chronological: list[Record], event: Record) -> list[Record]:
    """The events after `event`, which the first window must hold."""
    for index, candidate in enumerate(chronological):
        if candidate["id"] == event["id"]:
            return chronological[index + 1 :]
    raise MalformedResponse(
        f"Stripe's events of second {event['created']} no longer list event {event['id']}"
    )
