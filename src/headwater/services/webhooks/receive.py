"""Receiving one delivery: verify, drop duplicates, ask for runs, and return at once.

Nothing of the payload is written anywhere but its event id: the Events API stays the
source of truth, so the run that follows reads what changed from Stripe itself, and a
lost, repeated or reordered delivery loses nothing and applies nothing twice.

An unknown connection, a connection without a signing secret and a bad signature are
one and the same `BadSignature` to the sender (no connection ids can be probed).  A
delivery refused by a connection that has a secret is a `Refused`, which says which
secret judged it: the connection's status counts those (`refusals`), and bodies over
the size limit sent to such a connection too (refused before any check, with the same
answer for every id: `judging_since` says which secret to count them against).
The look-up of a connection's endpoint is kept a moment in the serving process
(`lookup`), so a flood of forged deliveries is not two store reads per delivery.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import orjson

from headwater.adapters.store import objects
from headwater.adapters.store import webhooks as store
from headwater.kernel.clock import Clock
from headwater.kernel.entities import Connection
from headwater.services.app import App
from headwater.services.webhooks import lookup
from headwater.services.webhooks.followups import request_runs
from headwater.services.webhooks.signature import NOT_EVENT, BadSignature, verify

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


@dataclass(frozen=True)
class Verified:
    """A delivery whose signature checked out: which event, for which workspace."""

    connection_id: str
    workspace_id: str
    event_id: str
    event_type: str


class Refused(BadSignature):
    """A delivery refused by a connection with a stored secret: `since` is when that
    secret was stored (its endpoint's `created_at`); `reason` says why, in fixed words."""

    def __init__(self, cause: BadSignature, connection_id: str, since: datetime) -> None:
        super().__init__(cause.message, cause.reason)
        self.connection_id = connection_id
        self.since = since


def receive(
    app: App, connection_id: str, payload: bytes, signature: str | None, clock: Clock
) -> Delivery:
    """Handle one delivery to the connection's endpoint; `BadSignature` refuses it."""
    return record(app, check(app, connection_id, payload, signature, clock), clock)


def check(
    app: App, connection_id: str, payload: bytes, signature: str | None, clock: Clock
) -> Verified:
    """Verify a delivery (nothing is written); `BadSignature` refuses it (`Refused` when
    the connection has a secret)."""
    found = _read_secret(app, connection_id)
    if found is None:
        raise BadSignature(f"no connection {connection_id!r} with a webhook signing secret")
    workspace_id, since, secret = found
    try:
        verify(payload, signature, secret, clock)
        event_id, event_type = _event(payload)
    except BadSignature as exc:
        raise Refused(exc, connection_id, since) from None
    return Verified(connection_id, workspace_id, event_id, event_type)


def record(app: App, delivery: Verified, clock: Clock) -> Delivery:
    """Record a verified delivery and ask for the runs it calls for."""
    scoped = app.in_workspace(delivery.workspace_id)
    changes = delivery.event_type in CUSTOMER_EVENTS
    event_id, event_type = delivery.event_id, delivery.event_type
    asked = request_runs(scoped, delivery.connection_id, event_id, clock.now(), changes=changes)
    if asked is None:
        return Delivery(event_id, event_type, duplicate=True, pipelines=())
    return Delivery(event_id, event_type, duplicate=False, pipelines=tuple(asked))


def judging_since(app: App, connection_id: str) -> datetime | None:
    """When the secret that judges deliveries to `connection_id` was stored: what a
    delivery refused before any check (a body over the size limit) is counted against;
    None when the id names no connection with a secret (nothing is counted then, and
    the sender gets the same answer)."""
    found = _lookup(app, connection_id)
    return found.since if found else None


def _lookup(app: App, connection_id: str) -> lookup.Endpoint | None:
    """The connection's endpoint as verifying needs it, when it has one (a stored
    secret); kept a moment in this process (`lookup`)."""

    def load() -> lookup.Endpoint | None:
        found = objects.find(app.engine, Connection, id=connection_id)
        endpoint = store.get_endpoint(app.engine, connection_id) if found else None
        if not found or endpoint is None:
            return None
        workspace_id = found[0].workspace_id
        return lookup.Endpoint(workspace_id, endpoint.created_at, endpoint.secret_encrypted)

    return lookup.LOOKUPS.get(lookup.key(app, connection_id), load)


def _read_secret(app: App, connection_id: str) -> tuple[str, datetime, str] | None:
    """The connection's workspace, when its secret was stored, and the secret
    (decrypted for this delivery only)."""
    found = _lookup(app, connection_id)
    if found is None:
        return None
    context = secret_context(connection_id)
    secret = app.cipher.decrypt(found.secret_encrypted, context=context)
    return found.workspace_id, found.since, secret


def _event(payload: bytes) -> tuple[str, str]:
    """The event's id and type; a signed body that is not an event is refused too."""
    try:
        data = orjson.loads(payload)
    except orjson.JSONDecodeError:
        raise BadSignature("the signed body is not JSON", NOT_EVENT) from None
    event_id = data.get("id") if isinstance(data, dict) else None
    event_type = data.get("type") if isinstance(data, dict) else None
    if not isinstance(event_id, str) or not event_id or len(event_id) > 255:
        raise BadSignature("the signed body is not a Stripe event (no id)", NOT_EVENT)
    if not isinstance(event_type, str):
        raise BadSignature("the signed body is not a Stripe event (no type)", NOT_EVENT)
    return event_id, event_type
