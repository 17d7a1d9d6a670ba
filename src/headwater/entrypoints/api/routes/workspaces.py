"""``/workspaces``: the caller's workspaces (list, show, create)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from headwater.entrypoints.api.deps import CheckedInput, CurrentPrincipal, RootApp
from headwater.entrypoints.api.json_route import StrictJsonRoute
from headwater.entrypoints.api.models import WorkspaceCreate, WorkspaceList, WorkspacePublic
from headwater.entrypoints.api.paging import Limit, StartingAfter, page
from headwater.kernel.entities import Workspace
from headwater.kernel.errors import Forbidden, NotFound
from headwater.services.app import App
from headwater.services.auth import Principal, workspaces

router = APIRouter(
    route_class=StrictJsonRoute,
    dependencies=[CheckedInput],
    prefix="/workspaces",
    tags=["workspaces"],
)

WorkspaceId = Annotated[str, Path(max_length=40, description="The workspace's id (`ws_…`).")]


def _mine(app: App, caller: Principal) -> list[Workspace]:
    """A user's workspaces; a token's own one. Newest first."""
    if caller.user_id is None:
        return [workspaces.get_workspace(app, caller.workspace_id)]
    return workspaces.workspaces_of(app, caller.user_id)[::-1]


@router.get("", summary="List my workspaces")
def list_workspaces(
    app: RootApp,
    caller: CurrentPrincipal,
    limit: Limit = 20,
    starting_after: StartingAfter = None,
) -> WorkspaceList:
    """The signed-in user's workspaces (an API token's: its own), newest first."""
    found, has_more = page(_mine(app, caller), limit, starting_after, lambda w: w.id)
    return WorkspaceList(data=[WorkspacePublic.of(w) for w in found], has_more=has_more)


@router.get("/{workspace_id}", summary="Show a workspace")
def show_workspace(
    workspace_id: WorkspaceId, app: RootApp, caller: CurrentPrincipal
) -> WorkspacePublic:
    """One of the caller's workspaces (404 for any other)."""
    for workspace in _mine(app, caller):
        if workspace.id == workspace_id:
            return WorkspacePublic.of(workspace)
    raise NotFound(f"no workspace with id {workspace_id!r}")


@router.post("", status_code=201, summary="Create a workspace")
def create_workspace(
    body: WorkspaceCreate, app: RootApp, caller: CurrentPrincipal
) -> WorkspacePublic:
    """A new workspace (its own Customer Model, warehouse, connections, pipelines and
    tokens) with the signed-in user as its member; choose it with
    `POST /auth/workspace`. API tokens cannot create workspaces (403): a token belongs
    to one workspace and could never reach the new one."""
    if caller.user_id is None:
        raise Forbidden("sign in to create a workspace (or use `headwater workspaces add`)")
    return WorkspacePublic.of(workspaces.add_workspace(app, body.name, member_id=caller.user_id))
