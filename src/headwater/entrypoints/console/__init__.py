"""The web console (DESIGN.md §9): server-rendered pages at ``/``, static files at
``/static``, in the `headwater serve` process.

Pages are Jinja2 templates (autoescaped: customer and user text is data, never markup),
htmx swaps fragments rendered from the same partials, and server-sent events carry live
run progress. Every handler validates its input, calls one service function (the same
ones the REST API and the CLI call) and renders the answer; no rule lives here.

`mount(root, app)` is what ``headwater serve`` calls (listed in `serve.http.MOUNTS`
after the API, since the console answers every path the others leave).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from headwater.entrypoints.console import web
from headwater.entrypoints.console.flash import Flashes
from headwater.entrypoints.console.headers import ConsoleHeaders
from headwater.entrypoints.console.routes import ROUTERS
from headwater.entrypoints.console.store_watch import StoreWatch
from headwater.services.app import App

STATIC = Path(__file__).parent / "static"


def create_console(app: App) -> FastAPI:
    """The console as an application of its own (no OpenAPI: pages are not an API)."""
    console = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    console.state.headwater = app
    console.state.flashes = Flashes()
    console.state.store_watch = StoreWatch(app.engine)  # live streams' store probe
    console.add_middleware(ConsoleHeaders)
    web.install_handlers(console)
    console.mount("/static", StaticFiles(directory=STATIC, check_dir=False), name="static")
    for router in ROUTERS:
        console.include_router(router)
    return console


def mount(root: FastAPI, app: App) -> None:
    """Serve the console's pages under ``/`` of `root` (after the routes it has)."""
    root.mount("/", create_console(app))
