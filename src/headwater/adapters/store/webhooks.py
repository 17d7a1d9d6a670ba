"""Reading and writing webhook rows (`webhook_tables`): endpoints (with the refused
deliveries counted on them), accepted event ids and coalesced follow-up requests.
Plain functions of a SQLAlchemy engine; the rules (what covers a request, when to
enqueue, when refusals are written) live in `headwater.services.webhooks`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    Table,
    and_,
    case,
    delete,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from headwater.adapters.store.objects import aware
from headwater.adapters.store.tables import runs
from headwater.adapters.store.webhook_tables import (
    webhook_endpoints,
    webhook_events,
    webhook_followups,
)


@dataclass(frozen=True)
class WebhookEndpoint:
    """A connection's webhook settings; `secret_encrypted` is bound to the connection id."""

    connection_id: str
    workspace_id: str
    stripe_endpoint_id: str | None  # None: an endpoint made by hand in the Dashboard
    url: str | None
    secret_encrypted: str
    secret_masked: str
    created_at: datetime
    last_delivery_at: datetime | None
    #: Deliveries refused since `created_at` (a new secret starts again at 0), and the
    #: latest one's time and short reason (`signature`'s fixed reasons).
    refused_count: int = 0
    last_refused_at: datetime | None = None
    last_refusal: str | None = None


@dataclass(frozen=True)
class Refusals:
    """Refused deliveries to one endpoint, counted in a serving process's memory:
    `since` is the endpoint's `created_at` when they were judged (its secret)."""

    connection_id: str
    since: datetime
    count: int
    last_at: datetime
    last_reason: str


@dataclass(frozen=True)
class FollowUp:
    """A requested run of one pipeline: first and latest request, and when it is due."""

    pipeline_id: str
    workspace_id: str
    first_at: datetime
    requested_at: datetime
    due_at: datetime
    covered_by: str | None = None  # the run claimed since the latest request
    settling: bool = False  # its run was enqueued: only whether it settled is left


def _of(cls: Any, row: Any) -> Any:
    data = {f.name: row._mapping[f.name] for f in fields(cls)}
    return cls(**{k: aware(v) if isinstance(v, datetime) else v for k, v in data.items()})


def get_endpoint(engine: Engine, connection_id: str) -> WebhookEndpoint | None:
    query = select(webhook_endpoints).where(webhook_endpoints.c.connection_id == connection_id)
    with engine.connect() as conn:
        row = conn.execute(query).first()
    return None if row is None else _of(WebhookEndpoint, row)


def save_endpoint(engine: Engine, endpoint: WebhookEndpoint) -> WebhookEndpoint:
    """Store `endpoint`, replacing the connection's previous one."""
    where = webhook_endpoints.c.connection_id == endpoint.connection_id
    with engine.begin() as conn:
        conn.execute(delete(webhook_endpoints).where(where))
        conn.execute(insert(webhook_endpoints).values(**asdict(endpoint)))
    return endpoint


def delete_endpoint(engine: Engine, connection_id: str) -> bool:
    where = webhook_endpoints.c.connection_id == connection_id
    with engine.begin() as conn:
        return bool(conn.execute(delete(webhook_endpoints).where(where)).rowcount)


def add_refusals(engine: Engine, tallies: Sequence[Refusals]) -> None:
    """Add `tallies` to their endpoints, in one transaction.  A tally whose endpoint was
    replaced since (a new secret: another `created_at`) or removed changes nothing: its
    deliveries were judged against a secret no longer stored.  Counts add up, so
    several serving processes can each add theirs; the latest refusal wins."""
    table = webhook_endpoints.c
    with engine.begin() as conn:
        for tally in tallies:
            later = or_(table.last_refused_at.is_(None), table.last_refused_at < tally.last_at)
            conn.execute(
                update(webhook_endpoints)
                .where(table.connection_id == tally.connection_id, table.created_at == tally.since)
                .values(
                    refused_count=table.refused_count + tally.count,
                    last_refused_at=case((later, tally.last_at), else_=table.last_refused_at),
                    last_refusal=case((later, tally.last_reason), else_=table.last_refusal),
                )
            )


def record_delivery(
    engine: Engine,
    connection_id: str,
    event_id: str,
    now: datetime,
    asks: Sequence[tuple[str, str]],
    timing: tuple[float, float],
) -> bool:
    """Record an accepted event and its requests in one transaction; False (and nothing
    written) when the event id was seen already.

    `asks` are (pipeline id, workspace id) to request a run of; `timing` is (quiet,
    most): a request is due `quiet` seconds after the pipeline's latest one, but never
    later than `most` seconds after its first, so a steady stream of changes still runs.
    One transaction whose first statement writes: on SQLite it takes the write lock at
    once (no read-to-write upgrade to fail under load)."""
    with engine.begin() as conn:
        values = {"connection_id": connection_id, "event_id": event_id, "received_at": now}
        if not _insert_new(conn, webhook_events, values):
            return False
        for pipeline_id, workspace_id in asks:
            _ask(conn, pipeline_id, workspace_id, now, timing)
        conn.execute(
            update(webhook_endpoints)
            .where(webhook_endpoints.c.connection_id == connection_id)
            .values(last_delivery_at=now)
        )
    return True


def ask_runs(
    engine: Engine, asks: Sequence[tuple[str, str]], now: datetime, timing: tuple[float, float]
) -> None:
    """Request a run of each (pipeline id, workspace id) in `asks`, as a delivery does,
    without an event (`record_delivery` for what `timing` means)."""
    with engine.begin() as conn:
        for pipeline_id, workspace_id in asks:
            _ask(conn, pipeline_id, workspace_id, now, timing)


def endpoint_connections(engine: Engine) -> list[tuple[str, str]]:
    """(connection id, workspace id) of every connection with a webhook endpoint."""
    table = webhook_endpoints.c
    with engine.connect() as conn:
        found = conn.execute(select(table.connection_id, table.workspace_id))
        return [(row.connection_id, row.workspace_id) for row in found]


def _insert_new(conn: Connection, table: Table, values: dict[str, Any]) -> bool:
    """INSERT unless the primary key exists (no error either way); True if inserted.
    (RETURNING tells, as psycopg reports no row count for ON CONFLICT DO NOTHING.)"""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    key = next(iter(table.primary_key.columns))
    statement = dialect.insert(table).values(**values).on_conflict_do_nothing().returning(key)
    return conn.execute(statement).first() is not None


def _ask(
    conn: Connection,
    pipeline_id: str,
    workspace_id: str,
    now: datetime,
    timing: tuple[float, float],
) -> None:
    quiet, most = (timedelta(seconds=t) for t in timing)
    fresh = {
        "pipeline_id": pipeline_id,
        "workspace_id": workspace_id,
        "first_at": now,
        "requested_at": now,
        "due_at": now + quiet,
    }
    if _insert_new(conn, webhook_followups, fresh):
        return
    where = webhook_followups.c.pipeline_id == pipeline_id
    row = conn.execute(select(webhook_followups).where(where).with_for_update()).one()
    first = aware(row.first_at) or now
    conn.execute(
        update(webhook_followups)
        .where(where)
        .values(
            # Always later than the one before (compare-and-set: `drop_followup`),
            # and no longer covered: the run claimed before may have read before it.
            requested_at=max((aware(row.requested_at) or now) + _TICK, now),
            due_at=min(first + most, now + quiet),
            covered_by=None,
            settling=False,
        )
    )


_TICK = timedelta(microseconds=1)


def cover_requests(conn: Connection, run_id: str) -> None:
    """In the transaction claiming `run_id`: the requests of its pipeline made so far
    are covered by it (it reads Stripe's events after this commits, and each request
    was recorded after Stripe made the event it announces)."""
    pipeline = select(runs.c.pipeline_id).where(runs.c.id == run_id).scalar_subquery()
    conn.execute(
        update(webhook_followups)
        .where(webhook_followups.c.pipeline_id == pipeline)
        .values(covered_by=run_id)
    )


def hold_followup(engine: Engine, followup: FollowUp, until: datetime) -> None:
    """Look at the request again at `until` (unless a newer request came meanwhile):
    held requests go to the back, behind those that can run now."""
    table = webhook_followups.c
    with engine.begin() as conn:
        conn.execute(
            update(webhook_followups)
            .where(
                table.pipeline_id == followup.pipeline_id,
                table.requested_at == followup.requested_at,
            )
            .values(due_at=until)
        )


def settle_followup(engine: Engine, followup: FollowUp, until: datetime) -> bool:
    """Its run was enqueued: keep the request as a settling check, looked at again at
    `until` (unless a newer request came meanwhile: then False, and it is that)."""
    table = webhook_followups.c
    with engine.begin() as conn:
        done = conn.execute(
            update(webhook_followups)
            .where(
                table.pipeline_id == followup.pipeline_id,
                table.requested_at == followup.requested_at,
            )
            .values(due_at=until, settling=True)
        )
    return bool(done.rowcount)


def prune_events(engine: Engine, before: datetime) -> int:
    """Forget event ids received before `before`; returns how many."""
    with engine.begin() as conn:
        done = conn.execute(delete(webhook_events).where(webhook_events.c.received_at < before))
    return int(done.rowcount)


def due_followups(engine: Engine, now: datetime, limit: int = 100) -> list[FollowUp]:
    query = (
        select(webhook_followups)
        .where(webhook_followups.c.due_at <= now)
        .order_by(webhook_followups.c.due_at)
        .limit(limit)
    )
    with engine.connect() as conn:
        return [_of(FollowUp, row) for row in conn.execute(query)]


def drop_followup(engine: Engine, followup: FollowUp) -> bool:
    """Delete the row if no request came after `followup` was read (compare-and-delete);
    False when a newer request keeps it."""
    table = webhook_followups.c
    with engine.begin() as conn:
        done = conn.execute(
            delete(webhook_followups).where(
                and_(
                    table.pipeline_id == followup.pipeline_id,
                    table.requested_at == followup.requested_at,
                )
            )
        )
    return bool(done.rowcount)


def pending_followups(engine: Engine) -> list[FollowUp]:
    """Every follow-up not yet enqueued (for status and tests)."""
    with engine.connect() as conn:
        return [_of(FollowUp, row) for row in conn.execute(select(webhook_followups))]
