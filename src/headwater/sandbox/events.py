"""The event log: ``customer.*`` events, newest first, 30 days of history."""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from typing import Any

import orjson

from headwater.sandbox.config import API_VERSION, EVENT_RETENTION_SECONDS
from headwater.sandbox.errors import invalid, no_such
from headwater.sandbox.pages import CreatedRange, created_of, make_key

EVENT_TYPES = ("customer.created", "customer.updated", "customer.deleted")


@dataclass
class Event:
    id: str
    key: int
    type: str
    blob: bytes

    @property
    def created(self) -> int:
        return created_of(self.key)


def render_event(
    event_id: str,
    event_type: str,
    created: int,
    customer_blob: bytes,
    previous: dict[str, Any] | None,
    pending_webhooks: int,
    request_id: str | None,
) -> bytes:
    """The event's JSON; ``data.object`` is the customer exactly as stored at that moment."""
    prev = b"" if previous is None else b',"previous_attributes":' + orjson.dumps(previous)
    head = orjson.dumps(
        {"id": event_id, "object": "event", "api_version": API_VERSION, "created": created}
    )
    tail = orjson.dumps(
        {
            "livemode": False,
            "pending_webhooks": pending_webhooks,
            "request": {"id": request_id, "idempotency_key": None},
            "type": event_type,
        }
    )
    return b"".join((head[:-1], b',"data":{"object":', customer_blob, prev, b"},", tail[1:]))


def type_matcher(type_: Any, types: Any) -> frozenset[str] | None:
    """The set of event types asked for by ``type`` (``customer.*`` allowed) / ``types[]``."""
    if type_ is not None and types is not None:
        raise invalid("You may only specify one of these parameters: type, types.", "types")
    if type_ is not None:
        if not isinstance(type_, str):
            raise invalid("Invalid string", param="type")
        if type_.endswith(".*"):
            prefix = type_[:-1]
            return frozenset(t for t in EVENT_TYPES if t.startswith(prefix))
        return frozenset({type_})
    if types is not None:
        if not isinstance(types, list) or not all(isinstance(t, str) for t in types):
            raise invalid("Invalid array", param="types")
        if len(types) > 20:
            raise invalid("You can specify at most 20 types.", param="types")
        return frozenset(types)
    return None


class EventLog:
    def __init__(self) -> None:
        self._keys: list[int] = []
        self._events: list[Event] = []
        self._by_id: dict[str, Event] = {}

    def __len__(self) -> int:
        return len(self._events)

    def __iter__(self) -> Any:
        return iter(self._events)

    def add(self, event: Event) -> None:
        pos = bisect_right(self._keys, event.key)
        self._keys.insert(pos, event.key)
        self._events.insert(pos, event)
        self._by_id[event.id] = event

    def get(self, event_id: str, now: int) -> Event | None:
        event = self._by_id.get(event_id)
        if event is None or event.created < now - EVENT_RETENTION_SECONDS:
            return None
        return event

    def page(
        self,
        now: int,
        span: CreatedRange,
        limit: int,
        types: frozenset[str] | None,
        after: str | None,
        before: str | None,
    ) -> tuple[list[bytes], bool]:
        if after is not None and before is not None:
            raise invalid(
                "You may only specify one of these parameters: ending_before, starting_after.",
                param="starting_after",
            )
        oldest = make_key(now - EVENT_RETENTION_SECONDS, 0)
        low = oldest if span.low is None else max(oldest, span.low)
        lo = bisect_left(self._keys, low)
        hi = len(self._keys) if span.high is None else bisect_left(self._keys, span.high)
        if before is not None:
            start = max(lo, bisect_right(self._keys, self._cursor(before, now, "ending_before")))
            picked = self._scan(range(start, hi), types, limit + 1)
            return [e.blob for e in reversed(picked[:limit])], len(picked) > limit
        if after is not None:
            hi = min(hi, bisect_left(self._keys, self._cursor(after, now, "starting_after")))
        picked = self._scan(range(hi - 1, lo - 1, -1), types, limit + 1)
        return [e.blob for e in picked[:limit]], len(picked) > limit

    def _scan(self, positions: range, types: frozenset[str] | None, want: int) -> list[Event]:
        if types is None:
            sub = positions[:want]
            return [self._events[i] for i in sub]
        out: list[Event] = []
        for i in positions:
            event = self._events[i]
            if event.type in types:
                out.append(event)
                if len(out) == want:
                    break
        return out

    def _cursor(self, event_id: str, now: int, param: str) -> int:
        event = self.get(event_id, now)
        if event is None:
            raise no_such("event", event_id, param=param)
        return event.key
