"""A source's Settings tab: rename, rotate the key, the webhook (near-real-time imports,
DESIGN.md §11) and, in a danger zone, delete.

The webhook part calls `services.webhooks.endpoints`, as the API's
``/connections/{id}/webhook`` routes and ``headwater connections webhook`` do: register
the endpoint with Stripe from a public base URL, store the signing secret of an endpoint
made by hand, remove it. The secret is never shown, only masked.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from headwater.adapters.connectors.contract import PermissionMissing
from headwater.entrypoints.console.flash import Kind
from headwater.entrypoints.console.web import CurrentViewer, Viewer, redirect_telling, render
from headwater.kernel.entities import Connection
from headwater.kernel.errors import HeadwaterError, InvalidInput, NotFound
from headwater.services import connections
from headwater.services.webhooks import endpoints

router = APIRouter()


def _webhook(request: Request, who: Viewer, conn: Connection) -> dict[str, Any]:
    """What the Webhook section shows: the settings, the URL Stripe must post to (as
    registered, else as this browser reaches the service) and the base URL to offer."""
    hook = endpoints.show(who.app, conn.id, at_stripe=True)
    here = str(request.base_url).rstrip("/")
    url = hook.endpoint.url if hook.endpoint and hook.endpoint.url else here + hook.path
    return {
        "hook": hook.public(),
        "endpoint": hook.endpoint,
        "receiver_url": url,
        "public_base": url.removesuffix(hook.path) or here,
    }


def _settings_page(
    request: Request,
    who: Viewer,
    conn: Connection,
    errors: dict[str, str],
    status: int = 200,
    typed: dict[str, str] | None = None,
) -> Response:
    """The tab; after a refused change, with the reason by its field and what was typed
    in it (never a key or a secret)."""
    return render(
        request,
        "connection_settings.html",
        who,
        status=status,
        connection=conn,
        tab="settings",
        errors=errors,
        typed=typed or {},
        events=endpoints.EVENTS,
        **_webhook(request, who, conn),
    )


@router.get("/connections/{connection_id}/settings")
def settings_tab(request: Request, connection_id: str, who: CurrentViewer) -> Response:
    conn = connections.get_connection(who.app, connection_id)
    return _settings_page(request, who, conn, {})


def _refused(
    request: Request,
    who: Viewer,
    connection_id: str,
    field: str,
    message: str,
    typed: str | None = None,
) -> Response:
    """The tab again with `message` at `field`, which keeps `typed` (what was sent)."""
    conn = connections.get_connection(who.app, connection_id)
    kept = {field: typed} if typed is not None else {}
    return _settings_page(request, who, conn, {field: message}, 400, kept)


def _here(connection_id: str) -> str:
    return f"/connections/{connection_id}/settings"


@router.post("/connections/{connection_id}/rename")
def rename_connection(
    request: Request, connection_id: str, who: CurrentViewer, name: Annotated[str, Form()] = ""
) -> Response:
    try:
        conn = connections.update_connection(who.app, connection_id, name=name)
    except InvalidInput as exc:
        return _refused(request, who, connection_id, "name", exc.message, name)
    return redirect_telling(request, who, _here(conn.id), f"Renamed to “{conn.name}”")


@router.post("/connections/{connection_id}/rotate-key")
def rotate_key(
    request: Request,
    connection_id: str,
    who: CurrentViewer,
    api_key: Annotated[str, Form()] = "",
) -> Response:
    try:
        conn = connections.rotate_key(who.app, connection_id, api_key)
    except HeadwaterError as exc:
        return _refused(request, who, connection_id, "api_key", exc.message)
    told = f"API key replaced: now {conn.api_key_masked}"
    return redirect_telling(request, who, _here(conn.id), told)


@router.post("/connections/{connection_id}/webhook/register")
def register_webhook(
    request: Request, connection_id: str, who: CurrentViewer, url: Annotated[str, Form()] = ""
) -> Response:
    try:
        hook = endpoints.register(who.app, connection_id, url)
    except PermissionMissing as exc:
        message = (
            f"This API key lacks {exc.permission}, so Headwater cannot register the "
            "endpoint with Stripe. Grant that permission to the key, or set the endpoint "
            "up by hand (below) and paste its signing secret."
        )
        return _refused(request, who, connection_id, "url", message, url)
    except HeadwaterError as exc:
        return _refused(request, who, connection_id, "url", exc.message, url)
    found = hook.endpoint
    told = f"Registered with Stripe as {found.stripe_endpoint_id if found else 'an endpoint'}"
    if hook.warning:
        told += f"; {hook.warning}"
    return redirect_telling(request, who, _here(hook.connection_id), told)


@router.post("/connections/{connection_id}/webhook/secret")
def set_webhook_secret(
    request: Request, connection_id: str, who: CurrentViewer, secret: Annotated[str, Form()] = ""
) -> Response:
    try:
        hook = endpoints.set_secret(who.app, connection_id, secret)
    except HeadwaterError as exc:
        return _refused(request, who, connection_id, "secret", exc.message)
    masked = hook.endpoint.secret_masked if hook.endpoint else "—"
    told = f"Signing secret saved ({masked}): deliveries signed with it are accepted"
    return redirect_telling(request, who, _here(hook.connection_id), told)


@router.post("/connections/{connection_id}/webhook/remove")
def remove_webhook(request: Request, connection_id: str, who: CurrentViewer) -> Response:
    conn = connections.get_connection(who.app, connection_id)
    try:
        removed = endpoints.remove(who.app, conn.id)
    except NotFound:
        return redirect_telling(request, who, _here(conn.id), "There is no webhook to remove")
    except HeadwaterError as exc:
        return _refused(request, who, conn.id, "remove", exc.message)
    made = removed.endpoint.stripe_endpoint_id if removed.endpoint else None
    where = f" (endpoint {made} deleted at Stripe)" if made else ""
    return redirect_telling(request, who, _here(conn.id), f"Webhook removed{where}")


@router.post("/connections/{connection_id}/delete")
def delete_connection(
    request: Request, connection_id: str, who: CurrentViewer, confirm: Annotated[str, Form()] = ""
) -> Response:
    conn = connections.get_connection(who.app, connection_id)
    try:
        if confirm != conn.name:
            raise InvalidInput("type the source's name to delete it", "confirm")
        left = connections.delete_connection(who.app, conn.id)
    except HeadwaterError as exc:
        return _refused(request, who, conn.id, "delete", exc.message)
    told = f"Source “{conn.name}” deleted"
    if left is None:
        return redirect_telling(request, who, "/sources", told)
    return redirect_telling(request, who, "/sources", f"{told}. {left}", Kind.WARNING)
