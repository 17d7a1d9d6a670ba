"""Receiving one delivery: verify, drop duplicates, ask for runs, and return at once.

Nothing of the payload is written anywhere but its event id: the Events API stays the
source of truth, so the run that follows reads what changed from Stripe itself, and a
lost, repeated or reordered delivery loses nothing and applies nothing twice.

An unknown connection, a connection without a signing secret and a bad signature are
one and the same `BadSignature` to the sender (no connection ids can be probed).
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from headwater.adapters.store import objects
from headwater.adapters.store import webhooks as store
from headwater.kernel.clock import Clock
from headwater.kernel.entities import Connection
from headwater.services.app import App
from headwater.services.webhooks.followups import request_runs
from headwater.services.webhooks.signature import BadSignature, verify

#: The events that can change a customer; any other verified event is acknowledged only.
CUSTOMER_EVENTS = frozenset({"customer.created", "customer.updated", "customer.deleted"})


def secret_context(connection_id: str) -> str:
    """What a connection's signing secret is bound to when encrypted."""
    return f"webhook_secret:{connection_id}"


@dataclass(frozen=True)
class Delivery:
    """What a verified delivery did: `duplicate` deliveries did nothing; `pipelines`
    were asked to run."""

    event_id: str
    event_type: str
    duplicate: bool
    pipelines: tuple[str, ...]


def receive(
    app: App, connection_id: str, payload: bytes, signature: str | None, clock: Clock
) -> Delivery:
    """Handle one delivery to the connection's endpoint; `BadSignature` refuses it."""
    found = objects.find(app.engine, Connection, id=connection_id)
    endpoint = store.get_endpoint(app.engine, connection_id) if found else None
    if endpoint is None:
        raise BadSignature(f"no connection {connection_id!r} with a webhook signing secret")
    secret = app.cipher.decrypt(endpoint.secret_encrypted, context=secret_context(connection_id))
    verify(payload, signature, secret, clock)
    event_id, event_type = _event(payload)
    now = clock.now()
    scoped = app.in_workspace(found[0].workspace_id)
    changes = event_type in CUSTOMER_EVENTS
    asked = request_runs(scoped, connection_id, event_id, now, changes=changes)
    if asked is None:
        return Delivery(event_id, event_type, duplicate=True, pipelines=())
    return Delivery(event_id, event_type, duplicate=False, pipelines=tuple(asked))


def _event(payload: bytes) -> tuple[str, str]:
    """The event's id and type; a signed body that is not an event is refused too."""
    try:
        data = orjson.loads(payload)
    except orjson.JSONDecodeError:
        raise BadSignature("the signed body is not JSON") from None
    event_id = data.get("id") if isinstance(data, dict) else None
    event_type = data.get("type") if isinstance(data, dict) else None
    if not isinstance(event_id, str) or not event_id or len(event_id) > 255:
        raise BadSignature("the signed body is not a Stripe event (no id)")
    if not isinstance(event_type, str):
        raise BadSignature("the signed body is not a Stripe event (no type)")
    return event_id, event_type
