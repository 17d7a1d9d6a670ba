"""Workspaces: tenants, each with its own Customer Model, warehouse (a DuckDB file of
its own until one is set), connections, pipelines, identity settings and tokens."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from headwater.adapters.store import accounts, objects
from headwater.adapters.store.objects import aware
from headwater.kernel.entities import Workspace, new_id, utcnow
from headwater.kernel.errors import Conflict, NotFound
from headwater.kernel.model import DEFAULT_MODEL
from headwater.services.app import App
from headwater.services.auth.names import checked_name
from headwater.services.text import known_id


def add_workspace(app: App, name: str, *, member_id: str | None = None) -> Workspace:
    """Create a workspace with the default Customer Model and its own warehouse file;
    `member_id` (a user id) becomes its first member.

    Raises `InvalidInput` (field ``name``) for an empty or too long name and `Conflict`
    if the member (the operator: anyone) has a workspace of that name already.
    """
    name = checked_name(name, "workspace")
    workspace = Workspace(
        id=new_id("ws"),
        name=name,
        customer_model=DEFAULT_MODEL.as_list(),
        warehouse_url_encrypted=None,
        created_at=utcnow(),
    )
    if not accounts.add_workspace(app.engine, asdict(workspace), member_id):
        if member_id is not None:
            raise Conflict(f"you have a workspace named {name!r} already")
        raise Conflict(f"a workspace named {name!r} already exists")
    return workspace


def get_workspace(app: App, workspace_id: str) -> Workspace:
    """The workspace `workspace_id` (`NotFound` if there is none)."""
    return objects.get(app.engine, Workspace, known_id(workspace_id, "workspace"))


def workspaces_of(app: App, user_id: str) -> list[Workspace]:
    """The workspaces the user is a member of, oldest membership first."""
    found = []
    for workspace_id in accounts.workspace_ids_of(app.engine, user_id):
        try:
            found.append(objects.get(app.engine, Workspace, workspace_id))
        except NotFound:  # removed since the membership was read
            continue
    return found


def members(app: App) -> list[dict[str, Any]]:
    """`app`'s workspace's members, oldest membership first, as the API and the CLI's
    ``--json`` show them: ``{"id", "email", "member_since"}``."""
    return [
        {"id": user.id, "email": user.email, "member_since": since.isoformat()}
        for user, since in accounts.members_of(app.engine, app.workspace().id)
    ]


def list_workspaces(app: App) -> list[Workspace]:
    """Every workspace of the store, oldest first (for the operator's CLI)."""
    app.workspace()  # the default one exists from the first start
    return objects.find(app.engine, Workspace)


def document(workspace: Workspace) -> dict[str, Any]:
    """A workspace as the CLI's ``--json`` and the API show it."""
    return {
        "id": workspace.id,
        "name": workspace.name,
        "created_at": aware(workspace.created_at).isoformat(),  # type: ignore[union-attr]
    }
