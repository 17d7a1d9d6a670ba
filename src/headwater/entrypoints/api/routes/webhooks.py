"""Stripe webhooks over HTTP: the receiver Stripe posts to, and a connection's webhook
settings.

``POST /webhooks/stripe/{connection_id}`` needs no credentials: Stripe's signature is
the check.  It answers as soon as the delivery is recorded (a run is only asked for,
never waited on): 200 for a verified delivery (a duplicate too), 400 for anything
unverifiable, an unknown connection included (the same answer, so ids cannot be
probed), 413 for a body over the size limit, 429 past the connection's rate limit
(verified deliveries and refused ones are limited apart: see `receive_delivery`).
A delivery refused by a connection with a stored secret is counted for its status
(`services.webhooks.refusals`: in memory, written at most once a second), whether it
got the 400 or, past the refusals' limit, a 429; so is one answered 413, whose body is
read only up to the limit (never whole, to be counted or otherwise).  Ids that name no
such connection get the same answers and are counted nowhere.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime
from typing import Annotated, cast

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from headwater.entrypoints.api.deps import NUL, CheckedInput, RootApp, WorkspaceApp
from headwater.entrypoints.api.errors import error_response
from headwater.entrypoints.api.json_route import StrictJsonRoute
from headwater.entrypoints.api.webhook_models import (
    DeliveryReceived,
    WebhookPublic,
    WebhookRegister,
    WebhookSecret,
)
from headwater.kernel.clock import SystemClock
from headwater.kernel.entities import utcnow
from headwater.services.app import App
from headwater.services.webhooks import endpoints
from headwater.services.webhooks.limits import DeliveryLimits, RateLimiter, retry_after
from headwater.services.webhooks.receive import Refused, check, judging_since, record
from headwater.services.webhooks.refusals import RefusalCounter
from headwater.services.webhooks.signature import TOO_LARGE, BadSignature

log = logging.getLogger(__name__)
router = APIRouter(route_class=StrictJsonRoute, tags=["webhooks"])
#: The settings routes (not the receiver: it has no caller, Stripe's signature is the check).
settings = APIRouter(route_class=StrictJsonRoute, tags=["webhooks"], dependencies=[CheckedInput])

ConnectionId = Annotated[
    str, Path(max_length=40, description="The Stripe connection's id (`conn_…`).")
]
_REFUSED = "the delivery could not be verified as coming from Stripe for this endpoint"
_lock = threading.Lock()


def _limiter(request: Request, app: App, kind: str) -> RateLimiter:
    """The API application's limiter of `kind` (``accepted`` or ``refused``
    deliveries), made on first use from the settings."""
    state = request.app.state
    with _lock:
        found = getattr(state, f"webhook_{kind}", None)
        if found is None:
            limits = DeliveryLimits(app.settings.webhook_rate, app.settings.webhook_burst)
            found = RateLimiter(limits)
            setattr(state, f"webhook_{kind}", found)
    return cast(RateLimiter, found)


def _rate_limited(wait: float) -> JSONResponse:
    return error_response(
        429,
        "rate_limited",
        "too many deliveries for this endpoint; retry later",
        headers={"Retry-After": str(retry_after(wait))},
    )


def _refused(
    request: Request, app: App, connection_id: str, why: str, *, known: bool
) -> JSONResponse:
    """The one answer to a delivery that cannot be verified (the reason is logged);
    `known`: the id names a connection with a stored secret (its bucket is kept apart
    from made-up ids', which cannot push it out: `limits`)."""
    log.info("webhook delivery to %r refused: %s", connection_id, why)
    wait = _limiter(request, app, "refused").take(connection_id, known=known)
    if wait > 0:
        return _rate_limited(wait)
    return error_response(400, "invalid_signature", _REFUSED)


def _count(request: Request, connection_id: str, since: datetime, reason: str) -> None:
    """Count a refusal for the status of the connection whose secret (stored at
    `since`) judged it."""
    counter = cast(RefusalCounter, request.app.state.webhook_refusals)
    counter.add(connection_id, since, reason, utcnow())


async def _too_large(request: Request, app: App, connection_id: str) -> JSONResponse:
    """The one answer to a body over the size limit, whatever the id; counted for a
    connection with a stored secret (the id is looked up as for any refusal)."""
    log.info("webhook delivery to %r refused: the body is over the size limit", connection_id)
    if NUL not in connection_id:  # no connection has one (and no database keeps one)
        since = await run_in_threadpool(judging_since, app, connection_id)
        if since is not None:
            _count(request, connection_id, since, TOO_LARGE)
    return error_response(413, "payload_too_large", "the delivery's body is too large")


async def _body(request: Request, limit: int) -> bytes | None:
    """The raw body, or None as soon as it is longer than `limit` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


@router.post(
    "/webhooks/stripe/{connection_id}",
    summary="Receive a Stripe webhook delivery",
    openapi_extra={"security": []},
    response_model=DeliveryReceived,
    responses={413: {"description": "The body is over the size limit."}},
)
async def receive_delivery(
    connection_id: ConnectionId, request: Request, app: RootApp
) -> JSONResponse:
    """Where Stripe sends the connection's events. Verified by the `Stripe-Signature`
    header (no credentials); a verified event asks for an incremental run of each
    enabled incremental pipeline of the connection, coalesced, and is answered at once."""
    payload = await _body(request, DeliveryLimits().max_body_bytes)
    if payload is None:
        return await _too_large(request, app, connection_id)
    signature, clock = request.headers.get("stripe-signature"), SystemClock()
    # Verified first, then limited, each kind on its own: forged deliveries use up only
    # the refusals' bucket, never Stripe's (a flood of them got Stripe's own 429s).
    if NUL in connection_id:  # no connection has one (and no database keeps one)
        return _refused(request, app, connection_id, "no connection has this id", known=False)
    try:
        verified = await run_in_threadpool(check, app, connection_id, payload, signature, clock)
    except BadSignature as exc:
        known = isinstance(exc, Refused)  # judged by a connection's stored secret
        if isinstance(exc, Refused):  # the connection's status shows it
            _count(request, exc.connection_id, exc.since, exc.reason)
        return _refused(request, app, connection_id, exc.message, known=known)
    wait = _limiter(request, app, "accepted").take(connection_id, known=True)
    if wait > 0:
        return _rate_limited(wait)
    done = await run_in_threadpool(record, app, verified, clock)
    answer = DeliveryReceived(
        received=True,
        duplicate=done.duplicate,
        event_id=done.event_id,
        runs_requested=len(done.pipelines),
    )
    return JSONResponse(answer.model_dump())


@settings.get("/connections/{connection_id}/webhook", summary="Show a connection's webhook")
def show_webhook(connection_id: ConnectionId, app: WorkspaceApp) -> WebhookPublic:
    """The receiver's path (and full URL once known), the Stripe endpoint and its status
    at Stripe, the masked signing secret, when the last verified delivery arrived, and
    the deliveries refused since the secret was stored (how many, the latest's time and
    reason; counted within about a second)."""
    return WebhookPublic(**endpoints.show(app, connection_id, at_stripe=True).public())


@settings.post("/connections/{connection_id}/webhook", summary="Register the webhook with Stripe")
def register_webhook(
    connection_id: ConnectionId, body: WebhookRegister, app: WorkspaceApp
) -> WebhookPublic:
    """Create the endpoint at Stripe (customer events, API version pinned) pointing at
    `url` + the receiver's path, and store its signing secret encrypted. The key needs
    Webhook Endpoints: Write; without it the error says how to make one by hand."""
    return WebhookPublic(**endpoints.register(app, connection_id, body.url).public())


@settings.put(
    "/connections/{connection_id}/webhook/secret",
    summary="Store a hand-made endpoint's signing secret",
)
def set_webhook_secret(
    connection_id: ConnectionId, body: WebhookSecret, app: WorkspaceApp
) -> WebhookPublic:
    """For an endpoint made in the Stripe Dashboard: its signing secret (`whsec_…`),
    stored encrypted and shown only masked."""
    secret = body.secret.get_secret_value()
    return WebhookPublic(**endpoints.set_secret(app, connection_id, secret, body.url).public())


@settings.delete("/connections/{connection_id}/webhook", summary="Remove the webhook")
def remove_webhook(connection_id: ConnectionId, app: WorkspaceApp) -> WebhookPublic:
    """Delete the endpoint at Stripe (when Headwater made it) and forget the secret;
    later deliveries are refused. Answers with the settings as they were."""
    return WebhookPublic(**endpoints.remove(app, connection_id).public())
