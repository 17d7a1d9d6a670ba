"""The customer change stream, read from Stripe's `/v1/events` in chronological order."""

from __future__ import annotations

import math
from collections.abc import Generator, Iterable, Iterator
from typing import Any

from headwater.adapters.connectors.contract import Change, ChangeBatch, HistoryExpired
from headwater.adapters.connectors.stripe.declaration import STRIPE
from headwater.adapters.connectors.stripe.errors import MalformedResponse, StripeRequestFailed
from headwater.adapters.connectors.stripe.event_windows import WindowedEvents, plan
from headwater.adapters.connectors.stripe.http import Reply, StripeHTTP
from headwater.adapters.connectors.stripe.pagination import Cursor, parse_list
from headwater.adapters.connectors.stripe.windows import Window
from headwater.kernel.errors import InvalidInput
from headwater.kernel.records import Record

PATH = "/v1/events"
#: Event pages held in memory when a time position is replayed in one pass.
HELD_PAGES = 50
#: Seconds by which a position taken from the server's clock (`position_before`) stays
#: behind the time it must precede, for clocks of Stripe's machines that differ a
#: little.  The cost: the next incremental run reads again (idempotently, and counts)
#: the changes of this many seconds and of the first request's round trip.
POSITION_MARGIN = 2
#: Seconds an event may take to appear in Stripe's list after it was created: the list
#: is eventually consistent, so an event can be listed after a later one was (Sequin,
#: "Finding and fixing eventual consistency with Stripe events").  A read saves as its
#: position only an event created more than this before the server's time of its first
#: answer; the events after it are read again by the next run (idempotently: each
#: customer ends at its latest state), so an event listed late is read then, not
#: skipped for good behind a position past it.
SETTLE = 10


def merge_events(events: Iterable[Record]) -> list[Change]:
    """Reduce chronological events to the latest state of each customer.

    A customer created and then updated within the batch is still "created"; any
    sequence that ends in a deletion is "deleted" (without a record).
    """
    latest: dict[str, Change] = {}
    for event in events:
        kind, obj = _unpack(event)
        if kind is None:
            continue
        source_id = str(obj["id"])
        previous = latest.get(source_id)
        if kind != "deleted" and previous is not None and previous.kind == "created":
            kind = "created"
        record = None if kind == "deleted" else obj
        latest[source_id] = Change(source_id, kind, record, int(event["created"]))
    return list(latest.values())


def _unpack(event: Record) -> tuple[str | None, Record]:
    etype = event.get("type")
    data = event.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    if not isinstance(obj, dict) or not isinstance(obj.get("id"), str):
        raise MalformedResponse(f"Stripe event {event.get('id')} has no data.object with an id")
    if etype not in STRIPE.event_types:
        return None, obj  # not a customer event; the type filter should prevent this
    return str(etype).removeprefix("customer."), obj


def served_after(date: int | None, elapsed: float) -> int | None:
    """A second of the server's clock at or before which a request was not yet served.

    `date` is its answer's ``Date`` (whole seconds, rounded down), `elapsed` the
    seconds from before the request was sent to after its answer arrived, by the
    client's clock.  The server served it after it was sent, so at least `elapsed`
    before it wrote ``Date`` (at `date` or later): at `date - elapsed` or later,
    whatever the two clocks' offset.  None without a `date`.
    """
    return None if date is None else math.floor(date - elapsed)


def position_of(event: Record) -> dict[str, Any]:
    return {"event_id": str(event["id"]), "created": int(event["created"])}


class ChangeReader:
    """Reads customer events strictly after a saved position, oldest first."""

    def __init__(self, http: StripeHTTP, page_size: int = 100, workers: int = 1) -> None:
        self.http = http
        self.params: dict[str, Any] = {"types[]": list(STRIPE.event_types), "limit": page_size}
        self.workers = workers  # windows read at once when many events are pending

    def position(self) -> dict[str, Any]:
        """Where the stream stands now, by the server's clock (never the local one)."""
        reply = self.http.get(PATH, {**self.params, "limit": 1})
        data, _ = parse_list(reply.body, f"GET {PATH}")
        if data:
            return position_of(data[0])
        if reply.server_time is None:
            raise MalformedResponse("Stripe's response has no usable Date header")
        return {"event_id": None, "created": reply.server_time}

    def position_before(self, served: int) -> dict[str, Any]:
        """The position before every change made at or after server second `served`.

        The newest event created `POSITION_MARGIN` seconds before `served` or earlier;
        every event listed after it was created later.  With `served` from
        `served_after` of a full read's first answer, every change before the position
        is in every page of that read (each page was served at `served` or later) and
        every change after it is read from it: the request can go after the first
        page, while the rest is read.  No event that old: the time itself, from which
        every event then listed is read (as `position` does when there are no events).
        """
        before = served - POSITION_MARGIN
        reply = self.http.get(PATH, {**self.params, "limit": 1, "created[lt]": before})
        data, _ = parse_list(reply.body, f"GET {PATH}")
        return position_of(data[0]) if data else {"event_id": None, "created": before}

    def read(self, position: dict[str, Any]) -> Iterator[ChangeBatch]:
        """Every change after `position`, in batches each with the position to save
        once it is written: the newest event of the read so far created before the
        horizon (`SETTLE` seconds before the server's time of the first answer), else
        `position` itself; its ``newest`` is the newest event read (`unsettled`)."""
        event_id, created = _validate(position)
        self._settled = {"event_id": event_id, "created": created}
        self._newest = position.get("newest", event_id)
        self._through = position.get("through")
        self._horizon: int | None = None
        self._open = True  # no event past the horizon handed on yet
        self._uncounted = self.http.api_calls  # calls not in a batch yet: the others
        yield from self._read_all(event_id, created)
        if self._horizon is not None:  # read to the end: every event before it is read
            self._through = max(self._horizon, self._through or self._horizon)
            # With the calls no batch carried (an empty last page, an expired position).
            yield self._batch([], self.http.api_calls - self._uncounted)

    def _read_all(self, event_id: str | None, created: int) -> Iterator[ChangeBatch]:
        if event_id is None:
            since = None if self._through is None else self._through - POSITION_MARGIN
            if since is not None and since > created:  # every event before was read
                created = since
            start = yield from self._read_from_time(created, since=since)
            if start is None:
                return
            event_id = start
        try:
            yield from self._read_after(event_id, created)
        except HistoryExpired:
            if self._through is None or self._horizon is not None:
                raise
            # The position's event left Stripe's 30 days, but a read listed every event
            # after it up to `through` (a quiet account): read on from there.
            since = self._through - POSITION_MARGIN
            start = yield from self._read_from_time(since, since=since)
            if start is not None:
                yield from self._read_after(start, since)

    def _read_after(self, event_id: str, created: int) -> Iterator[ChangeBatch]:
        cursor = Cursor("ending_before", start=event_id)
        checked = False
        while not cursor.finished:
            before = self.http.api_calls
            reply = self._get({**self.params, **cursor.params()}, event_id)
            data, has_more = parse_list(reply.body, f"GET {PATH}")
            if not checked:
                _check_age(created, reply, data)
                self._start(reply)
                checked = True
            if data:
                # Newest first within the page: reverse into chronological order.
                yield self._batch(data[::-1], self.http.api_calls - before)
            cursor.advance(data, has_more)
            if has_more and data and cursor.pages == 1:
                planned_from = self.http.api_calls
                windows = self._plan(data[::-1], reply.server_time, len(data))
                if windows:
                    newest = yield from self._read_windows(windows, data[0], planned_from)
                    cursor = Cursor("ending_before", start=str(newest["id"]))

    def _plan(self, first: list[Record], now: int | None, size: int) -> list[Window]:
        """`event_windows.plan` up to the newest event rather than the server's time
        (one more call, only when windows would be read: a burst, then a quiet spell,
        made thousands of windows of nothing)."""
        if not plan(first, now, size, self.workers):
            return []
        data, _ = parse_list(self.http.get(PATH, {**self.params, "limit": 1}).body, PATH)
        newest = int(data[0]["created"]) if data else now
        return plan(first, newest if now is None else min(now, newest or now), size, self.workers)

    def _read_windows(
        self, windows: list[Window], after: Record, before: int
    ) -> Generator[ChangeBatch, None, Record]:
        """The events after `after` in `windows`, read in parallel, in exact order;
        returns the newest event handed on (`after` if none).  Calls made since
        `before` (planning them) count in the first batch."""
        reader = WindowedEvents(self.http, self.params, self.workers)
        newest = after
        for page in reader.events(windows, after):
            calls, before = self.http.api_calls - before, self.http.api_calls
            newest = page[-1]
            yield self._batch(page, calls)
        if self.http.api_calls > before:  # calls for windows that held nothing new
            yield self._batch([], self.http.api_calls - before)
        return newest

    def _read_from_time(
        self, created: int, since: int | None = None
    ) -> Generator[ChangeBatch, None, str | None]:
        """No event existed at the position (or, with `since`, every event made before
        it was read), so every event now listed (made since `since`) came after it.

        Walk newest to oldest (no `created` filter: the two clocks need not agree).
        When the walk ends within `HELD_PAGES` pages, replay the pages held, oldest
        first, and return None: done in one pass.  Otherwise keep only the oldest page,
        yield it, and return its newest id for `_read_after` to continue from.
        """
        cursor = Cursor("starting_after")
        held: list[list[Record]] = []
        overflowed = False
        before = self.http.api_calls
        params = self.params if since is None else {**self.params, "created[gte]": since}
        while not cursor.finished:
            reply = self.http.get(PATH, {**params, **cursor.params()})
            data, has_more = parse_list(reply.body, f"GET {PATH}")
            if cursor.pages == 0:
                _check_age(created, reply, data)
                self._start(reply)
            if data:
                held.append(data)
                if len(held) > HELD_PAGES:
                    overflowed = True
                    del held[:-1]  # bounded memory: only the oldest page so far matters
            cursor.advance(data, has_more)
        pages = held[-1:] if overflowed else held
        for page in reversed(pages):
            calls, before = self.http.api_calls - before, self.http.api_calls
            yield self._batch(page[::-1], calls)
        return str(held[-1][0]["id"]) if overflowed else None

    def _start(self, reply: Reply) -> None:
        """The horizon, from the read's first answer: `SETTLE` seconds before the
        server's time (its ``Date``: without one, the newest event of the oldest page
        was taken, and each run saved only that page)."""
        if self._horizon is not None:
            return  # a time position's walk came first: its answer was the first
        if reply.server_time is None:  # as a full read's position needs it
            raise MalformedResponse("Stripe's response has no usable Date header")
        self._horizon = reply.server_time - SETTLE

    def _batch(self, events: list[Record], calls: int) -> ChangeBatch:
        """A batch of chronological `events` (each page's events follow the previous
        page's), with the position to save after it (see `read`)."""
        horizon = self._horizon if self._horizon is not None else -(2**62)
        for event in events:
            if not self._open or int(event["created"]) >= horizon:
                self._open = False
                break
            self._settled = position_of(event)
        self._uncounted += calls
        if events:
            self._newest = str(events[-1]["id"])
        position = {**self._settled, "newest": self._newest}
        if self._through is not None:
            position["through"] = self._through
        return ChangeBatch(merge_events(events), position, calls, {"events": len(events)})

    def _get(self, params: dict[str, Any], event_id: str) -> Reply:
        try:
            return self.http.get(PATH, params)
        except StripeRequestFailed as exc:
            if exc.failure.code == "resource_missing":
                raise HistoryExpired(
                    f"The saved change position (event {event_id}) is no longer in Stripe's "
                    "event history (kept 30 days); a full run is needed to catch up. "
                    f"({exc.failure.describe()})"
                ) from exc
            raise


def _validate(position: dict[str, Any]) -> tuple[str | None, int]:
    if not isinstance(position, dict):
        raise InvalidInput("must be an object with event_id and created", "position")
    event_id = position.get("event_id")
    created = position.get("created")
    if event_id is not None and not (isinstance(event_id, str) and event_id):
        raise InvalidInput(f"must be an event id or null, got {event_id!r}", "position.event_id")
    if not isinstance(created, int) or isinstance(created, bool):
        raise InvalidInput(f"must be unix seconds, got {created!r}", "position.created")
    newest = position.get("newest")
    if newest is not None and not (isinstance(newest, str) and newest):
        raise InvalidInput(f"must be an event id or null, got {newest!r}", "position.newest")
    through = position.get("through")
    if through is not None and (not isinstance(through, int) or isinstance(through, bool)):
        raise InvalidInput(f"must be unix seconds, got {through!r}", "position.through")
    return event_id, created


def _check_age(created: int, reply: Reply, newest_first: list[Record]) -> None:
    """Raise `HistoryExpired` if `created` is older than Stripe's event history.

    "Now" is the server's: its `Date` header, or the newest event seen if later.
    """
    stamps = [t for t in (reply.server_time,) if t is not None]
    stamps += [int(newest_first[0]["created"])] if newest_first else []
    if stamps and max(stamps) - created > STRIPE.event_history_seconds:
        days = (max(stamps) - created) // 86400
        raise HistoryExpired(
            f"The saved change position is {days} days old, but Stripe keeps only 30 days "
            "of events; a full run is needed to catch up."
        )


def unsettled(position: dict[str, Any] | None) -> bool:
    """Whether a saved position stays behind events a run read (created within `SETTLE`
    seconds of its read): the next run reads them again."""
    if not position:
        return False
    return position.get("newest", position.get("event_id")) != position.get("event_id")
