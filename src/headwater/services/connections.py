"""Stripe connections: the key is checked, verified live, encrypted, then saved."""

from __future__ import annotations

from headwater.adapters.connectors.stripe import (
    STRIPE,
    StripeSettings,
    StripeSource,
    check_key_format,
    verify_key,
)
from headwater.adapters.store import objects
from headwater.kernel.entities import Connection, Pipeline, new_id, utcnow
from headwater.kernel.errors import Conflict, InvalidInput, mask_secret
from headwater.services.app import App

STRIPE_API = "https://api.stripe.com"
MAX_REQUESTS_PER_SECOND = float(
    STRIPE.settings_schema["properties"]["requests_per_second"]["maximum"]
)


def add_stripe(
    app: App,
    name: str,
    api_key: str,
    base_url: str = STRIPE_API,
    requests_per_second: float = 20.0,
) -> Connection:
    """Verify `api_key` against Stripe and save the connection with the key encrypted."""
    name = name.strip()
    if not name:
        raise InvalidInput("a connection needs a name", "name")
    if not 0 < requests_per_second <= MAX_REQUESTS_PER_SECOND:
        raise InvalidInput(
            f"must be more than 0 and at most {MAX_REQUESTS_PER_SECOND} requests per second",
            "requests_per_second",
        )
    api_key = api_key.strip()
    check_key_format(api_key)
    base_url = base_url.rstrip("/")
    access = verify_key(base_url, api_key)
    conn_id = new_id("conn")
    connection = Connection(
        id=conn_id,
        workspace_id=app.workspace().id,
        name=name,
        kind="stripe",
        base_url=base_url,
        requests_per_second=requests_per_second,
        api_key_encrypted=app.cipher.encrypt(api_key, context=conn_id),
        api_key_masked=mask_secret(api_key),
        livemode=access.livemode,
        events_read=access.events_read,
        created_at=utcnow(),
    )
    return objects.add(app.engine, connection)


def list_connections(app: App) -> list[Connection]:
    return objects.find(app.engine, Connection, workspace_id=app.workspace().id)


def get_connection(app: App, connection_id: str) -> Connection:
    return objects.get(app.engine, Connection, connection_id, app.workspace().id)


def delete_connection(app: App, connection_id: str) -> None:
    get_connection(app, connection_id)
    used = objects.find(app.engine, Pipeline, connection_id=connection_id)
    if used:
        names = ", ".join(p.id for p in used)
        raise Conflict(
            f"connection {connection_id} is used by pipelines {names}; delete them first"
        )
    objects.remove(app.engine, Connection, connection_id)


# A glance (a sample taken while a pipeline is saved) must not keep the user waiting
# through a run's full retry budget when Stripe is down: one retry, a short timeout.
GLANCE_RETRIES = 1
GLANCE_TIMEOUT = 10.0


def open_source(app: App, connection: Connection, *, glance: bool = False) -> StripeSource:
    """A source reading `connection`; ``glance=True`` gives up quickly (see above)."""
    key = app.cipher.decrypt(connection.api_key_encrypted, context=connection.id)
    if glance:
        settings = StripeSettings(
            base_url=connection.base_url,
            api_key=key,
            requests_per_second=connection.requests_per_second,
            max_retries=GLANCE_RETRIES,
            timeout=GLANCE_TIMEOUT,
        )
    else:
        settings = StripeSettings(
            base_url=connection.base_url,
            api_key=key,
            requests_per_second=connection.requests_per_second,
            workers=app.settings.stripe_max_in_flight,
        )
    return StripeSource(settings)
