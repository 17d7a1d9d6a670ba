"""Read-only queries over run rows for lists and pages: newest first, one page at a
time with a keyset cursor (the run the previous page ended with), each a single
indexed query so that a store with many thousands of runs answers in constant time.

Order is ``created_at`` descending, then ``id`` descending to break ties (two runs
created in the same microsecond still have one order).  A page is read with one row
more than asked, which tells whether another page follows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Engine, ScalarSelect, and_, bindparam, or_, select

from headwater.adapters.store.runs import _run
from headwater.adapters.store.tables import pipelines, run_errors, runs
from headwater.kernel.entities import Run, RunStatus

_newest = runs.alias("newest")


def _of_newest(column: ColumnElement[Any]) -> ScalarSelect[Any]:
    """`column` of the newest run of the pipeline of the enclosing query's row."""
    return (
        select(column)
        .where(_newest.c.pipeline_id == pipelines.c.id)
        # `created_at` alone, so that the index gives the newest at once (with `id`
        # too, SQLite sorted every run of the pipeline: 8 ms at 10,000 runs).  A
        # pipeline's runs never share a microsecond: one is live at a time.
        .order_by(_newest.c.created_at.desc())
        .limit(1)
        .scalar_subquery()
    )


#: The newest run of each pipeline in ``:ids`` (its id null when it has none), built
#: once (building the expression costs more than running it): a probe of
#: ``ix_runs_pipeline`` per pipeline and column, on both stores.  (A join on the
#: newest id instead made PostgreSQL hash every run; SQLite has no LATERAL.)  Only the
#: columns a pipeline's document shows: a run's counters and summary are JSON to decode.
_LATEST = select(
    pipelines.c.id.label("pipeline_id"),
    _of_newest(_newest.c.id).label("id"),
    _of_newest(_newest.c.status).label("status"),
    _of_newest(_newest.c.kind).label("kind"),
).where(pipelines.c.id.in_(bindparam("ids", expanding=True)))


@dataclass(frozen=True)
class RunHead:
    """What a pipeline's document shows of its last run."""

    id: str
    status: str
    kind: str


@dataclass(frozen=True)
class RunPage:
    """Runs newest first and whether more follow."""

    runs: list[Run]
    has_more: bool


def page_runs(
    engine: Engine,
    pipeline_ids: Sequence[str],
    limit: int,
    *,
    status: str | None = None,
    after: Run | None = None,
) -> RunPage:
    """Up to `limit` runs of `pipeline_ids` (optionally of one `status`), newest first,
    starting after the run `after` (the last run of the previous page)."""
    if not pipeline_ids:
        return RunPage([], False)
    query = select(runs).where(runs.c.pipeline_id.in_(list(pipeline_ids)))
    if status is not None:
        query = query.where(runs.c.status == status)
    if after is not None:
        query = query.where(
            or_(
                runs.c.created_at < after.created_at,
                and_(runs.c.created_at == after.created_at, runs.c.id < after.id),
            )
        )
    query = query.order_by(runs.c.created_at.desc(), runs.c.id.desc()).limit(limit + 1)
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return RunPage([_run(r) for r in rows[:limit]], len(rows) > limit)


def latest_runs(engine: Engine, pipeline_ids: Sequence[str]) -> dict[str, RunHead]:
    """The newest run of each of `pipeline_ids` that has one, in one query: one probe
    of the index on ``(pipeline_id, created_at)`` per pipeline, however many runs each
    has."""
    if not pipeline_ids:
        return {}
    with engine.connect() as conn:
        rows = conn.execute(_LATEST, {"ids": list(pipeline_ids)})
        return {
            row.pipeline_id: RunHead(row.id, row.status, row.kind)
            for row in rows
            if row.id is not None
        }


@dataclass(frozen=True)
class ErrorPage:
    """Per-record errors of a run in the order they happened, and whether more follow."""

    errors: list[dict[str, Any]]
    has_more: bool


def page_errors(
    engine: Engine, run_id: str, limit: int, after: int | None = None
) -> ErrorPage | None:
    """Up to `limit` stored errors of the run, oldest first, after the error `after`
    (each error's ``id`` is its position in the store); None when `after` is no error
    of this run."""
    of_run = run_errors.c.run_id == run_id
    query = select(run_errors.c.id, run_errors.c.source_id, run_errors.c.step, run_errors.c.message)
    query = query.where(of_run)
    with engine.connect() as conn:
        if after is not None:
            mine = select(run_errors.c.id).where(of_run, run_errors.c.id == after)
            if conn.execute(mine).first() is None:
                return None
            query = query.where(run_errors.c.id > after)
        rows = conn.execute(query.order_by(run_errors.c.id).limit(limit + 1)).all()
    return ErrorPage([dict(r._mapping) for r in rows[:limit]], len(rows) > limit)


def running_in_workspace(engine: Engine, workspace_id: str) -> list[str]:
    """Ids of the workspace's runs that are importing now (oldest first)."""
    query = (
        select(runs.c.id)
        .join(pipelines, pipelines.c.id == runs.c.pipeline_id)
        .where(pipelines.c.workspace_id == workspace_id, runs.c.status == RunStatus.RUNNING.value)
        .order_by(runs.c.created_at)
    )
    with engine.connect() as conn:
        return [str(r) for r in conn.execute(query).scalars()]
