"""Migration 0005_schedules gives the enabled, scheduled pipelines of an older store
their next slot, and leaves the others never due."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from headwater.adapters.store import objects
from headwater.adapters.store.crypto import Cipher
from headwater.adapters.store.database import engine_url, migrate, open_engine
from headwater.kernel.entities import Pipeline, utcnow
from headwater.kernel.schedules import schedule_offset

PIPELINES = {"pl_hourly": (True, "1h"), "pl_disabled": (False, "1h"), "pl_off": (True, "off")}


def test_migration_0005_schedules_the_enabled_scheduled_pipelines(store_url: str) -> None:
    url = store_url
    cipher = Cipher(b"k" * 32)
    now = utcnow()
    old = sa.create_engine(engine_url(url))
    with old.begin() as conn:
        migrate(conn, "0002_warehouse_secret", cipher=cipher)
        conn.execute(
            sa.text(
                "INSERT INTO workspaces (id, name, customer_model, created_at)"
                " VALUES ('ws', 'default', '[]', :at)"
            ),
            {"at": now},
        )
        conn.execute(
            sa.text(
                "INSERT INTO connections (id, workspace_id, name, kind, base_url,"
                " requests_per_second, api_key_encrypted, api_key_masked, livemode,"
                " events_read, created_at) VALUES ('conn', 'ws', 'c', 'stripe', 'http://x',"
                " 20, 'v1:x', 'sk_test_…abcd', false, true, :at)"
            ),
            {"at": now},
        )
        for pipeline_id, (enabled, schedule) in PIPELINES.items():
            conn.execute(
                sa.text(
                    "INSERT INTO pipelines (id, workspace_id, connection_id, name, description,"
                    " enabled, schedule, incremental, transformation, state, needs_full,"
                    " created_at, updated_at) VALUES (:id, 'ws', 'conn', 'p', '', :enabled,"
                    " :schedule, true, '{}', '{}', true, :at, :at)"
                ),
                {"id": pipeline_id, "enabled": enabled, "schedule": schedule, "at": now},
            )
    old.dispose()
    engine = open_engine(url, cipher=cipher)
    try:
        found = {p: objects.get(engine, Pipeline, p).next_run_at for p in PIPELINES}
    finally:
        engine.dispose()
    assert found["pl_disabled"] is None
    assert found["pl_off"] is None
    slot = found["pl_hourly"]
    assert slot is not None
    assert now < slot <= utcnow() + timedelta(hours=1)
    offset = schedule_offset("pl_hourly", timedelta(hours=1))
    assert slot.minute * 60 + slot.second == offset.total_seconds()
