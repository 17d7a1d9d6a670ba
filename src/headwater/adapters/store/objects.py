"""Reading and writing metadata entities.  Plain functions of a SQLAlchemy engine."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import asdict, fields
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import Connection as Db
from sqlalchemy import (
    DateTime,
    Engine,
    Integer,
    Select,
    Table,
    and_,
    bindparam,
    delete,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from headwater.adapters.store import tables
from headwater.kernel.entities import Connection, Pipeline, Workspace
from headwater.kernel.errors import Conflict, InvalidInput, NotFound
from headwater.kernel.state import PipelineState

E = TypeVar("E", Workspace, Connection, Pipeline)

_TABLES: dict[type[Any], Table] = {
    Workspace: tables.workspaces,
    Connection: tables.connections,
    Pipeline: tables.pipelines,
}
_NOUNS = {Workspace: "workspace", Connection: "connection", Pipeline: "pipeline"}
_FIELDS = {cls: tuple(f.name for f in fields(cls)) for cls in _TABLES}


_DATETIMES = {
    cls: tuple(c.name for c in table.c if isinstance(c.type, DateTime))
    for cls, table in _TABLES.items()
}


def _entity(cls: type[E], row: Any) -> E:
    # SQLite gives back the UTC datetimes it stores naive: every one is made aware, so
    # an entity reads the same from both stores (and shows the same offset).
    data: dict[str, Any] = dict(row._mapping)
    for name in _DATETIMES[cls]:
        data[name] = aware(data[name])
    if cls is Pipeline:  # stored as JSON (`asdict` turned it into a dict on the way in)
        data["state"] = PipelineState.from_dict(data["state"])
    return cls(**{name: data[name] for name in _FIELDS[cls]})


def aware(ts: datetime | None) -> datetime | None:
    """`ts` as an aware UTC datetime: SQLite returns the UTC values it stores naive."""
    if ts is not None and ts.tzinfo is None:
        return ts.replace(tzinfo=UTC)
    return ts


def add(engine: Engine, entity: E) -> E:
    with engine.begin() as conn:
        conn.execute(insert(_TABLES[type(entity)]).values(**asdict(entity)))
    return entity


def add_or_get(engine: Engine, entity: E) -> E:
    """Insert `entity` unless its id is stored already (another process may insert it
    at the same moment); the stored one either way."""
    table = _TABLES[type(entity)]
    with engine.begin() as conn:
        dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
        statement = dialect.insert(table).values(**asdict(entity))
        conn.execute(statement.on_conflict_do_nothing(index_elements=[table.c.id]))
    return get(engine, type(entity), entity.id)


@functools.cache
def _get_query(table: Table, scoped: bool) -> Select[Any]:
    """The lookup of one entity by ``:id`` (and ``:workspace_id`` when `scoped`), built
    once per shape: building a statement costs more than SQLite takes to answer it."""
    query = select(table).where(table.c.id == bindparam("id"))
    if scoped:
        query = query.where(table.c.workspace_id == bindparam("workspace_id"))
    return query


def get(engine: Engine, cls: type[E], entity_id: str, workspace_id: str | None = None) -> E:
    scoped = workspace_id is not None and cls is not Workspace
    with engine.connect() as conn:
        row = conn.execute(
            _get_query(_TABLES[cls], scoped), {"id": entity_id, "workspace_id": workspace_id}
        ).first()
    if row is None:
        raise NotFound(f"no {_NOUNS[cls]} with id {entity_id!r}")
    return _entity(cls, row)


def find(engine: Engine, cls: type[E], **where: Any) -> list[E]:
    table = _TABLES[cls]
    query = select(table).order_by(table.c.created_at)
    for column, value in where.items():
        query = query.where(table.c[column] == value)
    with engine.connect() as conn:
        return [_entity(cls, row) for row in conn.execute(query)]


@functools.cache
def _page_query(table: Table, columns: tuple[str, ...], after: bool) -> Select[Any]:
    """A page of entities whose `columns` equal ``:w_<column>``, newest first, after the
    entity at (``:after_created``, ``:after_id``) when `after`; ``:limit`` rows.  Built
    once per shape (see `_get_query`)."""
    query = select(table).where(*[table.c[c] == bindparam(f"w_{c}") for c in columns])
    if after:
        created = bindparam("after_created", type_=table.c.created_at.type)
        query = query.where(
            or_(
                table.c.created_at < created,
                and_(table.c.created_at == created, table.c.id < bindparam("after_id")),
            )
        )
    order = (table.c.created_at.desc(), table.c.id.desc())
    return query.order_by(*order).limit(bindparam("limit", type_=Integer))


def find_page(
    engine: Engine, cls: type[E], limit: int, after_id: str | None = None, **where: Any
) -> tuple[list[E], bool]:
    """Up to `limit` entities matching `where`, newest first, after the entity
    `after_id` (which must match `where`, else `InvalidInput` at ``starting_after``);
    and whether more follow.  One keyset query, however many entities exist."""
    table = _TABLES[cls]
    params: dict[str, Any] = {f"w_{column}": value for column, value in where.items()}
    params["limit"] = limit + 1
    with engine.connect() as conn:
        if after_id is not None:
            conditions = [table.c[column] == value for column, value in where.items()]
            found = conn.execute(
                select(table.c.created_at).where(table.c.id == after_id, *conditions)
            ).first()
            if found is None:
                raise InvalidInput(f"no item with id {after_id!r} in this list", "starting_after")
            params |= {"after_created": found.created_at, "after_id": after_id}
        query = _page_query(table, tuple(where), after_id is not None)
        rows = conn.execute(query, params).all()
    return [_entity(cls, row) for row in rows[:limit]], len(rows) > limit


def events_read(engine: Engine, workspace_id: str) -> dict[str, bool]:
    """Whether each connection of the workspace may read Stripe's events, by id (what a
    pipeline's document needs of its connection: one narrow query for a whole page)."""
    with engine.connect() as conn:
        rows = conn.execute(_EVENTS_READ, {"workspace_id": workspace_id})
        return {row.id: row.events_read for row in rows}


_EVENTS_READ = select(tables.connections.c.id, tables.connections.c.events_read).where(
    tables.connections.c.workspace_id == bindparam("workspace_id")
)


def save(engine: Engine, entity: E, only: Sequence[str] | None = None) -> E:
    with engine.begin() as conn:
        _save(conn, entity, only)
    return entity


def save_together(engine: Engine, saves: Sequence[tuple[Any, Sequence[str]]]) -> None:
    """Save each ``(entity, only)`` in one transaction: all of them, or none
    (`NotFound` for one that is gone)."""
    with engine.begin() as conn:
        for entity, only in saves:
            _save(conn, entity, only)


def _save(conn: Db, entity: Any, only: Sequence[str] | None) -> None:
    table = _TABLES[type(entity)]
    values = asdict(entity)
    values.pop("id")
    if only is not None:
        values = {k: values[k] for k in only}
    result = conn.execute(update(table).where(table.c.id == entity.id).values(**values))
    if result.rowcount == 0:
        raise NotFound(f"no {_NOUNS[type(entity)]} with id {entity.id!r}")


def full_run_done(engine: Engine, pipeline: Pipeline) -> bool:
    """Save the display copy of a full run's state and clear the pipeline's need for a
    full run, unless its filter or transformation changed since the run read them
    (state rule 4: the change needs a full run of its own).  Compared under the row's
    lock (SQLite: the write lock), so a change committed meanwhile is never
    overwritten.  Whether the need was cleared."""
    t = tables.pipelines
    with engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("BEGIN IMMEDIATE")  # pysqlite would defer the lock
        try:
            row = conn.execute(
                select(t.c.filter, t.c.transformation)
                .where(t.c.id == pipeline.id)
                .with_for_update()
            ).one_or_none()
            if row is None:
                raise NotFound(f"no pipeline with id {pipeline.id!r}")
            same = (row.filter, row.transformation) == (pipeline.filter, pipeline.transformation)
            values: dict[str, Any] = {"state": asdict(pipeline.state)}
            if same:
                values["needs_full"] = False
            conn.execute(update(t).where(t.c.id == pipeline.id).values(**values))
            conn.commit()
        except BaseException:
            conn.rollback()
            raise
    return same


def remove(engine: Engine, cls: type[E], entity_id: str) -> None:
    """Delete the entity; a pipeline with its runs, refused (`Conflict`, nothing
    deleted) while one of them is running; a connection with what hangs off it (its
    webhook settings: the foreign keys cascade), refused while a pipeline uses it."""
    table = _TABLES[cls]
    try:
        with engine.begin() as conn:
            if cls is Pipeline:
                _remove_runs(conn, entity_id)
            if cls is Connection:
                _refuse_if_used(conn, entity_id)
            result = conn.execute(delete(table).where(table.c.id == entity_id))
    except IntegrityError as exc:  # a pipeline made by another transaction meanwhile
        if cls is not Connection:
            raise
        raise Conflict(f"connection {entity_id} is used by a pipeline; delete it first") from exc
    if result.rowcount == 0:
        raise NotFound(f"no {_NOUNS[cls]} with id {entity_id!r}")


def _refuse_if_used(conn: Db, connection_id: str) -> None:
    pipes = tables.pipelines.c
    used = conn.execute(
        select(pipes.id).where(pipes.connection_id == connection_id).order_by(pipes.id)
    ).scalars()
    names = ", ".join(used)
    if names:
        raise Conflict(
            f"connection {connection_id} is used by pipelines {names}; delete them first"
        )


def _remove_runs(conn: Db, pipeline_id: str) -> None:
    runs = tables.runs.c
    ended = (runs.pipeline_id == pipeline_id) & (runs.status != "running")
    conn.execute(
        delete(tables.run_errors).where(
            tables.run_errors.c.run_id.in_(select(runs.id).where(ended))
        )
    )
    conn.execute(delete(tables.runs).where(ended))
    # A run claimed meanwhile (its claim locked the row: the delete waited, then left
    # it) keeps the pipeline: deleting it would orphan what that run writes.
    running = conn.execute(select(runs.id).where(runs.pipeline_id == pipeline_id)).scalar()
    if running is not None:
        raise Conflict(f"pipeline {pipeline_id} has a running run ({running}); try again later")
