"""Stripe connections: the key is checked, verified live, encrypted, then saved.

Every change that touches how Stripe is reached (a new key, a new base URL) is verified
live before anything is saved, so a connection never holds a key or a URL that did not
work when it was set.  A key Stripe rejects or that lacks Customers: Read is bad input
at ``api_key`` (`InvalidInput`), whatever entry point sent it.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from headwater.adapters.connectors.contract import PermissionMissing
from headwater.adapters.connectors.stripe import (
    STRIPE,
    InvalidKey,
    StripeSettings,
    StripeSource,
    check_key_format,
    verify_key,
    webhook_endpoints,
)
from headwater.adapters.connectors.stripe.keys import KeyAccess, is_live_key
from headwater.adapters.store import objects
from headwater.adapters.store import webhooks as webhook_rows
from headwater.adapters.store.webhooks import WebhookEndpoint
from headwater.kernel.entities import Connection, new_id, utcnow
from headwater.kernel.errors import HeadwaterError, InvalidInput, mask_secret
from headwater.services.app import App
from headwater.services.auth.names import checked_name
from headwater.services.text import known_id, refuse_nul
from headwater.services.webhooks import lookup

STRIPE_API = "https://api.stripe.com"
MAX_REQUESTS_PER_SECOND = float(
    STRIPE.settings_schema["properties"]["requests_per_second"]["maximum"]
)
#: One request every ten seconds: a budget of 5e-324 requests/s spaced two requests by
#: an infinite time, and the run or check failed on an OverflowError (a 500).
MIN_REQUESTS_PER_SECOND = float(
    STRIPE.settings_schema["properties"]["requests_per_second"]["minimum"]
)


def add_stripe(
    app: App,
    name: str,
    api_key: str,
    base_url: str = STRIPE_API,
    requests_per_second: float = 20.0,
) -> Connection:
    """Verify `api_key` against Stripe and save the connection with the key encrypted."""
    name = _check_name(name)
    requests_per_second = _check_rate(requests_per_second)
    api_key = api_key.strip()
    check_key_format(api_key)
    base_url = _check_base_url(base_url)
    access = _verified(app, base_url, api_key)
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
        account_id=access.account_id,
    )
    return objects.add(app.engine, connection)


def _check_name(name: str) -> str:
    """The rule of every name shown in tables and pages (`names.checked_name`): a
    connection had its own, which let an escape sequence or a newline in."""
    return checked_name(refuse_nul(name, "name"), "connection")


def _check_rate(requests_per_second: float) -> float:
    if not MIN_REQUESTS_PER_SECOND <= requests_per_second <= MAX_REQUESTS_PER_SECOND:
        raise InvalidInput(
            f"must be from {MIN_REQUESTS_PER_SECOND:g} to {MAX_REQUESTS_PER_SECOND:g} "
            "requests per second",
            "requests_per_second",
        )
    return float(requests_per_second)


def _check_base_url(base_url: str) -> str:
    """`base_url` without a trailing slash; `InvalidInput` unless an http(s) URL without
    login details.

    A username or password in it (``https://user:password@host``) was kept and shown in
    plain text (the key beside it is encrypted and masked) and repeated by a failed
    check: it is refused, and neither it nor the URL is repeated in the error."""
    url = refuse_nul(base_url, "base_url").strip().rstrip("/")
    parts = urlsplit(url)
    if "@" in parts.netloc or (not parts.netloc and "@" in url):
        raise InvalidInput(
            "must not carry a username or password (user:password@host); give the URL "
            f"alone, such as {STRIPE_API}: the API key is given apart and kept encrypted",
            "base_url",
        )
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput(
            f"must be an http:// or https:// URL such as {STRIPE_API}; got {base_url!r}",
            "base_url",
        )
    return url


def _verified(app: App, base_url: str, api_key: str) -> KeyAccess:
    """The key's access, checked live; a key Stripe refuses is bad input at ``api_key``
    (Stripe's answer is kept in the message, with its Request-Id)."""
    try:
        return verify_key(base_url, api_key, proxy=app.settings.proxy_for(base_url))
    except (InvalidKey, PermissionMissing) as exc:
        raise InvalidInput(exc.message, "api_key") from exc


def _mode(live: bool) -> str:
    return "live mode" if live else "test mode"


def _same_account(connection: Connection, api_key: str, access: KeyAccess) -> None:
    """`InvalidInput` at ``api_key`` unless the new key reads the connection's account in
    its mode.  Its pipelines' identities are that account's customers and their saved
    positions that account's event ids, and its webhook endpoint is registered there:
    a key of another account (or the other mode: live and test are two sets of
    customers and events) would read on from a position in another stream and keep
    the old account's customers.  Such a key is a new connection."""
    was_live, is_live = is_live_key(connection.api_key_masked), is_live_key(api_key)
    before = connection.account_id
    if was_live == is_live and (before is None or access.account_id in (None, before)):
        return
    old = f"{before} in {_mode(was_live)}" if before else _mode(was_live)
    new = f"{access.account_id} in {_mode(is_live)}" if access.account_id else _mode(is_live)
    raise InvalidInput(
        f"this key reads Stripe {new}, not what connection {connection.id} reads ({old}): "
        "its pipelines imported those customers and follow those events, and its webhook "
        f"is registered there. Give a key of {old}, or add a connection for the other "
        "(`headwater connections add stripe`, or POST /connections)",
        "api_key",
    )


def _take_key(app: App, connection: Connection, api_key: str, access: KeyAccess) -> list[str]:
    """Keep `api_key` (checked by `_same_account`) and what it can do; the fields set."""
    connection.api_key_encrypted = app.cipher.encrypt(api_key, context=connection.id)
    connection.api_key_masked = mask_secret(api_key)
    connection.livemode = access.livemode
    connection.events_read = access.events_read
    connection.account_id = access.account_id or connection.account_id
    return ["api_key_encrypted", "api_key_masked", "livemode", "events_read", "account_id"]


def rotate_key(app: App, connection_id: str, api_key: str) -> Connection:
    """Replace the connection's key with `api_key`, verified live first (at the
    connection's base URL) and refused when it is of another account or mode
    (`_same_account`); the permissions shown follow the new key."""
    connection = get_connection(app, connection_id)
    api_key = api_key.strip()
    check_key_format(api_key)
    access = _verified(app, connection.base_url, api_key)
    _same_account(connection, api_key, access)
    fields = _take_key(app, connection, api_key, access)
    return objects.save(app.engine, connection, only=fields)


def update_connection(
    app: App,
    connection_id: str,
    *,
    name: str | None = None,
    base_url: str | None = None,
    requests_per_second: float | None = None,
    api_key: str | None = None,
) -> Connection:
    """Rename the connection, or change its base URL or request budget (``None`` keeps
    a field); a new budget applies from the next request a run makes.

    A new base URL comes with the API key, verified live there before both are kept:
    the saved key is only ever sent to the URL it was verified with (sending it to a
    URL named by the change handed the secret to whoever answered there).  The key
    must be of the connection's account and mode (`_same_account`)."""
    connection = get_connection(app, connection_id)
    moving = base_url is not None and _check_base_url(base_url) != connection.base_url
    if api_key is not None and not moving:  # taken silently, it changed nothing
        raise InvalidInput(
            "the API key comes with a new Stripe API URL only; to replace the key, rotate "
            f"it (`headwater connections rotate-key {connection.id}`, or POST "
            f"/connections/{connection.id}/rotate-key): it is verified with Stripe first",
            "api_key",
        )
    if name is not None:
        connection.name = _check_name(name)
    if requests_per_second is not None:
        connection.requests_per_second = _check_rate(requests_per_second)
    fields = ["name", "base_url", "requests_per_second"]
    if base_url is not None and moving:
        url = _check_base_url(base_url)
        if api_key is None:
            raise InvalidInput(
                "a new Stripe API URL needs the API key with it (the saved key is only "
                "sent to the URL it was verified with)",
                "api_key",
            )
        api_key = api_key.strip()
        check_key_format(api_key)
        access = _verified(app, url, api_key)
        _same_account(connection, api_key, access)
        connection.base_url = url
        fields += _take_key(app, connection, api_key, access)
    return objects.save(app.engine, connection, only=fields)


def moves_base_url(app: App, connection_id: str, base_url: str) -> bool:
    """Whether `base_url` differs from the connection's (then `update_connection` needs
    the API key with it)."""
    return _check_base_url(base_url) != get_connection(app, connection_id).base_url


def list_connections(app: App) -> list[Connection]:
    return objects.find(app.engine, Connection, workspace_id=app.workspace_id)


def get_connection(app: App, connection_id: str) -> Connection:
    connection_id = known_id(connection_id, "connection")
    return objects.get(app.engine, Connection, connection_id, app.workspace_id)


def delete_connection(app: App, connection_id: str) -> str | None:
    """Delete a connection no pipeline uses, with its webhook settings; the webhook
    endpoint Headwater registered is deleted at Stripe too.  That is best effort: the
    connection is deleted whatever Stripe answers, and the note returned says what to
    remove by hand in the Stripe Dashboard (None when nothing is left to do)."""
    connection = get_connection(app, connection_id)
    endpoint = webhook_rows.get_endpoint(app.engine, connection.id)
    # One transaction: the webhook settings go with the connection (the foreign key
    # cascades), or nothing goes (`Conflict` while a pipeline uses it).
    objects.remove(app.engine, Connection, connection.id)
    lookup.forget(app, connection.id)  # its deliveries are refused at once here
    return None if endpoint is None else _remove_at_stripe(app, connection, endpoint)


def _remove_at_stripe(app: App, connection: Connection, endpoint: WebhookEndpoint) -> str | None:
    """Delete the connection's endpoint at Stripe; what to do by hand if that failed
    (the key is decrypted only for this: a key that no longer decrypts, after the
    secret key changed, must not keep the connection from being deleted)."""
    where = "in the Stripe Dashboard (Developers, Webhooks)"
    if endpoint.stripe_endpoint_id is None:  # made by hand: Headwater cannot see it
        return (
            f"the webhook endpoint {endpoint.url or 'made by hand for this connection'} "
            f"still exists at Stripe: delete it {where}"
        )
    try:
        key = app.cipher.decrypt(connection.api_key_encrypted, context=connection.id)
        webhook_endpoints.delete_endpoint(
            connection.base_url, key, endpoint.stripe_endpoint_id, timeout=10.0, retries=1
        )
    except HeadwaterError as exc:
        return (
            f"Stripe did not delete webhook endpoint {endpoint.stripe_endpoint_id} "
            f"({exc.message}): delete it {where}"
        )
    return None


# A glance (a sample taken while a pipeline is saved) must not keep the user waiting
# through a run's full retry budget when Stripe is down: one retry, a short timeout.
GLANCE_RETRIES = 1
GLANCE_TIMEOUT = 10.0


def open_source(app: App, connection: Connection, *, glance: bool = False) -> StripeSource:
    """A source reading `connection`; ``glance=True`` gives up quickly (see above)."""
    key = app.cipher.decrypt(connection.api_key_encrypted, context=connection.id)
    # Every run and check of the connection in this installation shares its budget.
    budget = str(app.settings.home / "budgets" / connection.id)
    proxy = app.settings.proxy_for(connection.base_url)
    if glance:
        settings = StripeSettings(
            base_url=connection.base_url,
            api_key=key,
            requests_per_second=connection.requests_per_second,
            max_retries=GLANCE_RETRIES,
            timeout=GLANCE_TIMEOUT,
            budget_file=budget,
            proxy=proxy,
        )
    else:
        settings = StripeSettings(
            base_url=connection.base_url,
            api_key=key,
            requests_per_second=connection.requests_per_second,
            workers=app.settings.stripe_max_in_flight,
            budget_file=budget,
            proxy=proxy,
        )
    return StripeSource(settings)
