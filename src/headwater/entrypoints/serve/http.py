"""The root HTTP application of `headwater serve`.

`create_http_app(app)` builds one FastAPI application that answers `/healthz`,
`/readyz` and `/metrics` itself and lets each feature mount its own routes: every
function in `MOUNTS` is called as ``mount(root, app)`` (the API mounts its
sub-application at `/api/v1`, the console its pages at `/`).  The root application has
no OpenAPI document or docs pages of its own: the API sub-application publishes its own.

`/healthz` needs no authentication: it says nothing about anything, and probes call it
without credentials. `/readyz` and `/metrics` do (DESIGN §8: every route but the health
check, sign-in and the webhook receiver), and answer for the caller's workspace alone
(its warehouse; its runs and customers): Prometheus scrapes `/metrics` with an API token
(`authorization: {credentials: hw_…}` in its scrape config), or a signed-in user opens
it in the browser. While the store cannot be reached, the caller cannot be checked:
both answer 503 with the API's error document, ``unavailable`` (`store_outage`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from headwater.entrypoints import api, console, webhooks
from headwater.entrypoints.api.deps import session_from
from headwater.entrypoints.store_outage import AnswerStoreOutage, retry_later
from headwater.services.app import App
from headwater.services.auth import Principal, sessions, tokens
from headwater.services.health import readiness
from headwater.services.runs.metrics import Metrics

Mount = Callable[[FastAPI, App], None]

#: Features that add routes to the root application, in order (the last may claim `/`).
MOUNTS: tuple[Mount, ...] = (api.mount, webhooks.mount, console.mount)


def create_http_app(
    app: App, mounts: tuple[Mount, ...] | None = None, metrics: Metrics | None = None
) -> FastAPI:
    """The root application over `app` (the default workspace's view of the store);
    `metrics` are the ones this process's run workers observe."""
    root = FastAPI(title="Headwater", openapi_url=None, docs_url=None, redoc_url=None)
    root.state.app = app
    root.add_middleware(AnswerStoreOutage)
    metrics = metrics or Metrics(app)

    @root.get("/healthz", include_in_schema=False)
    def healthz() -> JSONResponse:
        """The process is up and answering (no dependency is checked: see /readyz)."""
        return JSONResponse({"status": "ok"})

    @root.get("/readyz", include_in_schema=False)
    async def readyz(request: Request) -> JSONResponse:
        """200 when the store and the caller's warehouse can be reached, else 503 saying
        which; for a caller with credentials (DESIGN §8: only /healthz needs none; what
        is unreachable names hosts, users and paths)."""
        caller = await run_in_threadpool(_caller, app, request)
        if caller is None:
            return _unauthenticated()
        checks = await run_in_threadpool(readiness, replace(app, workspace_id=caller))
        ready = all(v == "ok" for v in checks.values())
        body = {"status": "ready" if ready else "not ready", "checks": checks}
        # Not ready is a 503 like any other: it says when to ask again.
        return JSONResponse(body, 200 if ready else 503, {} if ready else retry_later())

    @root.get("/metrics", include_in_schema=False)
    async def metrics_(request: Request) -> Response:
        caller = await run_in_threadpool(_caller, app, request)
        if caller is None:
            return _unauthenticated()
        body = await run_in_threadpool(generate_latest, metrics.registry(caller))
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    for mount in MOUNTS if mounts is None else mounts:
        mount(root, app)
    return root


_401 = "send an API token as `Authorization: Bearer hw_…`, or sign in"


def _unauthenticated() -> JSONResponse:
    error = {"type": "unauthenticated", "message": _401, "field": None}
    return JSONResponse({"error": error}, status_code=401, headers={"WWW-Authenticate": "Bearer"})


def _caller(app: App, request: Request) -> str | None:
    """The workspace of the request's valid API token or session; None without one."""
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    found: Principal | None = None
    if scheme.lower() == "bearer" and credentials:
        found = tokens.principal_for_token(app, credentials.strip())
    elif session := session_from(request):
        found = sessions.principal_for_session(app, session)
    return None if found is None else found.workspace_id
