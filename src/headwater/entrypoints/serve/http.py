"""The root HTTP application of `headwater serve`.

`create_http_app(app)` builds one FastAPI application that answers `/healthz` itself
and lets each feature mount its own routes: every function in `MOUNTS` is called as
``mount(root, app)`` (the API mounts its sub-application at `/api/v1`, the console its
pages at `/`).  The root application has no OpenAPI document or docs pages of its own:
the API sub-application publishes its own.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from headwater.entrypoints import api, console
from headwater.services.app import App

Mount = Callable[[FastAPI, App], None]

#: Features that add routes to the root application, in order (the last may claim `/`).
MOUNTS: tuple[Mount, ...] = (api.mount, console.mount)


def create_http_app(app: App, mounts: tuple[Mount, ...] | None = None) -> FastAPI:
    """The root application over `app` (the default workspace's view of the store)."""
    root = FastAPI(title="Headwater", openapi_url=None, docs_url=None, redoc_url=None)
    root.state.app = app

    @root.get("/healthz", include_in_schema=False)
    def healthz() -> JSONResponse:
        """The process is up and answering (no dependency is checked: see /readyz)."""
        return JSONResponse({"status": "ok"})

    for mount in MOUNTS if mounts is None else mounts:
        mount(root, app)
    return root
