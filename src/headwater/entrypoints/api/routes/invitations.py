"""``/invitations``: the signed-in user's own invitations to other workspaces (list,
accept, decline). An API token has no person behind it: 403."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from headwater.entrypoints.api.deps import CheckedInput, CurrentPrincipal, RootApp
from headwater.entrypoints.api.json_route import StrictJsonRoute
from headwater.entrypoints.api.models import InvitationList, InvitationPublic
from headwater.kernel.errors import Forbidden
from headwater.services.auth import Principal, invitations

router = APIRouter(
    route_class=StrictJsonRoute,
    dependencies=[CheckedInput],
    prefix="/invitations",
    tags=["invitations"],
)

InvitationId = Annotated[str, Path(max_length=40, description="The invitation's id (`inv_…`).")]


def _user(caller: Principal) -> str:
    if caller.user_id is None:
        raise Forbidden("an API token has no invitations: sign in to answer yours")
    return caller.user_id


@router.get("", summary="List my invitations")
def my_invitations(app: RootApp, caller: CurrentPrincipal) -> InvitationList:
    """The signed-in user's invitations waiting for an answer (not expired), newest
    first, with the workspace each invites to and who sent it."""
    found = invitations.pending(app, _user(caller))
    data = [InvitationPublic(**d) for d in invitations.documents(app, found)]
    return InvitationList(data=data, has_more=False)


@router.post("/{invitation_id}/accept", summary="Accept an invitation")
def accept(invitation_id: InvitationId, app: RootApp, caller: CurrentPrincipal) -> InvitationPublic:
    """Become a member of the invitation's workspace (choose it with
    `POST /auth/workspace`). 404 for an invitation that is not yours; 409 for one that
    was answered, revoked or has expired."""
    invitation = invitations.accept(app, _user(caller), invitation_id)
    return InvitationPublic(**invitations.documents(app, [invitation])[0])


@router.post("/{invitation_id}/decline", summary="Decline an invitation")
def decline(
    invitation_id: InvitationId, app: RootApp, caller: CurrentPrincipal
) -> InvitationPublic:
    """Decline the invitation: it grants nothing, now or later. Errors as for accept."""
    invitation = invitations.decline(app, _user(caller), invitation_id)
    return InvitationPublic(**invitations.documents(app, [invitation])[0])
