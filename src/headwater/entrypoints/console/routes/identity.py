"""Identity resolution (DESIGN.md §10): the ordered identifiers, their blocked values,
and rebuilding every profile with them; the same services as the API's
``/identity-resolution`` and ``/profiles/rebuild`` and ``headwater identity set``."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from headwater.entrypoints.console.web import CurrentViewer, Viewer, redirect_telling, render
from headwater.kernel.errors import InvalidInput
from headwater.services import profiles
from headwater.services.pipelines import authoring

router = APIRouter()

#: The types an identifier can have (the service checks it; the page lists the choices).
IDENTIFIER_TYPES = ("string", "integer")


def _page(
    request: Request,
    who: Viewer,
    identifiers: str,
    blocked: dict[str, str],
    errors: dict[str, str] | None = None,
) -> Response:
    fields = authoring.model_fields(who.app.model())
    return render(
        request,
        "identity.html",
        who,
        status=400 if errors else 200,
        identifiers=identifiers,
        blocked=blocked,
        eligible=[f["path"] for f in fields if f["type"] in IDENTIFIER_TYPES],
        errors=errors or {},
    )


@router.get("/identity")
def identity_page(request: Request, who: CurrentViewer) -> Response:
    settings = profiles.current_settings(who.app)
    blocked = {i.path: "\n".join(str(v) for v in i.blocked) for i in settings.identifiers}
    return _page(request, who, ", ".join(settings.names), blocked)


@router.post("/identity")
async def save_identity(request: Request, who: CurrentViewer) -> Response:
    """The identifiers as a comma-separated list, in order of trust; the blocked values
    of each identifier shown, one per line (an identifier added now gets its defaults)."""
    form = await request.form()
    text = str(form.get("identifiers", ""))
    names = [name.strip() for name in text.split(",") if name.strip()]
    shown = {
        str(key).removeprefix("blocked:"): str(value)
        for key, value in form.multi_items()
        if str(key).startswith("blocked:")
    }
    blocked = {
        path: [line.strip() for line in value.splitlines() if line.strip()]
        for path, value in shown.items()
        if path in names
    }
    try:
        profiles.set_settings(who.app, names, blocked)
    except InvalidInput as exc:
        where = "blocked" if (exc.location or "").startswith("blocked") else "identifiers"
        return _page(request, who, text, shown, {where: exc.message})
    told = (
        f"Identity resolution saved: identifiers {', '.join(names)}. Every profile was "
        "rebuilt with it (if the warehouse could not be reached, the next run does it)."
    )
    return redirect_telling(request, who, "/identity", told)


@router.post("/identity/rebuild")
def rebuild(request: Request, who: CurrentViewer) -> Response:
    done = profiles.rebuild_profiles(who.app)
    told = (
        f"Profiles rebuilt: {done.considered:,} identities considered, "
        f"{done.written:,} profiles written, {done.removed:,} removed, "
        f"{len(done.merges) + len(done.splits):,} merges and splits"
    )
    return redirect_telling(request, who, "/identity", told)
