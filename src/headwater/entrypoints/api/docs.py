"""The API's interactive documentation at ``/api/docs`` (Swagger UI), for signed-in
users. Its scripts come from the npm package ``swagger-ui-dist`` (pinned in
``package.json``), copied by ``scripts/install`` into ``static/swagger-ui`` beside this
module (ignored by git): nothing is fetched from a CDN at run time.

The page and its assets need authentication like every route: the page reads the
OpenAPI document with the visitor's session cookie (the document needs it too), so a
browser without a session is sent to the console's sign-in page and back; any other
client gets the API's 401.
"""

from __future__ import annotations

from inspect import isawaitable
from pathlib import Path
from typing import Literal
from urllib.parse import quote

from fastapi import FastAPI, Request, Response
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse

from headwater.entrypoints.api import errors
from headwater.entrypoints.api.deps import CurrentPrincipal
from headwater.kernel.errors import HeadwaterError, TransientError, Unauthenticated
from headwater.services.app import App

PATH = "/api/docs"
ASSETS = Path(__file__).parent / "static" / "swagger-ui"
#: The files of ``swagger-ui-dist`` that the page loads (`scripts/install` copies them).
Asset = Literal["swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png"]
_MEDIA_TYPES = {".js": "text/javascript", ".css": "text/css", ".png": "image/png"}
SIGN_IN = "/sign-in"
#: The page acts with the visitor's session (Try it out): no other site may frame it
#: (clickjacking) and no cache keeps it, as for the console's pages (its own inline
#: script, Swagger UI's start, rules out their `script-src 'self'`).
PAGE_HEADERS = {
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "frame-ancestors 'none'; object-src 'none'; base-uri 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


class DocsNotInstalled(TransientError):
    """The Swagger UI files were not installed with the package."""


def _asset(name: str) -> Path:
    path = ASSETS / name
    if not path.is_file():
        raise DocsNotInstalled("the API documentation is not installed: run scripts/install")
    return path


def create_docs(app: App, openapi_url: str) -> FastAPI:
    """The documentation pages over `app`, reading the OpenAPI document at `openapi_url`
    (with the visitor's session cookie: the document needs authentication too)."""
    docs = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    docs.state.headwater = app
    errors.install(docs)
    api_error = docs.exception_handlers[HeadwaterError]

    async def unauthenticated(request: Request, exc: Exception) -> Response:
        """A browser opening the page is sent to sign in and back; others get a 401."""
        if request.method == "GET" and "text/html" in request.headers.get("accept", ""):
            back = quote(f"{PATH}/", safe="/")
            return RedirectResponse(f"{SIGN_IN}?next={back}", status_code=303)
        answer = api_error(request, exc)
        return await answer if isawaitable(answer) else answer

    docs.add_exception_handler(Unauthenticated, unauthenticated)

    @docs.get("/", include_in_schema=False)
    def page(_caller: CurrentPrincipal) -> HTMLResponse:
        _asset("swagger-ui-bundle.js")
        page = get_swagger_ui_html(
            openapi_url=openapi_url,
            title="Headwater API",
            swagger_js_url=f"{PATH}/assets/swagger-ui-bundle.js",
            swagger_css_url=f"{PATH}/assets/swagger-ui.css",
            swagger_favicon_url=f"{PATH}/assets/favicon-32x32.png",
        )
        page.headers.update(PAGE_HEADERS)
        return page

    @docs.get("/assets/{name}", include_in_schema=False)
    def asset(name: Asset, _caller: CurrentPrincipal) -> FileResponse:
        path = _asset(name)
        return FileResponse(path, media_type=_MEDIA_TYPES[path.suffix])

    return docs
