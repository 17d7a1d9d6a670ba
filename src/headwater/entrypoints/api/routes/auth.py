"""``/auth``: sign in, sign out, who am I, choose the session's workspace."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from headwater.entrypoints.api.deps import (
    CheckedInput,
    CurrentPrincipal,
    NoNul,
    RootApp,
    cross_site,
    forget_session_cookie,
    session_from,
    set_session_cookie,
)
from headwater.entrypoints.api.json_route import StrictJsonRoute
from headwater.entrypoints.api.models import (
    LoginCreate,
    MePublic,
    UserPublic,
    WorkspaceChoice,
    WorkspacePublic,
)
from headwater.kernel.errors import Forbidden
from headwater.services.app import App
from headwater.services.auth import Principal, sessions, users, workspaces

router = APIRouter(route_class=StrictJsonRoute, prefix="/auth", tags=["auth"])


def _me(app: App, caller: Principal) -> MePublic:
    user = None if caller.user_id is None else users.get_user(app, caller.user_id)
    return MePublic(
        user=None if user is None else UserPublic.of(user),
        workspace=WorkspacePublic.of(workspaces.get_workspace(app, caller.workspace_id)),
        authenticated_by="token" if caller.token_id is not None else "session",
    )


@router.post("/login", summary="Sign in", dependencies=[NoNul])
def login(body: LoginCreate, request: Request, response: Response, app: RootApp) -> MePublic:
    """Check the email and password and open a session: the ``headwater_session`` cookie
    (HttpOnly, SameSite=Lax, Secure over https). Failed attempts are limited per account
    and per address (429 with ``Retry-After``). The session acts on the user's first
    workspace; `POST /auth/workspace` chooses another."""
    if cross_site(request):
        raise Forbidden("sign in from this site's own sign-in page")
    address = request.client.host if request.client else "unknown"
    raw, session = sessions.sign_in(
        app, body.email, body.password.get_secret_value(), address=address
    )
    set_session_cookie(response, request, raw)
    caller = Principal(session.workspace_id, user_id=session.user_id, session_id=session.id)
    return _me(app, caller)


@router.post("/logout", status_code=204, summary="Sign out")
def logout(request: Request, app: RootApp, caller: CurrentPrincipal) -> Response:
    """Revoke the session: its cookie is refused from now on, and the browser is told to
    forget it. With an API token, nothing is revoked (revoke the token instead)."""
    raw = session_from(request)
    if caller.session_id is not None and raw:
        sessions.sign_out(app, raw)
    response = Response(status_code=204)
    forget_session_cookie(response, request)
    return response


@router.get("/me", summary="Who am I")
def me(app: RootApp, caller: CurrentPrincipal) -> MePublic:
    """The signed-in user (or none, for an API token) and the workspace acted on."""
    return _me(app, caller)


@router.post("/workspace", summary="Choose the session's workspace", dependencies=[CheckedInput])
def choose_workspace(
    body: WorkspaceChoice, request: Request, app: RootApp, caller: CurrentPrincipal
) -> MePublic:
    """Make the session act on another of the user's workspaces (404 for a workspace the
    user is not a member of). An API token always acts on its own workspace (403)."""
    raw = session_from(request)
    if caller.session_id is None or not raw:
        raise Forbidden("an API token acts on its own workspace; sign in to choose one")
    session = sessions.choose_workspace(app, raw, body.workspace_id)
    return _me(app, Principal(session.workspace_id, session.user_id, None, session.id))
