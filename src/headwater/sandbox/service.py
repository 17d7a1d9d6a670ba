"""The sandbox's state and operations, independent of HTTP."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from headwater.sandbox.config import SandboxConfig
from headwater.sandbox.customers import apply_params, new_customer
from headwater.sandbox.errors import no_such
from headwater.sandbox.events import Event, EventLog, render_event
from headwater.sandbox.faults import Stats
from headwater.sandbox.ids import IdFactory
from headwater.sandbox.store import Clock, CustomerStore
from headwater.sandbox.webhooks import WebhookHub

EventListener = Callable[[Event], None]


class Sandbox:
    """Customers, events and the clock; every mutation emits its ``customer.*`` event."""

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.clock = Clock(config.clock_start)
        self.customers = CustomerStore()
        self.events = EventLog()
        self.ids = IdFactory(config.seed, "api")
        self.stats = Stats()
        self.webhooks = WebhookHub(
            self.stats, config.seed, config.webhook_retry_seconds, config.webhook_max_attempts
        )
        self.listeners: list[EventListener] = [self.webhooks.on_event]

    def retrieve(self, customer_id: str) -> bytes:
        blob = self.customers.get(customer_id)
        if blob is not None:
            return blob
        if customer_id in self.customers.deleted:
            return orjson.dumps({"id": customer_id, "object": "customer", "deleted": True})
        raise no_such("customer", customer_id)

    def create(self, params: dict[str, Any], request_id: str | None) -> bytes:
        now = self.clock.now()
        customer_id = self.ids.make("cus_")
        while customer_id in self.customers or customer_id in self.customers.deleted:
            customer_id = self.ids.make("cus_")
        prefix = self.ids.make("", 8).upper()
        customer = new_customer(customer_id, now, prefix)
        apply_params(customer, params)
        blob = bytes(memoryview(orjson.dumps(customer)))  # drop orjson buffer slack
        self.customers.add(customer_id, self.customers.next_key(now), blob)
        self._emit("customer.created", blob, None, request_id)
        return blob

    def update(self, customer_id: str, params: dict[str, Any], request_id: str | None) -> bytes:
        stored = self.customers.get(customer_id)
        if stored is None:
            raise no_such("customer", customer_id)
        customer = orjson.loads(stored)  # the dict form exists only while it is changed
        previous = apply_params(customer, params)
        if not previous:
            return stored  # Stripe emits no event when nothing changed
        blob = bytes(memoryview(orjson.dumps(customer)))  # drop orjson buffer slack
        self.customers.replace(customer_id, blob)
        self._emit("customer.updated", blob, previous, request_id)
        return blob

    def delete(self, customer_id: str, request_id: str | None) -> bytes:
        if customer_id not in self.customers:
            raise no_such("customer", customer_id)
        blob = self.customers.remove(customer_id)
        self._emit("customer.deleted", blob, None, request_id)
        return orjson.dumps({"id": customer_id, "object": "customer", "deleted": True})

    def _emit(
        self, type_: str, blob: bytes, previous: dict[str, Any] | None, request_id: str | None
    ) -> None:
        now = self.clock.now()
        event_id = self.ids.make("evt_", 24)
        body = render_event(event_id, type_, now, blob, previous, self.webhooks.count(), request_id)
        event = Event(event_id, self.customers.next_key(now), type_, body)
        self.events.add(event)
        for listener in self.listeners:
            listener(event)
