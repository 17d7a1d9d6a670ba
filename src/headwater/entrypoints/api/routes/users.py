"""``/users``: the members of the workspace the request acts on (``headwater users
list``), invite an email to it (``users invite``), list and revoke its invitations.

An invitation answers the same whether the email has an account or not (``POST
/users`` answered 409 for a taken email, ``POST /users/join`` 422 for an unknown one:
a member could learn who has an account), and it grants nothing until the invited user
accepts it (``/invitations``): ``join`` made an existing user a member at once."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from headwater.entrypoints.api.deps import CheckedInput, CurrentPrincipal, WorkspaceApp
from headwater.entrypoints.api.json_route import StrictJsonRoute
from headwater.entrypoints.api.models import (
    InvitationCreate,
    InvitationList,
    InvitationPublic,
    MemberList,
    MemberPublic,
)
from headwater.entrypoints.api.paging import Limit, StartingAfter, page
from headwater.services.auth import invitations, workspaces

router = APIRouter(
    route_class=StrictJsonRoute, dependencies=[CheckedInput], prefix="/users", tags=["users"]
)

InvitationId = Annotated[str, Path(max_length=40, description="The invitation's id (`inv_…`).")]


def _invite(app: WorkspaceApp, caller: CurrentPrincipal, email: str) -> InvitationPublic:
    invitation = invitations.invite(app, email, invited_by=caller.user_id)
    return InvitationPublic(**invitations.documents(app, [invitation])[0])


@router.get("", summary="List the workspace's members")
def list_members(
    app: WorkspaceApp, limit: Limit = 20, starting_after: StartingAfter = None
) -> MemberList:
    """The workspace's members (users who signed up to it: added to it by the operator,
    or who accepted an invitation), oldest membership first."""
    found, has_more = page(workspaces.members(app), limit, starting_after, lambda m: str(m["id"]))
    return MemberList(data=[MemberPublic(**m) for m in found], has_more=has_more)


@router.post("", status_code=202, summary="Invite a user")
def invite(body: InvitationCreate, app: WorkspaceApp, caller: CurrentPrincipal) -> InvitationPublic:
    """Invite this email to the workspace: the user whose email it is sees the
    invitation when signed in (`GET /invitations`) and becomes a member only when they
    accept it, within 7 days. The answer is the same whether or not the email has an
    account (nothing here tells); inviting a pending email again renews its
    invitation. 422 at `email` for a malformed one. Accounts themselves are made by
    the operator (`headwater users add`), never by a workspace's member."""
    return _invite(app, caller, body.email)


@router.post("/join", status_code=202, summary="Invite a user (former name)")
def join(body: InvitationCreate, app: WorkspaceApp, caller: CurrentPrincipal) -> InvitationPublic:
    """`POST /users` under its former name: an invitation, which grants nothing until
    accepted (it used to make an existing user a member at once)."""
    return _invite(app, caller, body.email)


@router.get("/invitations", summary="List the workspace's invitations")
def list_invitations(
    app: WorkspaceApp, limit: Limit = 20, starting_after: StartingAfter = None
) -> InvitationList:
    """The workspace's invitations, newest first: pending, accepted, declined, revoked
    and expired ones."""
    found, has_more = invitations.list_invitations(app, limit, starting_after)
    data = [InvitationPublic(**d) for d in invitations.documents(app, found)]
    return InvitationList(data=data, has_more=has_more)


@router.post("/invitations/{invitation_id}/revoke", summary="Revoke an invitation")
def revoke_invitation(invitation_id: InvitationId, app: WorkspaceApp) -> InvitationPublic:
    """Withdraw a pending invitation: it can no longer be accepted (404 for another
    workspace's; 409 once it was accepted or declined). Revoking twice is harmless."""
    invitation = invitations.revoke(app, invitation_id)
    return InvitationPublic(**invitations.documents(app, [invitation])[0])
