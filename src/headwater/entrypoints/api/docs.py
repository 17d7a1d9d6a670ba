"""The API's interactive documentation at ``/api/docs`` (Swagger UI), for signed-in
users. Its scripts come from the npm package ``swagger-ui-dist``, copied by
``scripts/install`` into ``static/swagger-ui`` beside this module (ignored by git):
nothing is fetched from a CDN at run time."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from headwater.entrypoints.api import errors
from headwater.entrypoints.api.deps import CurrentPrincipal
from headwater.kernel.errors import TransientError
from headwater.services.app import App

PATH = "/api/docs"
ASSETS = Path(__file__).parent / "static" / "swagger-ui"


class DocsNotInstalled(TransientError):
    """The Swagger UI files were not installed with the package."""


def create_docs(app: App, openapi_url: str) -> FastAPI:
    """The documentation pages over `app`, reading the OpenAPI document at `openapi_url`
    (with the visitor's session cookie: the document needs authentication too)."""
    docs = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    docs.state.headwater = app
    errors.install(docs)

    @docs.get("/", include_in_schema=False)
    def page(_caller: CurrentPrincipal) -> HTMLResponse:
        if not (ASSETS / "swagger-ui-bundle.js").is_file():
            raise DocsNotInstalled("the API documentation is not installed: run scripts/install")
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title="Headwater API",
            swagger_js_url=f"{PATH}/assets/swagger-ui-bundle.js",
            swagger_css_url=f"{PATH}/assets/swagger-ui.css",
            swagger_favicon_url=f"{PATH}/assets/favicon-32x32.png",
        )

    docs.mount("/assets", StaticFiles(directory=ASSETS, check_dir=False), name="assets")
    return docs
