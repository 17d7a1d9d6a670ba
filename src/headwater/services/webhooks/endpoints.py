"""A connection's webhook settings: register an endpoint with Stripe, store the secret
of one made by hand, remove it, show it (the URL to copy, the last delivery, and the
deliveries refused since the secret was stored: a wrong secret refuses every delivery,
and the status must say so rather than look "on").

The signing secret is encrypted at rest (bound to the connection) and only ever shown
masked.  Storing one (registering, or a hand-made endpoint's secret) asks for a run of
the connection's incremental pipelines (`followups.catch_up`): changes made while it had
no endpoint, or a secret that refused Stripe's deliveries, were never delivered.
Registration needs Webhook Endpoints: Write on the key; without it the error says how
to make the endpoint by hand instead.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from headwater.adapters.connectors.contract import PermissionMissing
from headwater.adapters.connectors.stripe import STRIPE
from headwater.adapters.connectors.stripe import webhook_endpoints as stripe_endpoints
from headwater.adapters.store import webhooks as store
from headwater.kernel.entities import Connection, utcnow
from headwater.kernel.errors import HeadwaterError, InvalidInput, NotFound, mask_secret
from headwater.services.app import App
from headwater.services.connections import get_connection
from headwater.services.text import refuse_nul
from headwater.services.webhooks import lookup, signature
from headwater.services.webhooks.followups import catch_up
from headwater.services.webhooks.limits import MAX_BODY_BYTES
from headwater.services.webhooks.receive import secret_context

RECEIVER_PATH = "/api/v1/webhooks/stripe/{connection_id}"
EVENTS = stripe_endpoints.CUSTOMER_EVENTS


@dataclass(frozen=True)
class WebhookSettings:
    """What the user sees of a connection's webhook (never the secret itself)."""

    connection_id: str
    path: str  # where Stripe must send deliveries, below the public base URL
    endpoint: store.WebhookEndpoint | None
    #: What is left to do by hand after a change that otherwise went through, or why
    #: deliveries do not come (the endpoint disabled or deleted at Stripe).
    warning: str | None = None
    #: Stripe's status of the endpoint Headwater registered, when asked (`show`):
    #: enabled, disabled, deleted, or unknown (Stripe could not say); None otherwise.
    stripe_status: str | None = None

    def public(self) -> dict[str, Any]:
        found = self.endpoint
        return {
            "connection_id": self.connection_id,
            "configured": found is not None,
            "path": self.path,
            "url": found.url if found else None,
            "stripe_endpoint_id": found.stripe_endpoint_id if found else None,
            "secret": found.secret_masked if found else None,
            "enabled_events": list(EVENTS),
            "api_version": STRIPE.api_version,
            "created_at": _iso(found.created_at) if found else None,
            "last_delivery_at": _iso(found.last_delivery_at) if found else None,
            "latest_delivery": latest_delivery(found),
            "refused_deliveries": found.refused_count if found else None,
            "last_refused_at": _iso(found.last_refused_at) if found else None,
            "last_refusal": found.last_refusal if found else None,
            "stripe_status": self.stripe_status,
            "warning": self.warning,
        }


def _iso(ts: datetime | None) -> str | None:
    return ts.isoformat() if ts is not None else None


def latest_delivery(found: store.WebhookEndpoint | None) -> str | None:
    """Whether the latest delivery was ``accepted`` or ``refused`` (refusals count from
    when the secret was stored; a rolled secret keeps the last accepted one); None
    before any."""
    if found is None:
        return None
    delivered, refused = found.last_delivery_at, found.last_refused_at
    if refused is not None and (delivered is None or refused > delivered):
        return "refused"
    return "accepted" if delivered is not None else None


#: What to do about refused deliveries, by their reason (`signature`'s fixed words).
_REFUSAL_HINTS = {
    signature.MISMATCH: (
        "the stored signing secret is not the one this endpoint's deliveries are signed "
        "with (another endpoint's secret?): store the endpoint's own (its page in the "
        "Stripe Dashboard, 'Signing secret'), or register again"
    ),
    signature.STALE: (
        "the signatures' times and this server's clock are more than "
        f"{signature.TOLERANCE_SECONDS} s apart: check the server's clock"
    ),
    signature.NOT_EVENT: "what is posted to this URL is not Stripe events",
    signature.TOO_LARGE: (
        f"bodies over {MAX_BODY_BYTES // 1024} KiB are posted to this URL (answered 413): "
        "Stripe's customer events are a few kilobytes, so something else posts here (a "
        "proxy in front sending other traffic to this path?)"
    ),
}
_OTHER_HINT = "what is posted to this URL does not carry a valid Stripe-Signature header"


def _with_refusals(settings: WebhookSettings) -> WebhookSettings:
    """A warning when the latest delivery was refused (after any other warning)."""
    found = settings.endpoint
    if found is None or latest_delivery(found) != "refused":
        return settings
    reason = found.last_refusal or "refused"
    hint = _REFUSAL_HINTS.get(reason, _OTHER_HINT)
    left = (
        f"deliveries are refused ({found.refused_count} since the secret was stored; the "
        f"latest at {_iso(found.last_refused_at)}: {reason}): {hint}"
    )
    return replace(settings, warning=f"{settings.warning}; {left}" if settings.warning else left)


def show(app: App, connection_id: str, *, at_stripe: bool = False) -> WebhookSettings:
    """The settings; `at_stripe` also asks Stripe whether the endpoint Headwater
    registered still takes deliveries (one short call: what the API, the CLI and the
    console show, as Stripe disables an endpoint whose deliveries keep failing)."""
    connection = get_connection(app, connection_id)
    path = RECEIVER_PATH.format(connection_id=connection.id)
    settings = WebhookSettings(connection.id, path, store.get_endpoint(app.engine, connection.id))
    found = settings.endpoint
    if at_stripe and found is not None and found.stripe_endpoint_id is not None:
        settings = _with_stripe_status(app, connection, settings, found.stripe_endpoint_id)
    return _with_refusals(settings)


def _with_stripe_status(
    app: App, connection: Connection, settings: WebhookSettings, endpoint_id: str
) -> WebhookSettings:
    try:
        key = app.cipher.decrypt(connection.api_key_encrypted, context=connection.id)
        status = stripe_endpoints.endpoint_status(connection.base_url, key, endpoint_id)
    except HeadwaterError as exc:
        left = f"Stripe could not be asked about endpoint {endpoint_id}: {exc.message}"
        return replace(settings, stripe_status="unknown", warning=left)
    warnings = {
        "disabled": (
            f"endpoint {endpoint_id} is disabled at Stripe (by hand, or by Stripe after "
            "its deliveries kept failing), so nothing is delivered: enable it in the "
            "Stripe Dashboard (Developers, Webhooks), or register again"
        ),
        "deleted": (
            f"endpoint {endpoint_id} no longer exists at Stripe, so nothing is delivered: "
            "register again"
        ),
    }
    return replace(settings, stripe_status=status, warning=warnings.get(status))


def receiver_url(public_base_url: str, connection_id: str) -> str:
    """The full URL Stripe posts to, from the address the service is reachable at (or
    that full URL itself, as shown to copy)."""
    base = refuse_nul(public_base_url, "url").strip().rstrip("/")
    parts = urlsplit(base)
    if "@" in parts.netloc or (not parts.netloc and "@" in base):
        # Kept in plain text and shown with the webhook: neither it nor the URL is
        # repeated (as for a connection's base URL).
        raise InvalidInput(
            "must not carry a username or password (user:password@host); give the "
            "address alone, such as https://headwater.example.com",
            "url",
        )
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput(
            f"must be the http(s) address Stripe can reach Headwater at, such as "
            f"https://headwater.example.com; got {public_base_url!r}",
            "url",
        )
    if parts.query or parts.fragment:
        raise InvalidInput("must have no query or fragment", "url")
    own = RECEIVER_PATH.format(connection_id=connection_id)
    if base.endswith(own):  # the endpoint URL itself (the console shows it to copy)
        return base
    at = (base + "/").find(RECEIVER_PATH.partition("{")[0])
    if at >= 0:  # another connection's endpoint URL: Stripe would post there
        raise InvalidInput(
            "holds the path of a webhook endpoint that is not this connection's; give "
            f"the address Headwater is reachable at, such as {base[:at]}",
            "url",
        )
    return base + own


def register(app: App, connection_id: str, public_base_url: str) -> WebhookSettings:
    """Create the endpoint at Stripe (customer events, our pinned API version) and store
    its signing secret; a previous endpoint made by Headwater is deleted at Stripe, one
    made by hand is named in the `warning` (Headwater cannot delete it)."""
    connection = get_connection(app, connection_id)
    url = receiver_url(public_base_url, connection.id)
    key = app.cipher.decrypt(connection.api_key_encrypted, context=connection.id)
    try:
        made = stripe_endpoints.create_endpoint(connection.base_url, key, url)
    except PermissionMissing as exc:
        raise PermissionMissing(
            _manual_path(exc.message, connection, url), exc.permission
        ) from None
    previous = store.get_endpoint(app.engine, connection.id)
    _save(app, connection, made.secret, made.id, made.url)
    settings = show(app, connection.id)
    if previous is None:
        return settings
    old = previous.stripe_endpoint_id
    if old is None:  # made by hand: Headwater cannot see it, let alone delete it
        left = (
            f"the endpoint made by hand ({previous.url or 'its URL as set up'}) still "
            "exists at Stripe: delete it in the Stripe Dashboard (Developers, Webhooks); "
            "its deliveries are refused from now on"
        )
        return replace(settings, warning=left)
    if old == made.id:
        return settings
    try:  # the new endpoint is made and saved: an old one left over is a note, not a failure
        stripe_endpoints.delete_endpoint(connection.base_url, key, old)
    except HeadwaterError as exc:
        left = (
            f"the previous endpoint {old} could not be deleted at Stripe ({exc.message}): "
            "delete it in the Stripe Dashboard (Developers, Webhooks); its deliveries are "
            "refused meanwhile"
        )
        return replace(settings, warning=left)
    return settings


def set_secret(
    app: App, connection_id: str, secret: str, public_base_url: str | None = None
) -> WebhookSettings:
    """Store the signing secret of an endpoint made by hand in the Stripe Dashboard."""
    connection = get_connection(app, connection_id)
    secret = secret.strip()
    if not secret.startswith("whsec_") or len(secret) < 12 or any(c.isspace() for c in secret):
        shown = mask_secret(secret) if secret else "an empty value"
        raise InvalidInput(
            f"{shown} is not a webhook signing secret: it starts with whsec_ (the "
            "endpoint's page in the Stripe Dashboard, 'Signing secret')",
            "secret",
        )
    url = receiver_url(public_base_url, connection.id) if public_base_url else None
    previous = store.get_endpoint(app.engine, connection.id)
    endpoint_id = previous.stripe_endpoint_id if previous else None
    url = url or (previous.url if previous else None)
    # A rolled secret signs the same endpoint's deliveries: its last one stays shown.
    delivered = previous.last_delivery_at if previous else None
    _save(app, connection, secret, endpoint_id, url, delivered)
    return show(app, connection.id)


def remove(app: App, connection_id: str) -> WebhookSettings:
    """Delete the endpoint at Stripe (when Headwater made it) and forget its secret;
    deliveries are refused from then on.  Returns what was removed."""
    connection = get_connection(app, connection_id)
    settings = show(app, connection.id)
    found = settings.endpoint
    if found is None:
        raise NotFound(f"connection {connection.id} has no webhook endpoint")
    if found.stripe_endpoint_id is not None:
        key = app.cipher.decrypt(connection.api_key_encrypted, context=connection.id)
        try:
            stripe_endpoints.delete_endpoint(connection.base_url, key, found.stripe_endpoint_id)
        except PermissionMissing as exc:
            raise PermissionMissing(
                f"{exc.message}. Nothing was changed: delete endpoint "
                f"{found.stripe_endpoint_id} in the Stripe Dashboard (Developers, Webhooks), "
                "or grant the permission, then remove it here again",
                exc.permission,
            ) from None
    store.delete_endpoint(app.engine, connection.id)
    lookup.forget(app, connection.id)  # refused at once by this process
    return settings


def _save(
    app: App,
    connection: Connection,
    secret: str,
    endpoint_id: str | None,
    url: str | None,
    last_delivery_at: datetime | None = None,
) -> None:
    store.save_endpoint(
        app.engine,
        store.WebhookEndpoint(
            connection_id=connection.id,
            workspace_id=connection.workspace_id,
            stripe_endpoint_id=endpoint_id,
            url=url,
            secret_encrypted=app.cipher.encrypt(secret, context=secret_context(connection.id)),
            secret_masked=mask_secret(secret),
            created_at=utcnow(),
            last_delivery_at=last_delivery_at,
        ),
    )
    lookup.forget(app, connection.id)  # this process judges by the new secret at once
    # Changes made while the connection had no endpoint (or another secret, refusing
    # Stripe's deliveries) were never delivered: a run reads them now, not at the next one.
    catch_up(app, utcnow(), connection.id)


def _manual_path(reason: str, connection: Connection, url: str) -> str:
    return (
        f"{reason}. Grant it to the key, or make the endpoint by hand: in the Stripe "
        f"Dashboard, Developers, Webhooks, 'Add endpoint' with URL {url}, API version "
        f"{STRIPE.api_version} and the events {', '.join(EVENTS)}; then store its signing "
        f"secret with `headwater connections webhook {connection.id} --secret-env VAR` "
        "(VAR holding the whsec_ secret)."
    )
