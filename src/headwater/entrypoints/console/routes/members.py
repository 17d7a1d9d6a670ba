"""Members and invitations: the workspace's members and the invitations it sent
("Members"), and the signed-in user's own invitations to other workspaces
("Invitations"), each calling the same service as ``/users`` and ``/invitations``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from headwater.entrypoints.console.web import (
    CurrentViewer,
    Viewer,
    redirect_telling,
    render,
    root_app,
)
from headwater.kernel.errors import InvalidInput
from headwater.services.auth import invitations, workspaces

router = APIRouter()


def _members_page(
    request: Request, who: Viewer, error: str | None = None, typed: str = "", status: int = 200
) -> Response:
    found, more = invitations.list_invitations(who.app)
    return render(
        request,
        "members.html",
        who,
        status=status,
        members=workspaces.members(who.app),
        invitations=invitations.documents(who.app, found),
        more=more,
        error=error,
        typed=typed,
    )


@router.get("/members")
def members_page(request: Request, who: CurrentViewer) -> Response:
    return _members_page(request, who)


@router.post("/members")
def invite(request: Request, who: CurrentViewer, email: Annotated[str, Form()] = "") -> Response:
    """The same answer whether the email has an account or not (see `invitations`)."""
    try:
        invited = invitations.invite(who.app, email, invited_by=who.principal.user_id)
    except InvalidInput as exc:
        return _members_page(request, who, exc.message, email.replace("\x00", ""), 400)
    told = f"Invited {invited.email}: a member once they accept, within 7 days"
    return redirect_telling(request, who, "/members", told)


@router.post("/members/invitations/{invitation_id}/revoke")
def revoke(request: Request, invitation_id: str, who: CurrentViewer) -> Response:
    revoked = invitations.revoke(who.app, invitation_id)
    return redirect_telling(request, who, "/members", f"Invitation of {revoked.email} revoked")


@router.get("/invitations")
def invitations_page(request: Request, who: CurrentViewer) -> Response:
    assert who.principal.user_id is not None  # a page's viewer is a signed-in user
    mine = invitations.pending(root_app(request), who.principal.user_id)
    return render(
        request, "invitations.html", who, invitations=invitations.documents(who.app, mine)
    )


def _answer(request: Request, who: Viewer, invitation_id: str, accept: bool) -> Response:
    assert who.principal.user_id is not None
    app, user_id = root_app(request), who.principal.user_id
    if accept:
        done = invitations.accept(app, user_id, invitation_id)
    else:
        done = invitations.decline(app, user_id, invitation_id)
    name = invitations.documents(app, [done])[0]["workspace_name"]
    if not accept:
        return redirect_telling(request, who, "/invitations", f"Invitation to {name} declined")
    told = f"You are now a member of {name}: choose it with the Workspace switcher"
    return redirect_telling(request, who, "/invitations", told)


@router.post("/invitations/{invitation_id}/accept")
def accept(request: Request, invitation_id: str, who: CurrentViewer) -> Response:
    return _answer(request, who, invitation_id, accept=True)


@router.post("/invitations/{invitation_id}/decline")
def decline(request: Request, invitation_id: str, who: CurrentViewer) -> Response:
    return _answer(request, who, invitation_id, accept=False)
