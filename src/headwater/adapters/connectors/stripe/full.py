"""Parallel full read of customers over adaptive `created` windows.

How many windows are read at once follows how many requests may be in flight: the
client's `Gate` (an adaptive `ConcurrencyController`) when it has one, else `workers`.
A window being paged sequentially shares what is left of it with new windows
(`windows.split_stream`) when it would otherwise outlast the rest of the read: at once
while fewer windows are open than requests may be in flight, else queued for the first
workers that finish, so that the last windows end together with every slot busy; and
at the very end (`ENDGAME_ROUND_TRIPS`), when the budget no longer binds, in pieces of
under a page, so that what is left is read side by side in one round trip.

Concurrency: `read_windows` starts `workers` threads that take windows from an
unbounded task queue, read them through the shared `StripeHTTP` (its request budget
keeps the connection's budget) and put pages into a bounded hand-off that the caller's
thread drains.  Every wait blocks (no polling): an idle worker blocks on the task
queue until a window or its end-of-work marker arrives; a worker with a page blocks on
the hand-off until there is room or the hand-off is closed (the consumer is gone); a
retry waits on the `stop` event.  The first failure stops the workers and reaches
the consumer ahead of any page still queued.
"""

from __future__ import annotations

import itertools
import math
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass

from headwater.adapters.connectors.stripe.handoff import Handoff
from headwater.adapters.connectors.stripe.http import Cancelled, Decode, Reply, StripeHTTP
from headwater.adapters.connectors.stripe.pagination import (
    Cursor,
    json_object,
    paging_view,
    parse_list,
)
from headwater.adapters.connectors.stripe.windows import (
    MIN_PAGES_PER_PIECE,
    Stream,
    Window,
    plan_window,
    split_stream,
)
from headwater.kernel.records import Record

PATH = "/v1/customers"
#: Split a window with no room for more when it would last this many times the rest of
#: the read (measured at 1 s per page: splitting at twice cost 13 more calls a read
#: for no shorter end).
NO_ROOM_SPLIT = 3
#: The end game: once what the whole read has left takes at most this many round trips
#: of the budget, a stream still paging shares its rest in pieces of under a page each,
#: so that what is left is read side by side in one round trip instead of in chains of
#: pages; the budget would otherwise idle while the chains run (measured at 1 s, cap 32,
#: 40,000 customers, three reads each: 0.707 of the budget without, 0.739 with; at
#: 300 ms no change beyond the noise).
ENDGAME_ROUND_TRIPS = 2.0
#: Pieces per page a stream likely has left in the end game: densities are estimates
#: (a piece holding a page and a bit is a chain of two).
ENDGAME_PIECES_PER_PAGE = 1.25
#: How full the end game's pieces may be, in pages.
ENDGAME_FILL = 0.5


@dataclass(frozen=True)
class Page:
    """Customers read in one response: the first `len(records)` of its ``data``.

    `raw` is the response body as Stripe sent it, so that another process can decode
    the page itself instead of receiving it decoded and re-encoded.  Read with
    ``paging_only``, each record holds only the ``id`` and ``created`` that paging reads
    (`pagination.paging_view`): `raw` is then the page.
    """

    records: list[Record]
    raw: bytes


class _Done:
    """The end-of-read marker."""


class _Run:
    """One parallel read: a task queue of windows, a bounded hand-off of pages."""

    def __init__(
        self,
        http: StripeHTTP,
        page_size: int,
        workers: int,
        first: Reply | None = None,
        decode: Decode = json_object,
    ) -> None:
        self.http = http
        self._decode = decode
        self._first = first  # the root window's first page, read before the read began
        self.page_size = page_size
        self.workers = workers
        self.tasks: queue.Queue[Window | None] = queue.Queue()  # None: end of work
        # Bounded: a slow consumer blocks the readers instead of filling memory.
        self.pages: Handoff[Page | BaseException | _Done] = Handoff(2 * workers)
        self.stop = threading.Event()  # workers must cease
        self._lock = threading.Lock()
        self._pending = 0  # windows submitted and not finished: queued or being read
        self._active = 0  # windows being read by a worker
        self._left: dict[object, float] = {}  # records likely left, per stream being paged
        #: Records each window waiting for its first page likely holds (its priority).
        self._expected: dict[Window, float] = {}
        self._failed = False

    def submit(self, window: Window, expected: float = math.inf) -> None:
        """Queue `window`, likely holding `expected` records (its requests' priority)."""
        with self._lock:
            self._pending += 1
            self._expected[window] = expected
        self.tasks.put(window)

    def halt(self) -> None:
        """Tell every worker to cease, waking those that wait for a slot in flight."""
        self.stop.set()
        if self.http.gate is not None:
            self.http.gate.wake()

    def end_work(self) -> None:
        """Wake every idle worker so that it returns."""
        for _ in range(self.workers):
            self.tasks.put(None)

    def work(self) -> None:
        while True:
            window = self.tasks.get()
            if window is None or self.stop.is_set():
                return
            with self._lock:
                self._active += 1
            try:
                self._read(window)
            except Cancelled:
                return
            except BaseException as exc:  # handed to the consumer, never lost
                self._fail(exc)
                return
            finally:
                with self._lock:
                    self._active -= 1
            self._finished_one()

    def _read(self, window: Window) -> None:
        params = {"limit": self.page_size, **window.params()}
        with self._lock:  # the root window is the first read: it alone was submitted
            reply, self._first = self._first, None
            expected = self._expected.pop(window, math.inf)
        if reply is None:
            reply = self.http.get(PATH, params, self.stop, expected, self._decode)
        data, has_more = parse_list(reply.body, f"GET {PATH}")
        plan = plan_window(window, data, has_more, spread=self._spread())
        density = _density(data)
        for child in plan.children:
            self.submit(child, density * _span(child))
        if plan.emit:  # always the newest records of the page: a prefix of `data`
            self._emit(Page(plan.emit, reply.raw))
        if not plan.sequential:
            return
        self._page_on(window, data, has_more)

    def _page_on(self, window: Window, data: list[Record], has_more: bool) -> None:
        """Page through the rest of `window`, splitting off its older part when the
        read has room for more windows and this one would otherwise be the tail."""
        stream = Stream(window.lo, int(data[0]["created"]), int(data[-1]["created"]), len(data))
        ordered = _newest_first(data)
        key = object()
        cursor = Cursor("starting_after")
        cursor.advance(data, has_more)
        try:
            while not cursor.finished:
                # Splitting trusts the order: below the cursor lie only older seconds.
                pieces, fill = self._pieces(key, stream) if ordered else (1, 1.0)
                if pieces > 1:
                    lo, split = split_stream(stream, pieces, self.page_size, fill)
                    for piece in split:
                        self.submit(piece, stream.density() * _span(piece))
                    stream = Stream(lo, stream.newest, stream.oldest, stream.records)
                params = {"limit": self.page_size, **Window(stream.lo, window.hi).params()}
                # The windows with most left go first: they would end last.
                left = stream.remaining()
                reply = self.http.get(
                    PATH, {**params, **cursor.params()}, self.stop, left, self._decode
                )
                data, has_more = parse_list(reply.body, f"GET {PATH}")
                if data:
                    self._emit(Page(data, reply.raw))
                    ordered = ordered and _newest_first(data, stream.oldest)
                    oldest, records = int(data[-1]["created"]), stream.records + len(data)
                    stream = Stream(stream.lo, stream.newest, oldest, records)
                cursor.advance(data, has_more)
        finally:
            with self._lock:
                self._left.pop(key, None)

    def _total_left(self) -> float:
        """Records likely left in the whole read (under the lock): those of the streams
        being paged, and for each other open window (waiting for a worker, or for its
        first page) the average of theirs."""
        total = sum(self._left.values())
        unknown = max(0, self._pending - len(self._left))
        return total + unknown * total / len(self._left) if self._left else 0.0

    def _pieces(self, key: object, stream: Stream) -> tuple[int, float]:
        """In how many windows to read the rest of `stream` (1: do not split), and how
        many pages each should at least hold (`split_stream`'s `fill`).

        As many as keep this stream from outlasting the rest of the read: alone it needs
        ``pages left x latency``; the whole read needs ``pages left / budget``, counting
        the streams being paged and, for each window still waiting for a worker, the
        average of theirs.  Every piece costs a partial page, so a stream that would end
        in time is not split.  While fewer windows are open than requests may be in
        flight, at most as many pieces as there is room for; with no room, the pieces
        wait for the first workers that finish, so that the read ends with every slot
        busy instead of in one window's chain of pages.  In the end game (the whole read
        has left at most `ENDGAME_ROUND_TRIPS` round trips of the budget) the budget no
        longer binds: every stream is cut in pieces of under a page, one per page left
        and a margin, all read at once.
        """
        mine = stream.remaining()
        with self._lock:
            self._left[key] = mine
            total = self._total_left()
        spare = self._room()
        gate = self.http.gate
        latency = gate.mean_latency if gate is not None else None
        if gate is None or latency is None or total <= 0:
            return spare + 1, MIN_PAGES_PER_PIECE
        # What the read sends per second: the budget, or what the slots carry if fewer.
        rate = min(self.http.limiter.rate, gate.limit / latency)
        if total / self.page_size <= rate * latency * ENDGAME_ROUND_TRIPS:
            pages = mine / self.page_size
            return math.ceil(pages * ENDGAME_PIECES_PER_PAGE), ENDGAME_FILL
        need = math.ceil(mine * latency * rate / total)
        if spare >= 1:
            return min(spare + 1, need), MIN_PAGES_PER_PIECE
        # With no room, only a clear tail: the estimates come from page densities, and
        # a piece that waits for a worker helps only if its stream is far too long.
        return (need if need >= NO_ROOM_SPLIT else 1), MIN_PAGES_PER_PIECE

    def _spread(self) -> int:
        """How many windows to plan side by side below a first page: as many as there
        is room for, but no more than the budget keeps busy at the latency seen
        (Little's law without the controller's margin for its spread).  Planned blind,
        windows of the far past are empty: each costs a call for nothing, and with the
        margin (16 windows at 300 ms for 8.4 requests in flight) 1-8 were, and against a
        concurrency limit of 10 their first pages went out together and drew 429s."""
        room = self._room() + 1
        gate = self.http.gate
        latency = gate.mean_latency if gate is not None else None
        if latency is None:
            return room
        return min(room, math.ceil(self.http.limiter.rate * latency) + 1)

    def _room(self) -> int:
        """How many more windows could be read at once than are open now: as many as
        requests may be in flight (or soon will be: Little's law's target).  A stream
        whose request in flight is likely its last (fewer records left than a page)
        leaves its slot with that answer: it does not count as open."""
        gate = self.http.gate
        wanted = self.workers if gate is None else min(self.workers, gate.wanted())
        with self._lock:
            ending = sum(1 for left in self._left.values() if left < self.page_size)
            return max(0, wanted - self._pending + ending)

    def _emit(self, page: Page) -> None:
        if self.stop.is_set() or not self.pages.put(page):
            raise Cancelled

    def _fail(self, exc: BaseException) -> None:
        with self._lock:
            first, self._failed = not self._failed, True
        self.halt()
        if first:
            self.pages.finish(exc, first=True)  # ahead of the pages still queued
            self.end_work()

    def _finished_one(self) -> None:
        with self._lock:
            self._pending -= 1
            done = self._pending == 0 and not self._failed
        if done:
            self.end_work()
            self.pages.finish(_Done())


def _density(data: list[Record]) -> float:
    """Records per second of a page (newest first); 0 without two seconds to tell."""
    if not data:
        return 0.0
    return len(data) / (int(data[0]["created"]) + 1 - int(data[-1]["created"]))


def _span(window: Window) -> float:
    return math.inf if window.hi is None else float(window.hi - window.lo)


def _newest_first(data: list[Record], above: int | None = None) -> bool:
    """Whether `data` is in Stripe's order (newest first), below `above` if given."""
    created = [int(r["created"]) for r in data]
    if above is not None and created and created[0] > above:
        return False
    return all(a >= b for a, b in itertools.pairwise(created))


def read_pages(
    http: StripeHTTP,
    root: Window,
    *,
    page_size: int = 100,
    workers: int = 4,
    first: Reply | None = None,
    paging_only: bool = False,
) -> Iterator[Page]:
    """Yield every customer in `root` exactly once, in pages, reading in parallel.

    `first`, if given, is the answer to the root window's first request (``limit`` of
    `page_size` and the window's bounds), read before: the read starts from it.  With
    `paging_only`, the pages' records hold only what paging reads (see `Page`)."""
    run = _Run(http, page_size, workers, first, paging_view if paging_only else json_object)
    run.submit(root)
    threads = [
        threading.Thread(target=run.work, name=f"stripe-read-{i}", daemon=True)
        for i in range(workers)
    ]
    for thread in threads:
        thread.start()
    try:
        while True:
            item = run.pages.get()
            if isinstance(item, BaseException):
                raise item
            if isinstance(item, _Done):
                return
            yield item
    finally:
        run.halt()
        run.pages.close()
        run.end_work()
        for thread in threads:
            thread.join(timeout=5)


def read_windows(
    http: StripeHTTP, root: Window, *, page_size: int = 100, workers: int = 4
) -> Iterator[list[Record]]:
    """`read_pages`, as lists of records."""
    for page in read_pages(http, root, page_size=page_size, workers=workers):
        yield page.records
