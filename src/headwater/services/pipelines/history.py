"""A workspace's runs as pages: newest first, filtered by pipeline and status, and a
run's per-record errors in order.  What ``GET /runs`` and ``GET /runs/{id}/errors``
answer; every lookup is scoped to the workspace (another workspace's run or pipeline
is `NotFound`, as one that does not exist)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from headwater.adapters.store import run_queries
from headwater.kernel.entities import RUN_STATUSES, Run
from headwater.kernel.errors import InvalidInput, NotFound
from headwater.services.app import App
from headwater.services.pipelines import manage, runner

MAX_PAGE = 100


@dataclass(frozen=True)
class Page:
    """One page of a list and whether more items follow it."""

    items: list[Any]
    has_more: bool


def _check_limit(limit: int) -> int:
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"must be between 1 and {MAX_PAGE}", "limit")
    return limit


def page_runs(
    app: App,
    *,
    pipeline_id: str | None = None,
    status: str | None = None,
    limit: int = 20,
    starting_after: str | None = None,
) -> Page:
    """Runs of the workspace (or of one of its pipelines), optionally of one status,
    newest first, after the run `starting_after` (which must be one of them)."""
    _check_limit(limit)
    if status is not None and status not in RUN_STATUSES:
        allowed = ", ".join(RUN_STATUSES)
        raise InvalidInput(f"must be one of {allowed}; got {status!r}", "status")
    if pipeline_id is not None:
        ids = [manage.get(app, pipeline_id).id]
    else:
        ids = [p.id for p in manage.list_pipelines(app)]
    after: Run | None = None
    if starting_after is not None:
        after = _cursor(app, starting_after, ids)
    found = run_queries.page_runs(app.engine, ids, limit, status=status, after=after)
    return Page(found.runs, found.has_more)


def _cursor(app: App, run_id: str, pipeline_ids: list[str]) -> Run:
    try:
        run: Run | None = runner.get_run(app, run_id, 0)
    except NotFound:
        run = None
    if run is None or run.pipeline_id not in pipeline_ids:
        raise InvalidInput(f"no run with id {run_id!r} in this list", "starting_after")
    return run


def page_errors(
    app: App, run_id: str, *, limit: int = 20, starting_after: str | None = None
) -> Page:
    """The run's stored per-record errors (the first 1,000 of each run are kept), in
    the order they happened: ``{"id", "source_id", "step", "message"}``."""
    _check_limit(limit)
    runner.get_run(app, run_id, 0)  # NotFound for another workspace's run
    after = None
    if starting_after is not None:
        if not (starting_after.isascii() and starting_after.isdigit()) or len(starting_after) > 9:
            raise InvalidInput(f"an error id is a number; got {starting_after!r}", "starting_after")
        after = int(starting_after)
    found = run_queries.page_errors(app.engine, run_id, limit, after)
    if found is None:
        raise InvalidInput(f"no error with id {starting_after!r} in this run", "starting_after")
    return Page([{**e, "id": str(e["id"])} for e in found.errors], found.has_more)
