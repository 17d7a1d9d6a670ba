"""The webhook event-id and follow-up rows behave as the service relies on, on both
stores (that migration 0008_webhooks matches the declared tables is checked with every
other table in `test_database`)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Engine
from tests.store.seeding import seed

from headwater.adapters.store import webhooks as store
from headwater.kernel.entities import utcnow


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
