"""Splitting a full read into disjoint `created` windows: pure planning.

Stripe lists newest first, so the first page of a window holds its newest records.
Every record created *after* the oldest second on that page is therefore already in
hand; only ``[lo, oldest + 1)`` remains.  Far from the data seen (a lower bound of 0)
that remainder is cut in a window near the data and one for the far past; near it the
window is paged on, and what is left of it is split (`split_stream`) only while the
read has room for more windows than are open.  Windows are
half-open (``created[gte]``/``created[lt]``), so halves never overlap and their union
is the parent: each record is read exactly once.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from headwater.kernel.records import Record

#: How many pages of data a window split off near known data should hold.  Each window
#: ends in a partial page, so bigger windows waste less of the request budget (measured:
#: 4 pages -> 84 customers per call, 32 -> 94); a million customers still make ~300
#: windows, plenty for the workers.
PAGES_PER_WINDOW = 32
#: Page on sequentially when the rest of a window is at most this many page spans.
SEQUENTIAL_SPANS = 8


@dataclass(frozen=True)
class Window:
    """Customers with ``lo <= created < hi``; ``hi=None`` means no upper bound."""

    lo: int
    hi: int | None = None

    def params(self) -> dict[str, int]:
        params = {"created[gte]": self.lo}
        if self.hi is not None:
            params["created[lt]"] = self.hi
        return params

    @property
    def single_second(self) -> bool:
        return self.hi is not None and self.hi - self.lo <= 1

    def halves(self) -> list[Window]:
        """Split in two disjoint halves; needs a bound window spanning >= 2 seconds."""
        if self.hi is None or self.hi - self.lo < 2:
            raise ValueError(f"cannot halve {self}")
        mid = self.lo + (self.hi - self.lo) // 2
        return [Window(self.lo, mid), Window(mid, self.hi)]


@dataclass
class Plan:
    """What to do after reading a window's first page."""

    emit: list[Record]
    children: list[Window] = field(default_factory=list)
    sequential: bool = False  # keep paging this window with starting_after


def plan_window(window: Window, data: list[Record], has_more: bool, spread: int = 1) -> Plan:
    """Decide, from a window's first page, what to emit and what is left to read.

    Far from the data seen, up to `spread` windows of `PAGES_PER_WINDOW` page spans are
    planned side by side below it (as many as the read can keep in flight), and one
    window for the rest.
    """
    if not has_more or not data:
        return Plan(emit=data)
    if window.single_second:
        return Plan(emit=data, sequential=True)
    created = [int(r["created"]) for r in data]
    if any(a < b for a, b in itertools.pairwise(created)):
        # Not newest-first: trust nothing on the page and re-read both halves.
        if window.hi is None:
            return Plan(emit=data, sequential=True)
        return Plan(emit=[], children=window.halves())
    oldest = created[-1]
    if oldest <= window.lo:
        # Everything left shares the window's first second: page on sequentially.
        return Plan(emit=data, sequential=True)
    top = oldest + 1
    emit = [r for r, c in zip(data, created, strict=True) if c > oldest]
    # The page spanned `seen` seconds; a window a few times wider near the top likely
    # holds a few pages, while the (possibly empty) far past goes in one window.  This
    # finds the data in a handful of calls even when the lower bound is 0.
    seen = created[0] + 1 - oldest
    if top - window.lo <= SEQUENTIAL_SPANS * seen:
        # What is left likely fits in a page or two: paging on is cheaper than
        # splitting into windows that would each cost a call for a partial page.
        return Plan(emit=data, sequential=True)
    near = seen * PAGES_PER_WINDOW
    if top - window.lo > 2 * near:
        count = max(1, min(spread, (top - window.lo) // near - 1))
        edges = [top - i * near for i in range(count + 1)]
        children = [Window(b, a) for a, b in itertools.pairwise(edges)]
        return Plan(emit=emit, children=[*children, Window(window.lo, edges[-1])])
    # Data near by: page on.  Splitting now would cost a partial page per piece whether
    # or not the read has room for more windows; `split_stream` splits the rest of a
    # window being paged only when it has.
    return Plan(emit=data, sequential=True)


#: Split a window being paged only when each piece would likely hold this many pages:
#: every piece ends in a partial page, a call that carries less than a full one.  One:
#: the caller splits only as many pieces as keep the stream from outlasting the read
#: (`full._Run._pieces`), and near the end a chain of two pages is the tail (at 300 ms,
#: 2 cost 0.35-0.7 s a read of 40,000 against 1).
MIN_PAGES_PER_PIECE = 1


@dataclass(frozen=True)
class Stream:
    """A window being paged newest first: what has been read of it so far."""

    lo: int
    newest: int  # `created` of the first record read
    oldest: int  # `created` of the last record read (the cursor is inside this second)
    records: int  # read so far

    def density(self) -> float:
        """Records per second read so far."""
        return self.records / (self.newest - self.oldest + 1)

    def remaining(self) -> float:
        """Records likely left below `oldest`, at the density seen so far."""
        return self.density() * (self.oldest - self.lo)


def split_stream(
    stream: Stream, pieces: int, page_size: int, fill: float = MIN_PAGES_PER_PIECE
) -> tuple[int, list[Window]]:
    """Share what is left of a window being paged in up to `pieces` windows, itself one.

    Returns the stream's new lower bound (it keeps the newest piece: its cursor is in
    the second `oldest`, which the piece must include) and the windows split off
    below it, newest first; ``(lo, [])`` when splitting is not worth a partial page
    (each piece should hold `fill` pages at the density seen: `MIN_PAGES_PER_PIECE`
    unless the read is ending).  The pieces are disjoint and, with the stream's own,
    cover ``[lo, oldest + 1)``.
    """
    span = stream.oldest + 1 - stream.lo
    worth = int(stream.remaining() / page_size // fill)
    pieces = min(pieces, worth, span)
    if pieces < 2:
        return stream.lo, []
    edges = [stream.lo + span * i // pieces for i in range(pieces + 1)]
    windows = [Window(a, b) for a, b in itertools.pairwise(edges)]
    keep = windows.pop()  # the newest piece, holding `oldest`
    return keep.lo, windows[::-1]
