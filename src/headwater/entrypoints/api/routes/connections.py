"""``/connections``: Stripe accounts (create with the live key check, list, show
masked, rotate the key, change the base URL and request budget, delete)."""

from __future__ import annotations

from fastapi import APIRouter

from headwater.entrypoints.api.deps import CheckedInput, WorkspaceApp
from headwater.entrypoints.api.json_route import StrictJsonRoute
from headwater.entrypoints.api.paging import Limit, StartingAfter, page
from headwater.entrypoints.api.params import (
    ConnectionId,
)
from headwater.entrypoints.api.schemas.connections import (
    ConnectionCreate,
    ConnectionList,
    ConnectionPublic,
    ConnectionUpdate,
    Deleted,
    KeyRotation,
)
from headwater.kernel.entities import Connection
from headwater.services import connections

router = APIRouter(
    route_class=StrictJsonRoute,
    dependencies=[CheckedInput],
    prefix="/connections",
    tags=["connections"],
)


def _public(connection: Connection) -> ConnectionPublic:
    return ConnectionPublic.model_validate(connection.public())


@router.post("", status_code=201, summary="Add a connection")
def create_connection(body: ConnectionCreate, app: WorkspaceApp) -> ConnectionPublic:
    """Verify the key with Stripe (a malformed, rejected or under-permitted key is a 422
    at `api_key` with Stripe's own words), then save the connection with the key
    encrypted. Stripe unreachable: 503, nothing saved."""
    connection = connections.add_stripe(
        app,
        body.name,
        body.api_key.get_secret_value(),
        body.base_url,
        body.requests_per_second,
    )
    return _public(connection)


@router.get("", summary="List connections")
def list_connections(
    app: WorkspaceApp, limit: Limit = 20, starting_after: StartingAfter = None
) -> ConnectionList:
    """The workspace's connections, newest first (keys masked)."""
    found = connections.list_connections(app)[::-1]
    items, has_more = page(found, limit, starting_after, lambda c: c.id)
    return ConnectionList(data=[_public(c) for c in items], has_more=has_more)


@router.get("/{connection_id}", summary="Show a connection")
def show_connection(connection_id: ConnectionId, app: WorkspaceApp) -> ConnectionPublic:
    """One connection, its key masked."""
    return _public(connections.get_connection(app, connection_id))


@router.patch("/{connection_id}", summary="Change a connection")
def update_connection(
    connection_id: ConnectionId, body: ConnectionUpdate, app: WorkspaceApp
) -> ConnectionPublic:
    """Rename it, or change its base URL (with the API key, verified there first: the
    saved key is never sent to a new URL) or its request budget. Absent fields are kept."""
    connection = connections.update_connection(
        app,
        connection_id,
        name=body.name,
        base_url=body.base_url,
        requests_per_second=body.requests_per_second,
        api_key=body.api_key.get_secret_value() if body.api_key is not None else None,
    )
    return _public(connection)


@router.post("/{connection_id}/rotate-key", summary="Rotate the API key")
def rotate_key(
    connection_id: ConnectionId, body: KeyRotation, app: WorkspaceApp
) -> ConnectionPublic:
    """Replace the key with a new one, verified with Stripe first; on any error the
    old key stays."""
    connection = connections.rotate_key(app, connection_id, body.api_key.get_secret_value())
    return _public(connection)


@router.delete("/{connection_id}", summary="Delete a connection")
def delete_connection(connection_id: ConnectionId, app: WorkspaceApp) -> Deleted:
    """Delete a connection that no pipeline uses (409 while one does), and its webhook
    endpoint at Stripe (best effort: `warning` says what to remove by hand)."""
    warning = connections.delete_connection(app, connection_id)
    return Deleted(id=connection_id, deleted=True, warning=warning)
