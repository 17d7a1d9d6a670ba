"""The REST API (DESIGN.md §8): a FastAPI sub-application mounted at ``/api/v1``.

`create_api(app)` builds it over one `App` (the store, the cipher, the default
workspace); each request acts on the workspace of its caller (`deps.workspace_app`).
`mount(root, app)` is what ``headwater serve`` calls to put it under ``/api/v1``.
Errors are ``{"error": {"type", "message", "field"}}`` (`errors`); the OpenAPI
document is at ``/api/v1/openapi.json`` and, like every route but sign-in, needs
authentication.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import version
from typing import Any, cast

from fastapi import FastAPI
from fastapi.responses import JSONResponse, RedirectResponse
from starlette.concurrency import run_in_threadpool
from starlette.routing import Mount

from headwater.entrypoints.api import docs, errors
from headwater.entrypoints.api.deps import CurrentPrincipal
from headwater.entrypoints.api.docs import create_docs
from headwater.entrypoints.api.routes import ROUTERS
from headwater.services.app import App
from headwater.services.webhooks.refusals import RefusalCounter

PREFIX = "/api/v1"
OPENAPI_PATH = "/openapi.json"

DESCRIPTION = """\
Everything the `headwater` command line does, over HTTP: connections, the Customer
Model, the warehouse, pipelines, runs, profiles, users, tokens and workspaces.

Authenticate with an API token (`Authorization: Bearer hw_…`, from
`headwater tokens create` or `POST /tokens`) or with the session cookie set by
`POST /auth/login`. A request carried by the cookie that changes something must come
from the same origin. Every error is `{"error": {"type", "message", "field"}}`.
"""


def create_api(app: App) -> FastAPI:
    """The API over `app`'s store, with every route, the error handlers and the OpenAPI
    document at ``/openapi.json`` (relative to where it is mounted)."""
    api = FastAPI(
        title="Headwater API",
        version=version("headwater"),
        description=DESCRIPTION,
        openapi_url=None,  # served below, behind authentication
        docs_url=None,
        redoc_url=None,
        responses=errors.ERROR_RESPONSES,
    )
    api.state.headwater = app
    # Refused webhook deliveries, counted in memory and written once a second
    # (`routes.webhooks`); `mount` writes what is left when the service stops.
    api.state.webhook_refusals = RefusalCounter(app.engine)
    errors.install(api)
    for router in ROUTERS:
        api.include_router(router)
    api.openapi_url = OPENAPI_PATH

    @api.get(OPENAPI_PATH, include_in_schema=False)
    def openapi_document(_caller: CurrentPrincipal) -> JSONResponse:
        return JSONResponse(api.openapi())

    return api


def mount(root: FastAPI, app: App) -> None:
    """Mount the API at ``/api/v1`` and its documentation at ``/api/docs`` on the
    service's root application."""
    made = create_api(app)
    api = Mount(PREFIX, app=made)
    # Every path under the prefix is the API's to answer, with its own error document,
    # even one holding a newline (``%0A``), which Starlette's pattern would leave to the
    # root application.
    api.path_regex = re.compile(api.path_regex.pattern, re.DOTALL)
    root.router.routes.append(api)
    root.mount(docs.PATH, create_docs(app, PREFIX + OPENAPI_PATH))

    # The docs' address as named (no slash): the page is at ``/api/docs/``. (Starlette
    # would redirect on its own, but the console, mounted at ``/``, answers first.) The
    # page it leads to needs a session, or sends the browser to sign in.
    @root.get(docs.PATH, include_in_schema=False)
    def docs_page() -> RedirectResponse:
        return RedirectResponse(docs.PATH + "/", status_code=308)

    _close_on_exit(root, made.state.webhook_refusals)


def _close_on_exit(root: FastAPI, refusals: RefusalCounter) -> None:
    """Write the refusals counted in the last second when `root` stops serving."""
    inner = root.router.lifespan_context

    @asynccontextmanager
    async def lifespan(application: Any) -> AsyncIterator[Any]:
        try:
            async with inner(application) as state:
                yield state
        finally:
            await run_in_threadpool(refusals.close)

    root.router.lifespan_context = cast(Any, lifespan)


def openapi_document(app: App) -> dict[str, Any]:
    """The API's OpenAPI document (for tools and tests that need it without a server)."""
    return create_api(app).openapi()
