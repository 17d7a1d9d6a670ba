"""Runs: the workspace's history with a chart, one run's page, cancelling, and the
server-sent events that carry a live run's progress to the pipelines table and to the
run page.

A live stream outlasts a metadata store outage: while the store is away it stays open,
says so once ("outage", `STORE_AWAY`: the page keeps the last progress it showed) and
waits for the store to answer the serving process's one probe of it (`store_watch`:
a try every `OUTAGE_POLL_SECONDS`, however many streams wait); once it does, progress
goes on. Ending the stream instead would leave the page still: the browser's reconnect
would get the console's 503, after which an EventSource never retries.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse
from sqlalchemy.exc import DBAPIError
from starlette.concurrency import run_in_threadpool

from headwater.adapters.store.database import store_error
from headwater.entrypoints.console import views
from headwater.entrypoints.console.routes.pipelines import row_context
from headwater.entrypoints.console.store_watch import store_watch
from headwater.entrypoints.console.web import (
    CurrentViewer,
    Viewer,
    env,
    redirect,
    render,
    root_app,
)
from headwater.entrypoints.store_outage import store_unavailable
from headwater.kernel.entities import Run
from headwater.kernel.errors import Conflict, InvalidInput, NotFound
from headwater.services import connections
from headwater.services.app import App
from headwater.services.auth import sessions
from headwater.services.pipelines import documents, history, manage, runner

router = APIRouter()

#: How often a live stream looks at its run (the recorder flushes about as often).
POLL_SECONDS = 0.5

#: What a live page shows (as text) while the store is away, until the next progress.
STORE_AWAY = "The metadata store is unavailable: live updates are paused, retrying…"


def _history(request: Request, who: Viewer, runs: list[Run], **ctx: Any) -> Response:
    ctx = {"after": "", "next_after": None, **ctx}  # pages: the workspace's list only
    names = {p.id: p.name for p in manage.list_pipelines(who.app)}
    return render(
        request,
        "runs.html",
        who,
        runs=runs,
        names=names,
        views=views,
        chart=views.chart(runs),
        **ctx,
    )


@router.get("/runs")
def runs_page(request: Request, who: CurrentViewer, after: str = "") -> Response:
    """A page of the workspace's runs, newest first, after the run `after` (the list
    stopped at its first 100)."""
    try:
        found = history.page_runs(who.app, limit=RUNS_PAGE, starting_after=after or None)
    except InvalidInput:  # not a run of this workspace (or deleted with its pipeline)
        found, after = history.page_runs(who.app, limit=RUNS_PAGE), ""
    next_after = found.items[-1].id if found.has_more else None
    return _history(request, who, found.items, connection=None, after=after, next_after=next_after)


#: Runs shown per page of the console's history.
RUNS_PAGE = 100


@router.get("/runs/{run_id}")
def run_page(request: Request, run_id: str, who: CurrentViewer) -> Response:
    run = runner.get_run(who.app, run_id)
    pipeline = manage.get(who.app, run.pipeline_id)  # NotFound outside the workspace
    return render(
        request,
        "run.html",
        who,
        run=run,
        pipeline=pipeline,
        views=views,
        warnings=documents.run_warnings(run),
    )


@router.post("/runs/{run_id}/cancel")
def cancel(request: Request, run_id: str, who: CurrentViewer) -> Response:
    """Cancel a live run (an ended one is left as it is); a form post lands on the run's
    page, an htmx one gets the run's panel."""
    try:
        run = runner.cancel_run(who.app, run_id)
    except Conflict:
        run = runner.get_run(who.app, run_id)
    if not request.headers.get("hx-request"):
        return redirect(f"/runs/{run.id}")
    pipeline = manage.get(who.app, run.pipeline_id)
    return render(
        request,
        "run_panel.html",
        who,
        run=run,
        pipeline=pipeline,
        views=views,
        warnings=documents.run_warnings(run),
    )


def _event(name: str, html: str) -> str:
    data = "\n".join(f"data: {line}" for line in html.splitlines() or [""])
    return f"event: {name}\n{data}\n\n"


def _fragments(who: Viewer, run: Run, view: str) -> tuple[str, str]:
    """(event name, HTML) showing `run` in `view` (the pipelines table's row, the
    history's row or the run page's panel): "progress" with what goes inside the live
    element, then "end" with what replaces it."""
    name = "progress" if run.live else "end"
    if view == "history":
        names = {run.pipeline_id: manage.get(who.app, run.pipeline_id).name}
        template = "run_row_cells.html" if run.live else "run_row.html"
        html = env.get_template(template).render(run=run, names=names, views=views)
        return name, html
    if view == "row":
        if run.live:
            html = env.get_template("run_progress.html").render(run=run, views=views)
        else:
            pipeline = manage.get(who.app, run.pipeline_id)
            html = env.get_template("pipeline_row.html").render(
                viewer=who, **row_context(who, pipeline)
            )
        return name, html
    # While live, the inside of the page's panel (the page keeps its <section>); at the
    # end, the whole panel, which replaces it.
    pipeline = manage.get(who.app, run.pipeline_id)
    template = "run_panel_inside.html" if run.live else "run_panel.html"
    html = env.get_template(template).render(
        viewer=who, run=run, pipeline=pipeline, views=views, warnings=documents.run_warnings(run)
    )
    return name, html


def _poll(root: App, who: Viewer, run_id: str, view: str) -> tuple[str, str] | None:
    """The event showing run `run_id` now (`_fragments`; "end" with its gone notice once
    deleted with its pipeline, a queued run); None once the session has ended. Checked
    at each poll, not only once: signed out (or ended by a new password), the stream
    stops; the page's next request signs in. Raises what the store raises."""
    if sessions.principal_for_session(root, who.session) is None:
        return None
    try:
        return _fragments(who, runner.get_run(who.app, run_id), view)
    except NotFound:
        return "end", env.get_template("run_gone.html").render(run_id=run_id, view=view)


@router.get("/runs/{run_id}/events")
async def events(request: Request, run_id: str, who: CurrentViewer, view: str = "page") -> Response:
    root, watch = root_app(request), store_watch(request)
    first = await run_in_threadpool(runner.get_run, who.app, run_id)
    await run_in_threadpool(manage.get, who.app, first.pipeline_id)

    async def stream() -> AsyncIterator[str]:
        last, away = "", False
        while not await request.is_disconnected():
            try:
                polled = await run_in_threadpool(_poll, root, who, run_id, view)
            except DBAPIError as exc:
                if store_error(exc) is None:
                    raise  # a bug's
                if not away:  # said (and logged) once per outage
                    store_unavailable(exc, f"GET {request.url.path}")
                    yield _event("outage", STORE_AWAY)
                # The next answer is sent even when unchanged: the page learns the
                # store is back.
                last, away = "", True
                await watch.back()  # cancelled, with the stream, if its client leaves
                continue
            away = False
            if polled is None:
                return
            name, html = polled
            if html != last or name == "end":
                yield _event(name, html)
                last = html
            if name == "end":
                return
            await asyncio.sleep(POLL_SECONDS)

    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)


@router.get("/connections/{connection_id}/runs")
def connection_runs(request: Request, connection_id: str, who: CurrentViewer) -> Response:
    conn = connections.get_connection(who.app, connection_id)
    runs = [
        r
        for p in manage.list_pipelines(who.app, conn.id)
        for r in runner.list_runs(who.app, p.id, 100)
    ]
    runs.sort(key=lambda r: r.created_at, reverse=True)
    return _history(request, who, runs, connection=conn, tab="runs")
