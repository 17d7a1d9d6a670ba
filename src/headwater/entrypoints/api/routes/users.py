"""``/users``: add a user who signs in to the console and the API, or make an existing
one a member of the workspace the request acts on (``headwater users add`` and ``users
join``).  A user added or joined here gets this workspace alone: what a caller can
give away is what it holds itself."""

from __future__ import annotations

from fastapi import APIRouter

from headwater.entrypoints.api.deps import CheckedInput, WorkspaceApp
from headwater.entrypoints.api.json_route import StrictJsonRoute
from headwater.entrypoints.api.models import MemberCreate, MemberPublic, UserCreate
from headwater.kernel.accounts import User
from headwater.services.app import App
from headwater.services.auth import users

router = APIRouter(
    route_class=StrictJsonRoute, dependencies=[CheckedInput], prefix="/users", tags=["users"]
)


def _member(user: User, app: App) -> MemberPublic:
    return MemberPublic(**user.public(), workspace_id=app.workspace_id)


@router.post("", status_code=201, summary="Add a user")
def add_user(body: UserCreate, app: WorkspaceApp) -> MemberPublic:
    """A new user who signs in with this email and password, a member of this
    workspace. 422 names `email` or `password` when one is malformed or too short; 409
    when the email has an account already (`POST /users/join` makes it a member)."""
    return _member(users.add_user(app, body.email, body.password.get_secret_value()), app)


@router.post("/join", summary="Make a user a member of this workspace")
def join(body: MemberCreate, app: WorkspaceApp) -> MemberPublic:
    """The existing user with this email becomes a member of this workspace too (a
    member already stays one). 422 at `email` when no user has it."""
    return _member(users.add_member(app, body.email), app)
