"""The workspace's own screens: Customer Model, Warehouse, Profiles and API tokens."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from headwater.entrypoints.console.web import CurrentViewer, Viewer, redirect, render
from headwater.kernel.errors import HeadwaterError, InvalidInput
from headwater.services import model, profiles, warehouse
from headwater.services.auth import tokens
from headwater.services.pipelines import authoring

router = APIRouter()


def _model_page(
    request: Request, who: Viewer, error: dict[str, str] | None = None, status: int = 200
) -> Response:
    return render(
        request,
        "model.html",
        who,
        status=status,
        fields=authoring.model_fields(who.app.model()),
        types=authoring.PROPERTY_TYPES,
        errors=error or {},
    )


@router.get("/model")
def model_page(request: Request, who: CurrentViewer) -> Response:
    return _model_page(request, who)


@router.post("/model")
def add_property(
    request: Request,
    who: CurrentViewer,
    path: Annotated[str, Form()],
    type: Annotated[str, Form()],
    description: Annotated[str, Form()] = "",
) -> Response:
    try:
        model.add(who.app, path.strip(), type, description)
    except HeadwaterError as exc:
        field = (exc.location if isinstance(exc, InvalidInput) else None) or "path"
        return _model_page(request, who, {field: exc.message}, 400)
    return redirect("/model")


@router.post("/model/rename")
def rename_property(
    request: Request,
    who: CurrentViewer,
    path: Annotated[str, Form()],
    new_name: Annotated[str, Form()],
) -> Response:
    try:
        model.rename(who.app, path, new_name.strip())
    except HeadwaterError as exc:
        return _model_page(request, who, {"rename": exc.message}, 400)
    return redirect("/model")


@router.post("/model/drop")
def drop_property(
    request: Request,
    who: CurrentViewer,
    path: Annotated[str, Form()],
    confirm: Annotated[str, Form()] = "",
) -> Response:
    try:
        if confirm.strip() != path:
            raise InvalidInput("type the property's name to drop it", "confirm")
        model.drop(who.app, path)
    except HeadwaterError as exc:
        return _model_page(request, who, {"drop": exc.message}, 400)
    return redirect("/model")


def _warehouse_page(request: Request, who: Viewer, **ctx: Any) -> Response:
    return render(
        request,
        "warehouse.html",
        who,
        **({"status_line": None, "error": None, "url_error": None} | ctx),
    )


@router.get("/warehouse")
def warehouse_page(request: Request, who: CurrentViewer) -> Response:
    return _warehouse_page(request, who, url=warehouse.safe_url(who.app.warehouse_url()))


@router.post("/warehouse/test")
def test_warehouse(request: Request, who: CurrentViewer) -> Response:
    url = warehouse.safe_url(who.app.warehouse_url())
    try:
        found = warehouse.describe(who.app)
    except HeadwaterError as exc:
        return _warehouse_page(request, who, url=url, error=exc.message)
    line = (
        f"Connected to {found['engine']}: {found['identities']:,} identities, "
        f"{found['profiles']:,} profiles"
    )
    return _warehouse_page(request, who, url=url, status_line=line)


@router.post("/warehouse")
def change_warehouse(
    request: Request, who: CurrentViewer, new_url: Annotated[str, Form()]
) -> Response:
    try:
        warehouse.set_url(who.app, new_url.strip())
    except HeadwaterError as exc:
        return _warehouse_page(
            request, who, url=warehouse.safe_url(who.app.warehouse_url()), url_error=exc.message
        )
    return redirect("/warehouse")


@router.get("/profiles")
def profiles_page(request: Request, who: CurrentViewer, q: str = "") -> Response:
    found = profiles.list_profiles(who.app, q or None)
    return render(
        request,
        "profiles.html",
        who,
        q=q,
        profiles=found[:200],
        total=len(found),
        fields=authoring.model_fields(who.app.model())[:5],
    )


@router.get("/profiles/{profile_id}")
def profile_page(request: Request, profile_id: str, who: CurrentViewer) -> Response:
    return render(request, "profile.html", who, profile=profiles.show_profile(who.app, profile_id))


def _tokens_page(request: Request, who: Viewer, **ctx: Any) -> Response:
    found, _more = tokens.list_tokens(who.app)
    return render(
        request, "tokens.html", who, tokens=found, **({"created": None, "error": None} | ctx)
    )


@router.get("/tokens")
def tokens_page(request: Request, who: CurrentViewer) -> Response:
    return _tokens_page(request, who)


@router.post("/tokens")
def create_token(request: Request, who: CurrentViewer, name: Annotated[str, Form()]) -> Response:
    try:
        raw, token = tokens.create_token(who.app, name)
    except InvalidInput as exc:
        return _tokens_page(request, who, error=exc.message)
    return _tokens_page(request, who, created={"raw": raw, "name": token.name})


@router.post("/tokens/{token_id}/revoke")
def revoke_token(token_id: str, who: CurrentViewer) -> Response:
    tokens.revoke_token(who.app, token_id)
    return redirect("/tokens")
