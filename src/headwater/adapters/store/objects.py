"""Reading and writing metadata entities.  Plain functions of a SQLAlchemy engine."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, fields
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import Engine, Table, and_, delete, insert, or_, select, update

from headwater.adapters.store import tables
from headwater.kernel.entities import Connection, Pipeline, Workspace
from headwater.kernel.errors import InvalidInput, NotFound
from headwater.kernel.state import PipelineState

E = TypeVar("E", Workspace, Connection, Pipeline)

_TABLES: dict[type[Any], Table] = {
    Workspace: tables.workspaces,
    Connection: tables.connections,
    Pipeline: tables.pipelines,
}
_NOUNS = {Workspace: "workspace", Connection: "connection", Pipeline: "pipeline"}
_FIELDS = {cls: tuple(f.name for f in fields(cls)) for cls in _TABLES}


def _entity(cls: type[E], row: Any) -> E:
    # SQLite gives back the UTC datetimes it stores naive: every one is made aware, so
    # an entity reads the same from both stores (and shows the same offset).
    data: dict[str, Any] = {
        k: aware(v) if isinstance(v, datetime) else v for k, v in row._mapping.items()
    }
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


def get(engine: Engine, cls: type[E], entity_id: str, workspace_id: str | None = None) -> E:
    table = _TABLES[cls]
    query = select(table).where(table.c.id == entity_id)
    if workspace_id is not None and cls is not Workspace:
        query = query.where(table.c.workspace_id == workspace_id)
    with engine.connect() as conn:
        row = conn.execute(query).first()
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


def find_page(
    engine: Engine, cls: type[E], limit: int, after_id: str | None = None, **where: Any
) -> tuple[list[E], bool]:
    """Up to `limit` entities matching `where`, newest first, after the entity
    `after_id` (which must match `where`, else `InvalidInput` at ``starting_after``);
    and whether more follow.  One keyset query, however many entities exist."""
    table = _TABLES[cls]
    conditions = [table.c[column] == value for column, value in where.items()]
    query = select(table).where(*conditions)
    with engine.connect() as conn:
        if after_id is not None:
            found = conn.execute(
                select(table.c.created_at).where(table.c.id == after_id, *conditions)
            ).first()
            if found is None:
                raise InvalidInput(f"no item with id {after_id!r} in this list", "starting_after")
            query = query.where(
                or_(
                    table.c.created_at < found.created_at,
                    and_(table.c.created_at == found.created_at, table.c.id < after_id),
                )
            )
        query = query.order_by(table.c.created_at.desc(), table.c.id.desc()).limit(limit + 1)
        rows = conn.execute(query).all()
    return [_entity(cls, row) for row in rows[:limit]], len(rows) > limit


def events_read(engine: Engine, workspace_id: str) -> dict[str, bool]:
    """Whether each connection of the workspace may read Stripe's events, by id (what a
    pipeline's document needs of its connection: one narrow query for a whole page)."""
    table = tables.connections
    query = select(table.c.id, table.c.events_read).where(table.c.workspace_id == workspace_id)
    with engine.connect() as conn:
        return {row.id: row.events_read for row in conn.execute(query)}


def save(engine: Engine, entity: E, only: Sequence[str] | None = None) -> E:
    table = _TABLES[type(entity)]
    values = asdict(entity)
    values.pop("id")
    if only is not None:
        values = {k: values[k] for k in only}
    with engine.begin() as conn:
        result = conn.execute(update(table).where(table.c.id == entity.id).values(**values))
    if result.rowcount == 0:
        raise NotFound(f"no {_NOUNS[type(entity)]} with id {entity.id!r}")
    return entity


def remove(engine: Engine, cls: type[E], entity_id: str) -> None:
    table = _TABLES[cls]
    with engine.begin() as conn:
        if cls is Pipeline:
            run_ids = select(tables.runs.c.id).where(tables.runs.c.pipeline_id == entity_id)
            conn.execute(delete(tables.run_errors).where(tables.run_errors.c.run_id.in_(run_ids)))
            conn.execute(delete(tables.runs).where(tables.runs.c.pipeline_id == entity_id))
        result = conn.execute(delete(table).where(table.c.id == entity_id))
    if result.rowcount == 0:
        raise NotFound(f"no {_NOUNS[cls]} with id {entity_id!r}")
