"""The workspace's own screens: Customer Model, Warehouse, Profiles and API tokens."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from headwater.entrypoints.console.flash import Flash, Kind
from headwater.entrypoints.console.web import (
    CurrentViewer,
    Viewer,
    flashes,
    redirect,
    redirect_telling,
    render,
)
from headwater.kernel.errors import HeadwaterError, InvalidInput
from headwater.services import model, profiles, warehouse
from headwater.services.auth import tokens
from headwater.services.pipelines import authoring

router = APIRouter()


def _model_page(
    request: Request,
    who: Viewer,
    error: dict[str, str] | None = None,
    status: int = 200,
    typed: dict[str, str] | None = None,
) -> Response:
    """The page; after a refused change, with the error and what was typed (kept)."""
    return render(
        request,
        "model.html",
        who,
        status=status,
        fields=authoring.model_fields(who.app.model()),
        types=authoring.PROPERTY_TYPES,
        errors=error or {},
        typed=typed or {},
    )


@router.get("/model")
def model_page(request: Request, who: CurrentViewer) -> Response:
    return _model_page(request, who)


@router.post("/model")
def add_property(
    request: Request,
    who: CurrentViewer,
    path: Annotated[str, Form()] = "",
    type: Annotated[str, Form()] = "",
    description: Annotated[str, Form()] = "",
) -> Response:
    try:
        model.add(who.app, path.strip(), type, description)
    except HeadwaterError as exc:
        field = (exc.location if isinstance(exc, InvalidInput) else None) or "path"
        typed = {"path": path, "type": type, "description": description}
        return _model_page(request, who, {field: exc.message}, 400, typed)
    return redirect("/model")


@router.post("/model/rename")
def rename_property(
    request: Request,
    who: CurrentViewer,
    path: Annotated[str, Form()] = "",
    new_name: Annotated[str, Form()] = "",
) -> Response:
    try:
        model.rename(who.app, path, new_name.strip())
    except HeadwaterError as exc:
        typed = {"rename_path": path, "new_name": new_name}
        return _model_page(request, who, {"rename": exc.message}, 400, typed)
    return redirect("/model")


@router.post("/model/drop")
def drop_property(
    request: Request,
    who: CurrentViewer,
    path: Annotated[str, Form()] = "",
    confirm: Annotated[str, Form()] = "",
) -> Response:
    try:
        if confirm.strip() != path:
            raise InvalidInput("type the property's name to drop it", "confirm")
        model.drop(who.app, path)
    except HeadwaterError as exc:
        return _model_page(request, who, {"drop": exc.message}, 400, {"drop_path": path})
    return redirect("/model")


def _warehouse_page(
    request: Request, who: Viewer, url_error: str | None = None, status: int = 200
) -> Response:
    url = warehouse.safe_url(who.app.warehouse_url())
    return render(request, "warehouse.html", who, status=status, url=url, url_error=url_error)


@router.get("/warehouse")
def warehouse_page(request: Request, who: CurrentViewer) -> Response:
    return _warehouse_page(request, who)


@router.post("/warehouse/test")
def test_warehouse(request: Request, who: CurrentViewer) -> Response:
    try:
        found = warehouse.describe(who.app)
    except HeadwaterError as exc:
        return redirect_telling(request, who, "/warehouse", exc.message, Kind.ERROR)
    line = (
        f"Connected to {found['engine']}: {found['identities']:,} identities, "
        f"{found['profiles']:,} profiles"
    )
    return redirect_telling(request, who, "/warehouse", line)


@router.post("/warehouse")
def change_warehouse(
    request: Request, who: CurrentViewer, new_url: Annotated[str, Form()] = ""
) -> Response:
    try:
        # The console's users do not own the server: the API's rule (a DuckDB file only
        # in the workspace's own folder) applies to them too.
        warehouse.set_url(who.app, new_url.strip(), confined=True)
    except HeadwaterError as exc:
        return _warehouse_page(request, who, url_error=exc.message, status=400)
    shown = warehouse.safe_url(who.app.warehouse_url())
    return redirect_telling(request, who, "/warehouse", f"Warehouse changed to {shown}")


#: Profiles shown per page of the console's list.
PROFILES_PAGE = 100


@router.get("/profiles")
def profiles_page(request: Request, who: CurrentViewer, q: str = "", after: str = "") -> Response:
    """A page of profiles, newest first, after the profile `after` (the list stopped at
    its first 200, with no way to see the others but searching)."""
    note = None
    try:
        found = profiles.list_profiles(
            who.app, q or None, after=after or None, limit=PROFILES_PAGE + 1
        )
        total = profiles.count_profiles(who.app, q or None)
    except InvalidInput as refused:
        if refused.location == "search":  # text no warehouse takes: told by the box
            return _profiles(request, who, q.replace("\x00", ""), "", [], 0, error=refused)
        if refused.location != "starting_after":
            raise
        # merged or removed since the page that named it
        note, after = "That profile was merged or removed since; the list starts again.", ""
        found = profiles.list_profiles(who.app, q or None, limit=PROFILES_PAGE + 1)
        total = profiles.count_profiles(who.app, q or None)
    return _profiles(request, who, q, after, found, total, note=note)


def _profiles(
    request: Request,
    who: Viewer,
    q: str,
    after: str,
    found: list[dict[str, Any]],
    total: int,
    note: str | None = None,
    error: InvalidInput | None = None,
) -> Response:
    more = len(found) > PROFILES_PAGE
    return render(
        request,
        "profiles.html",
        who,
        status=400 if error else 200,
        q=q,
        after=after,
        profiles=found[:PROFILES_PAGE],
        next_after=found[PROFILES_PAGE - 1]["id"] if more else None,
        note=note,
        error=error.message if error else None,
        total=total,
        fields=authoring.model_fields(who.app.model())[:5],
    )


@router.get("/profiles/{profile_id}")
def profile_page(request: Request, profile_id: str, who: CurrentViewer) -> Response:
    return render(request, "profile.html", who, profile=profiles.show_profile(who.app, profile_id))


def _tokens_page(
    request: Request, who: Viewer, error: str | None = None, status: int = 200, after: str = ""
) -> Response:
    """A page of the workspace's tokens, newest first, after the token `after` (the list
    stopped at its newest 100); an `after` that is no token of it starts again."""
    try:
        found, more = tokens.list_tokens(who.app, starting_after=after or None)
    except InvalidInput:
        (found, more), after = tokens.list_tokens(who.app), ""
    # A token just made by this session (see create_token), shown this once.
    created = flashes(request).take(who.session, (Kind.TOKEN,)) if error is None else []
    return render(
        request,
        "tokens.html",
        who,
        status=status,
        tokens=found,
        created=created,
        error=error,
        after=after,
        next_after=found[-1].id if more else None,
    )


@router.get("/tokens")
def tokens_page(request: Request, who: CurrentViewer, after: str = "") -> Response:
    return _tokens_page(request, who, after=after)


@router.post("/tokens")
def create_token(
    request: Request, who: CurrentViewer, name: Annotated[str, Form()] = ""
) -> Response:
    """Post/Redirect/Get: the new token goes to the tokens page through this session's
    one-shot messages, so a reload shows the list and creates nothing."""
    try:
        raw, token = tokens.create_token(who.app, name)
    except InvalidInput as exc:
        return _tokens_page(request, who, error=exc.message, status=400)
    flashes(request).put(who.session, Flash(Kind.TOKEN, token.name, secret=raw))
    return redirect("/tokens")


@router.post("/tokens/{token_id}/revoke")
def revoke_token(request: Request, token_id: str, who: CurrentViewer) -> Response:
    token = tokens.revoke_token(who.app, token_id)
    return redirect_telling(request, who, "/tokens", f"Token “{token.name}” revoked")
