"""Sign-in, sign-out and the workspace switcher."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from headwater.entrypoints.api.deps import (
    cross_site,
    forget_session_cookie,
    set_session_cookie,
)
from headwater.entrypoints.console.web import (
    CrossSite,
    CurrentViewer,
    local_path,
    redirect,
    render,
    root_app,
)
from headwater.kernel.errors import Forbidden, InvalidInput, RateLimited, Unauthenticated
from headwater.services.auth import sessions

router = APIRouter()


@router.get("/sign-in")
def sign_in_page(request: Request, next: str = "/sources") -> Response:
    return render(request, "sign_in.html", next=local_path(next), email="", error=None)


@router.post("/sign-in")
def sign_in(
    request: Request,
    email: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/sources",
) -> Response:
    if cross_site(request):
        raise CrossSite
    address = request.client.host if request.client else "unknown"
    try:
        raw, _session = sessions.sign_in(root_app(request), email, password, address=address)
    except (Unauthenticated, Forbidden, RateLimited, InvalidInput) as exc:
        return render(
            request,
            "sign_in.html",
            status=400 if not isinstance(exc, RateLimited) else 429,
            next=local_path(next),
            email=email.replace("\x00", ""),  # shown again, less what was refused
            error=exc.message,
        )
    response = redirect(local_path(next))
    set_session_cookie(response, request, raw)
    return response


@router.post("/sign-out")
def sign_out(request: Request, who: CurrentViewer) -> Response:
    sessions.sign_out(root_app(request), who.session)
    response = redirect("/sign-in")
    forget_session_cookie(response, request)
    return response


@router.post("/workspace")
def switch_workspace(
    request: Request, who: CurrentViewer, workspace_id: Annotated[str, Form()]
) -> Response:
    sessions.choose_workspace(root_app(request), who.session, workspace_id)
    return redirect("/sources")
