"""`StripeSource`: the Stripe implementation of the source interface."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

from headwater.adapters.connectors.contract import ChangeBatch, Pages
from headwater.adapters.connectors.stripe.background import Background
from headwater.adapters.connectors.stripe.changes import ChangeReader, served_after
from headwater.adapters.connectors.stripe.declaration import STRIPE, Declaration, StripeSettings
from headwater.adapters.connectors.stripe.errors import MalformedResponse
from headwater.adapters.connectors.stripe.flight import gate_for
from headwater.adapters.connectors.stripe.http import Reply, StripeHTTP
from headwater.adapters.connectors.stripe.offload import ReadingProcess
from headwater.adapters.connectors.stripe.pagination import Cursor, parse_list
from headwater.adapters.connectors.stripe.windows import Window
from headwater.kernel.records import Record


class StripeSource:
    """Reads one Stripe account's customers (full) and their changes (events)."""

    declaration: Declaration = STRIPE

    def __init__(self, settings: StripeSettings) -> None:
        self.settings = settings
        # Full reads run in a reading process (`offload`); this client serves the rest
        # (changes, previews) and counts the reading process's calls with its own.
        # Interruptible: a run asked to stop does not wait for an answer on the wire.
        self.http = StripeHTTP(settings, gate=gate_for(settings), interruptible=True)
        self._changes = ChangeReader(self.http, settings.page_size, settings.workers)
        self._reads: list[ReadingProcess] = []  # ended by `close` if not before
        self._ahead: _Ahead | None = None  # `read_full_ahead`'s, until used
        self._read_time: datetime | None = None  # `event_position`'s for a full read

    @property
    def api_calls(self) -> int:
        """HTTP requests this source has sent, retries included."""
        return self.http.api_calls

    def read_full(self) -> Pages:
        """A full read (the one `read_full_ahead` started, if it has not begun)."""
        ahead = self._ahead
        if ahead is not None and ahead.read.running and not ahead.read.begun:
            return ahead.read
        return self.read_created_since(self.settings.created_lower_bound)

    def read_full_ahead(self) -> None:
        """Start the full read that comes next, with its event position (`read_full`,
        then `event_position`): its reading process, and this client's request for its
        first page, on a thread, so that the round trip overlaps what the caller does
        before (opening a warehouse, compiling a transformation).  The answer waits for
        `event_position`, whose rule it keeps: the position is taken before that page
        was served; a request never used costs one call."""
        read = self.read_full()
        assert isinstance(read, ReadingProcess)
        params = {"limit": self.settings.page_size, **read.root.params()}
        self._ahead = _ahead(self.http, read, params)

    def read_created_since(self, created: int) -> Pages:
        """Customers with ``created >= created``, in pages (for keys without Events: Read).

        The reading process starts now; its first request waits for the first page or
        the event position to be asked for, and for this client's budget as it stands
        then."""
        read = ReadingProcess(
            self.settings,
            Window(created),
            self.http.add_calls,
            history=self.http.limiter.history,
            hand_back=self.http.limiter.adopt,
        )
        self._reads = [r for r in self._reads if r.running]
        self._reads.append(read)
        self._read_time = None  # until a position is taken for this read
        return read

    def read_newest(self, max_pages: int = 5) -> Iterator[list[Record]]:
        """The newest customers, newest first, one page at a time (for previews)."""
        cursor = Cursor("starting_after")
        while not cursor.finished and cursor.pages < max_pages:
            params: dict[str, str | int | list[str]] = {"limit": self.settings.page_size}
            params.update(cursor.params())
            data, has_more = parse_list(self.http.get("/v1/customers", params).body, "customers")
            cursor.advance(data, has_more)
            yield data

    def event_position(self) -> dict[str, Any]:
        """Where the change stream stands now, or, with a full read made and not yet
        begun, before that read (it begins now): this client reads the read's first
        page, whose answer's time (`changes.served_after`) the position must precede,
        and the reading process reads the rest from it and takes the position while
        it does (`ReadingProcess.position`): no round trip before the read."""
        waiting = [read for read in self._reads if read.running and not read.begun]
        if not waiting:
            return self._changes.position()
        read = waiting[-1]
        ahead, self._ahead = self._ahead, None
        if ahead is not None and ahead.read is read:
            reply, elapsed = ahead.first.outcome()
        else:
            params = {"limit": self.settings.page_size, **read.root.params()}
            sent = time.monotonic()
            reply = self.http.get("/v1/customers", params)
            elapsed = time.monotonic() - sent
        served = served_after(reply.server_time, elapsed)
        if served is None or reply.server_time is None:
            raise MalformedResponse("Stripe's response has no usable Date header")
        self._read_time = datetime.fromtimestamp(reply.server_time, UTC)
        return read.position(reply.raw, served, elapsed)

    def read_time(self) -> datetime | None:
        """The ``Date`` of the answer to the full read's first page (Stripe's clock, whole
        seconds rounded down), once `event_position` was taken for it: not after that
        page was served, so not after any change the read missed, and not before any
        change a page served within that second holds (as the `served_after` second
        of the position could be: changes read again from it would then date later)."""
        return self._read_time

    def read_changes(self, position: dict[str, Any]) -> Iterator[ChangeBatch]:
        yield from self._changes.read(position)

    def interrupt(self) -> None:
        """From any thread (the run was asked to stop): every read under way ends soon,
        raising in the thread that iterates it, instead of waiting on Stripe; nothing
        more is asked of Stripe.  `close` still follows."""
        self.http.interrupt()
        ahead = self._ahead
        if ahead is not None:
            ahead.stop.set()
        for read in list(self._reads):
            read.interrupt()

    def close(self) -> None:
        if self._ahead is not None:
            self._ahead.stop.set()  # no more retries of an answer no one will take
            self._ahead = None
        for read in self._reads:
            read.close()
        self._reads = []
        self.http.close()

    def __enter__(self) -> StripeSource:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


@dataclass(frozen=True)
class _Ahead:
    """A full read started ahead and the request for its first page, on a thread."""

    read: ReadingProcess
    first: Background[tuple[Reply, float]]  # the answer, and its seconds from send
    stop: threading.Event  # no more retries: the answer will not be taken


def _ahead(http: StripeHTTP, read: ReadingProcess, params: dict[str, Any]) -> _Ahead:
    stop = threading.Event()

    def ask() -> tuple[Reply, float]:
        sent = time.monotonic()
        reply = http.get("/v1/customers", params, stop)
        return reply, time.monotonic() - sent

    return _Ahead(read, Background(ask, "stripe-first-page").start(), stop)
