"""The event position a full read takes from its first page's answer (`position_before`).

A server with a clock of its own (offset from the client's) serves the read's first
page, then a change is made before the answer leaves: the change is not in the page,
so the position must come before it, though the answer's ``Date`` is later than it.
"""

from __future__ import annotations

import math
import threading
import time
from email.utils import formatdate
from typing import Any

import httpx
import orjson
from tests.connectors.wires import HandlerWire

from headwater.adapters.connectors.stripe import StripeSettings
from headwater.adapters.connectors.stripe.changes import (
    POSITION_MARGIN,
    ChangeReader,
    served_after,
)
from headwater.adapters.connectors.stripe.full import read_pages
from headwater.adapters.connectors.stripe.http import StripeHTTP
from headwater.adapters.connectors.stripe.windows import Window

#: The server's clock runs this far ahead of the client's (any offset must do).
OFFSET = 1_700_000_000.5


def test_served_after_is_the_date_less_the_round_trip_rounded_down() -> None:
    assert served_after(1001, 0.8) == 1000
    assert served_after(1001, 0.0) == 1001
    assert served_after(1001, 3.2) == 997
    assert served_after(None, 0.5) is None


class Server:
    """Customers and their events, on a clock `OFFSET` ahead of `time.monotonic`."""

    def __init__(self, hold: float) -> None:
        self.hold = hold  # how long the first page's answer takes after it was served
        now = self.now()
        self.customers = [{"id": f"cus_{i}", "created": int(now) - 100 - i} for i in range(5)]
        self.events = [_event("evt_old", "cus_0", int(now) - POSITION_MARGIN - 30)]
        self.lock = threading.Lock()
        self.customer_pages = 0

    def now(self) -> float:
        return time.monotonic() + OFFSET

    def __call__(self, request: httpx.Request) -> httpx.Response:
        params = request.url.params
        if request.url.path == "/v1/events":
            below = int(params.get("created[lt]", 2**62))
            with self.lock:
                found = [e for e in self.events if e["created"] < below]
            found.sort(key=lambda e: e["created"], reverse=True)
            return self._answer(found[: int(params["limit"])], self.now())
        self.customer_pages += 1
        page = list(self.customers)  # served now: the changes made later are not in it
        with self.lock:  # a change right after the page was served, before it is answered
            self.events.append(_event("evt_new", "cus_0", int(self.now())))
        time.sleep(self.hold)
        return self._answer(page, self.now())

    def _answer(self, data: list[dict[str, Any]], now: float) -> httpx.Response:
        body = orjson.dumps({"object": "list", "data": data, "has_more": False})
        return httpx.Response(200, content=body, headers={"date": formatdate(now, usegmt=True)})


def _event(event_id: str, customer: str, created: int) -> dict[str, Any]:
    obj = {"id": customer, "created": 0}
    return {"id": event_id, "created": created, "type": "customer.updated", "data": {"object": obj}}


def test_a_change_after_the_first_page_was_served_is_after_the_position() -> None:
    """The first answer is held longer than the margin: its ``Date`` alone would put
    the change made after the page was served before the position, and lose it."""
    server = Server(hold=POSITION_MARGIN + 1.5)
    settings = StripeSettings(base_url="http://stripe.test", api_key="sk_test_" + "x" * 24)
    http = StripeHTTP(settings, wire=HandlerWire(server))
    try:  # as `StripeSource.event_position` and the reading process do it
        sent = time.monotonic()
        reply = http.get("/v1/customers", {"limit": 100, **Window(0).params()})
        served = served_after(reply.server_time, time.monotonic() - sent)
        assert served is not None
        position = ChangeReader(http).position_before(served)
        pages = list(read_pages(http, Window(0), first=reply))
    finally:
        http.close()
    assert sum(len(p.records) for p in pages) == 5
    assert server.customer_pages == 1  # the read went on from the first page
    [new] = [e for e in server.events if e["id"] == "evt_new"]
    # The change is not in the page, so it must be read after the position ...
    assert position["event_id"] == "evt_old"
    # ... and the answer's Date came after it: without the round trip, it would not be.
    date = math.floor(server.now() - 0.5)  # about when the answer was written
    assert date - POSITION_MARGIN > new["created"]
