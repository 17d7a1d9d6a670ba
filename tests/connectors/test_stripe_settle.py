"""Stripe's event list is eventually consistent: an event can be listed after a later
one was.  A read saves as its position only an event created `changes.SETTLE` seconds
before its first answer; the events after it are read again by the next read, so an
event listed late is read then instead of lying behind the position for good."""

from __future__ import annotations

from email.utils import formatdate
from typing import Any

import httpx
import orjson
from tests.connectors.wires import HandlerWire

from headwater.adapters.connectors.stripe import StripeSettings
from headwater.adapters.connectors.stripe.changes import SETTLE, ChangeReader, unsettled
from headwater.adapters.connectors.stripe.http import StripeHTTP

T0 = 1_790_000_000


class Events:
    """`/v1/events`, newest first (created, then order of making), with events that
    are made but not listed yet, and a clock of its own."""

    def __init__(self) -> None:
        self.now = T0
        self.made: list[dict[str, Any]] = []  # in order of making
        self.hidden: set[str] = set()

    def make(self, event_id: str, customer: str, created: int, *, listed: bool = True) -> None:
        obj = {"id": customer, "object": "customer", "email": f"{event_id}@example.com"}
        event = {"id": event_id, "created": created, "type": "customer.updated"}
        self.made.append(event | {"data": {"object": obj}})
        if not listed:
            self.hidden.add(event_id)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        params = request.url.params
        order = sorted(
            (e for e in self.made if e["id"] not in self.hidden),
            key=lambda e: (e["created"], self.made.index(e)),
            reverse=True,
        )
        limit = int(params["limit"])
        if "ending_before" in params:
            ids = [e["id"] for e in order]
            newer = order[: ids.index(params["ending_before"])]
            data, more = newer[-limit:], len(newer) > limit
        else:
            after = params.get("starting_after")
            start = 0 if after is None else [e["id"] for e in order].index(after) + 1
            data, more = order[start : start + limit], len(order) > start + limit
        body = orjson.dumps({"object": "list", "data": data, "has_more": more})
        return httpx.Response(
            200, content=body, headers={"date": formatdate(self.now, usegmt=True)}
        )


def _read(server: Events, position: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
    settings = StripeSettings(base_url="http://stripe.test", api_key="sk_test_" + "x" * 24)
    http = StripeHTTP(settings, wire=HandlerWire(server))
    try:
        batches = list(ChangeReader(http, page_size=2).read(position))
    finally:
        http.close()
    changed = [c.source_id for b in batches for c in b.changes]
    return changed, batches[-1].position if batches else position


def test_an_event_listed_after_a_later_one_is_read_by_the_next_run() -> None:
    server = Events()
    server.make("evt_start", "cus_0", T0 - 100)
    start = {"event_id": "evt_start", "created": T0 - 100}
    server.make("evt_a", "cus_a", T0 - 1, listed=False)  # made first, listed late
    server.make("evt_b", "cus_b", T0 - 1)
    server.make("evt_c", "cus_c", T0)
    changed, position = _read(server, start)
    assert changed == ["cus_b", "cus_c"]
    # Both are recent: the position stays where it was (they are read again).
    assert position == {
        "event_id": "evt_start",
        "created": T0 - 100,
        "newest": "evt_c",
        "through": T0 - SETTLE,  # every event made before then is read
    }
    assert unsettled(position)

    server.hidden.clear()  # Stripe lists it now
    server.now = T0 + SETTLE + 5
    changed, position = _read(server, position)
    assert changed == ["cus_a", "cus_b", "cus_c"]  # in the order they were made
    assert position == {"event_id": "evt_c", "created": T0, "newest": "evt_c", "through": T0 + 5}
    assert not unsettled(position)
    assert _read(server, position) == ([], position)  # nothing new: nothing read again


def test_events_older_than_the_settling_time_move_the_position_past_them() -> None:
    server = Events()
    server.make("evt_start", "cus_0", T0 - 100)
    for i in range(5):
        server.make(f"evt_old{i}", f"cus_o{i}", T0 - SETTLE - 3)
    server.make("evt_new", "cus_n", T0 - SETTLE + 1)
    changed, position = _read(server, {"event_id": "evt_start", "created": T0 - 100})
    assert changed == [f"cus_o{i}" for i in range(5)] + ["cus_n"]
    assert position == {
        "event_id": "evt_old4",
        "created": T0 - SETTLE - 3,
        "newest": "evt_new",
        "through": T0 - SETTLE,
    }
    server.now += SETTLE
    changed, position = _read(server, position)
    assert changed == ["cus_n"]  # read again, once: the others settled
    assert position == {
        "event_id": "evt_new",
        "created": T0 - SETTLE + 1,
        "newest": "evt_new",
        "through": T0,
    }


def test_a_saved_position_of_before_is_read_as_settled() -> None:
    """Positions saved before `newest` existed read on as they did."""
    assert not unsettled({"event_id": "evt_1", "created": T0})
    assert not unsettled({"event_id": None, "created": T0})
    assert not unsettled(None)
