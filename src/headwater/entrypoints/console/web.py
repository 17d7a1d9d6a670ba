"""What every page shares: the template environment, who is signed in (`Viewer`), the
same-origin rule for changes, and how errors become pages.

A transient error is a 503 page saying to retry (with a "Try again" link for a page
asked for, and ``Retry-After``), the metadata store away as much as any
(`store_outage`: the driver's own errors, wherever in the request, the session's check
first among them).

A page needs a live session (the ``headwater_session`` cookie): without one it answers
with a redirect to the sign-in page; an htmx request gets 200 with ``HX-Redirect`` (a
303 would be followed by the browser's XHR itself, and htmx would swap the sign-in page
into the row), and a script's own request (the editor's fetch calls, marked
``X-Requested-With: fetch``) gets 401 with where to sign in. A
request that changes state (any method but GET/HEAD) must come from this site's pages
(`same_origin`, the API's own rule): a cross-site form post is refused with 403 even
when the browser sends the cookie.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, cast
from urllib.parse import quote, urlsplit

import jinja2
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from sqlalchemy.exc import DBAPIError

from headwater.entrypoints.api.deps import SAFE_METHODS, same_origin, session_from
from headwater.entrypoints.console.flash import Flash, Flashes, Kind
from headwater.entrypoints.store_outage import retry_later, store_unavailable
from headwater.kernel.entities import Workspace
from headwater.kernel.errors import HeadwaterError, NotFound
from headwater.kernel.values import document_value
from headwater.services.app import App
from headwater.services.auth import Principal, invitations, sessions, users, workspaces

TEMPLATES = Path(__file__).parent / "templates"


def _number(value: object) -> str:
    return f"{value:,}" if isinstance(value, int | float) else str(value or 0)


def _when(value: datetime | None) -> str:
    if value is None:
        return "—"
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _json(value: object) -> str:
    """Customer data as JSON text, shown as it is: non-ASCII and ``<&'`` stay
    themselves (autoescape makes them text) and keys keep their order (`tojson` wrote
    ``\\u00e9`` and sorted them). A lone surrogate (half a character: no UTF-8 encoder
    takes it) stays an escape, as JSON writes it. Datetimes and dates are ISO 8601 text
    and decimals text, as the API's documents spell them."""
    text = json.dumps(value, ensure_ascii=False, indent=2, default=document_value)
    return _LONE_SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")  # a pair is one character in a str


env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES),
    autoescape=True,  # every value is text unless a template says otherwise
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
env.filters["number"] = _number
env.filters["when"] = _when
env.filters["json"] = _json


class SignInRequired(Exception):
    """No live session: the page redirects to sign-in, then back."""


class CrossSite(Exception):
    """A state-changing request from another site's page."""


class OtherWorkspace(Exception):
    """A change from a page of another workspace than the session's (left open in a
    tab while the workspace was switched in another)."""


#: The workspace a page showed, sent with each change it makes (console.js: a header on
#: htmx and editor requests, a form field on plain form posts).
WORKSPACE_HEADER = "x-headwater-workspace"
WORKSPACE_FIELD = "_workspace"


def _check_shown(request: Request, shown: object, current: str) -> None:
    """`OtherWorkspace` when a change names another workspace than the session's (the
    workspace switcher, whose change that is, aside)."""
    if isinstance(shown, str) and shown and shown != current and request.url.path != "/workspace":
        raise OtherWorkspace


@dataclass(frozen=True)
class Viewer:
    """The signed-in user and the workspace their session acts on."""

    app: App  # the workspace's view: every service call of a page acts on it
    principal: Principal
    session: str
    email: str
    workspace: Workspace
    workspaces: list[Workspace]
    invited: int  # invitations to other workspaces waiting for the user's answer


def root_app(request: Request) -> App:
    return cast(App, request.app.state.headwater)


def viewer(request: Request) -> Viewer:
    """The dependency of every page but sign-in (see the module)."""
    app = root_app(request)
    raw = session_from(request) or ""
    principal = sessions.principal_for_session(app, raw) if raw else None
    if principal is None or principal.user_id is None:
        raise SignInRequired
    if request.method not in SAFE_METHODS:
        if not same_origin(request):
            raise CrossSite
        _check_shown(request, request.headers.get(WORKSPACE_HEADER), principal.workspace_id)
    view = (
        app
        if principal.workspace_id == app.workspace_id
        else replace(app, workspace_id=principal.workspace_id)
    )
    user = users.get_user(app, principal.user_id)
    return Viewer(
        app=view,
        principal=principal,
        session=raw,
        email=user.email,
        workspace=view.workspace(),
        workspaces=workspaces.workspaces_of(app, principal.user_id),
        invited=len(invitations.pending(app, principal.user_id)),
    )


async def page_viewer(request: Request, who: Annotated[Viewer, Depends(viewer)]) -> Viewer:
    """`viewer`, and for a form post, the workspace its page showed (`WORKSPACE_FIELD`)
    checked too (the form is parsed once: the handler's fields come from the same)."""
    kind = request.headers.get("content-type", "")
    if request.method not in SAFE_METHODS and kind.startswith(FORMS):
        form = await request.form()
        _check_shown(request, form.get(WORKSPACE_FIELD), who.principal.workspace_id)
    return who


FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")
CurrentViewer = Annotated[Viewer, Depends(page_viewer)]


def flashes(request: Request) -> Flashes:
    """The console's one-shot messages (see `flash`)."""
    return cast(Flashes, request.app.state.flashes)


def render(
    request: Request, template: str, who: Viewer | None = None, status: int = 200, **ctx: Any
) -> HTMLResponse:
    """Render a page or fragment; `who` fills the header (nav, workspace switcher).

    A full page (base.html) shows and forgets the viewer's pending messages; a fragment
    never takes them."""

    def pending() -> list[Flash]:
        return flashes(request).take(who.session) if who is not None else []

    html = env.get_template(template).render(
        request=request, viewer=who, pending_messages=pending, **ctx
    )
    return HTMLResponse(html, status_code=status)


#: What a URL keeps as it is in a header: its delimiters, and the escapes it has.
_URL_SAFE = ":/?#[]@!$&'()*+,;=%"


def redirect(url: str, request: Request | None = None) -> Response:
    """A redirect that works for full pages and for htmx requests alike: given the
    `request`, an htmx one gets 200 with ``HX-Redirect`` (XHR follows a 303 itself).

    `url` goes into the headers percent-encoded: a path such as ``/李`` (not latin-1)
    or one with a line break could not be sent as it is."""
    url = quote(url, safe=_URL_SAFE)
    if request is not None and request.headers.get("hx-request"):
        return Response(status_code=200, headers={"HX-Redirect": url})
    return RedirectResponse(url, status_code=303, headers={"HX-Redirect": url})


def redirect_telling(
    request: Request, who: Viewer, url: str, text: str, kind: Kind = Kind.OK
) -> Response:
    """Post/Redirect/Get: redirect to `url`, whose page then shows `text` once."""
    flashes(request).put(who.session, Flash(kind, text))
    return redirect(url)


def local_path(url: str | None) -> str:
    """`url` if it is a path of this site, else the home page (no open redirects)."""
    if url and url.startswith("/") and not url.startswith("//") and "\\" not in url:
        return url
    return "/sources"


def _own_page(request: Request, url: str | None) -> str | None:
    """The path and query of `url`, an absolute URL (htmx's ``HX-Current-URL``, a
    ``Referer``), when it is a page of this site; else None."""
    if not url:
        return None
    parts = urlsplit(url)
    host = request.headers.get("host", "")
    if (parts.scheme, parts.netloc.lower()) != (request.url.scheme, host.lower()):
        return None
    return parts.path + (f"?{parts.query}" if parts.query else "")


def _come_back_to(request: Request) -> str:
    """Where signing in leads back to: the page asked for, or for a change (a post),
    the page it was made from."""
    if request.method in SAFE_METHODS:
        return request.url.path + (f"?{request.url.query}" if request.url.query else "")
    headers = request.headers
    return (
        _own_page(request, headers.get("hx-current-url"))
        or _own_page(request, headers.get("referer"))
        or "/sources"
    )


def install_handlers(console: FastAPI) -> None:
    @console.exception_handler(SignInRequired)
    def _sign_in(request: Request, _exc: SignInRequired) -> Response:
        sign_in = f"/sign-in?next={quote(local_path(_come_back_to(request)), safe='/')}"
        if request.headers.get("x-requested-with") == "fetch":
            error = {"type": "Unauthenticated", "message": "the session has ended: sign in again"}
            return JSONResponse({"error": error, "location": sign_in}, status_code=401)
        return redirect(sign_in, request)

    @console.exception_handler(CrossSite)
    def _cross_site(request: Request, _exc: CrossSite) -> Response:
        return render(
            request,
            "error.html",
            status=403,
            title="Refused",
            message="A change must come from this site's own pages.",
        )

    @console.exception_handler(OtherWorkspace)
    def _other_workspace(request: Request, _exc: OtherWorkspace) -> Response:
        message = (
            "This page is of another workspace than the one you switched to since (in "
            "another tab, perhaps); nothing was changed. Open the page again."
        )
        if request.headers.get("x-requested-with") == "fetch":
            error = {"type": "conflict", "message": message, "field": None}
            return JSONResponse({"error": error}, status_code=409)
        return render(request, "error.html", status=409, title="Not done", message=message)

    @console.exception_handler(RequestValidationError)
    def _malformed(request: Request, exc: RequestValidationError) -> Response:
        """A request without a field its handler needs (a hand-made post: every form
        of the console sends its fields; an empty one counts as missing), or with one
        that is not what it must be: told as a refusal naming the field, never as the
        framework's JSON (which htmx would swap into the page as text)."""
        message = _malformed_message(exc)
        return render(request, "error.html", status=400, title="Not done", message=message)

    @console.exception_handler(NotFound)
    def _not_found(request: Request, exc: NotFound) -> Response:
        return render(request, "error.html", status=404, title="Not found", message=exc.message)

    @console.exception_handler(DBAPIError)
    def _store_failed(request: Request, exc: DBAPIError) -> Response:
        failure = store_unavailable(exc, f"{request.method} {request.url.path}")
        if failure is None:
            raise exc  # a bug's: the server's 500
        return _unavailable(request, failure)

    @console.exception_handler(HeadwaterError)
    def _error(request: Request, exc: HeadwaterError) -> Response:
        if exc.transient:
            return _unavailable(request, exc)
        status = 409 if type(exc).__name__ == "Conflict" else 400
        return render(request, "error.html", status=status, title="Not done", message=exc.message)


def _unavailable(request: Request, exc: HeadwaterError) -> Response:
    """503 for an error that retrying may mend: a page saying so (htmx shows its heading
    and alert in the status line), or the error document for the editor's requests."""
    if request.headers.get("x-requested-with") == "fetch":
        error = {"type": "unavailable", "message": exc.message, "field": None}
        return JSONResponse({"error": error}, status_code=503, headers=retry_later())
    again = _come_back_to(request) if request.method in SAFE_METHODS else None
    page = render(
        request, "error.html", status=503, title="Unavailable", message=exc.message, retry=again
    )
    page.headers.update(retry_later())
    return page


def _malformed_message(exc: RequestValidationError) -> str:
    """'the form lacks name' (or 'name: ...' for a field sent but refused)."""
    missing: list[str] = []
    wrong: list[str] = []
    for error in exc.errors():
        field = str(error.get("loc", ("?",))[-1])
        if error.get("type") == "missing":
            missing.append(field)
        else:
            wrong.append(f"{field}: {error.get('msg', 'not valid')}")
    told = [f"the form lacks {', '.join(missing)}"] if missing else []
    return "; ".join(told + wrong) or "the request is not valid"
