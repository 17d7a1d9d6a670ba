"""Migration 0008_webhooks creates exactly the tables `webhook_tables` declares, on both
stores; the event-id and follow-up rows behave as the service relies on."""

from __future__ import annotations

from datetime import timedelta

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine
from tests.store.seeding import seed

from headwater.adapters.store import webhook_tables
from headwater.adapters.store import webhooks as store
from headwater.adapters.store.tables import metadata
from headwater.kernel.entities import utcnow

TABLES = {
    webhook_tables.webhook_endpoints.name,
    webhook_tables.webhook_events.name,
    webhook_tables.webhook_followups.name,
}


def _about_webhooks(diff: object) -> bool:
    text = repr(diff)
    return any(f"'{name}'" in text or f"Table('{name}'" in text for name in TABLES)


def test_the_migrated_webhook_tables_match_their_declaration(engine: Engine) -> None:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        differences = [d for d in compare_metadata(context, metadata) if _about_webhooks(d)]
    assert differences == []


def test_event_ids_are_recorded_once_and_pruned_by_age(engine: Engine) -> None:
    pipeline = seed(engine)
    conn_id = pipeline.connection_id
    old, now = utcnow() - timedelta(days=4), utcnow()
    timing = (0.3, 4.0)
    asks = [(pipeline.id, pipeline.workspace_id)]
    assert store.record_delivery(engine, conn_id, "evt_1", old, asks, timing)
    assert not store.record_delivery(engine, conn_id, "evt_1", now, asks, timing)
    [ask] = store.pending_followups(engine)
    assert ask.requested_at == old  # the duplicate changed nothing
    assert store.record_delivery(engine, conn_id, "evt_2", now, asks, timing)
    [ask] = store.pending_followups(engine)
    assert (ask.first_at, ask.requested_at) == (old, now)
    assert ask.due_at == old + timedelta(seconds=4.0)  # never later than the first + most
    assert store.prune_events(engine, now - timedelta(days=3)) == 1
    assert store.record_delivery(engine, conn_id, "evt_1", now, [], timing)  # new again
    assert store.drop_followup(engine, ask)
    assert store.pending_followups(engine) == []
