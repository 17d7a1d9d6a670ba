"""Values from Stripe through a mapping into each warehouse: what is read back is what
the Customer Model's conversion rules say (README, The mapping language), on DuckDB and
PostgreSQL alike, and a value that does not fit is its customer's error naming the
property, never a failed batch nor a changed value."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal

import stripe
from tests.services.conftest import MakePipeline, connect

from headwater.sandbox.testing import start_sandbox
from headwater.services import model
from headwater.services.app import App
from headwater.services.pipelines import runner

PROPERTIES = {
    "stats": "object",
    "stats.count": "integer",
    "stats.amount": "decimal",
    "stats.score": "float",
    "stats.vip": "boolean",
    "renews_at": "datetime",
    "born": "date",
    "nickname": "string",
}
MAPPING = {
    "email": "email",
    "created_at": "created",
    "metadata": "metadata",
    "nickname": "name",
    "stats.count": "metadata.count",
    "stats.amount": "metadata.amount",
    "stats.score": "metadata.score",
    "stats.vip": "metadata.vip",
    "renews_at": "metadata.renews",
    "born": "metadata.born",
}
GOOD = {
    "count": " -42 ",
    "amount": "1234567890.1234567894",
    "score": "-1.5e3",
    "vip": "Yes",
    "renews": "2030-01-01T10:00:00+02:00",
    "born": "1815-12-10",
    "note": '{"b": 1, "a": [true, null]}',
}
#: metadata that does not fit -> the property the error must name.
BAD = [
    ({"count": "1_000"}, "stats.count"),
    ({"count": "\u0661\u0662"}, "stats.count"),
    ({"count": "99999999999999999999"}, "stats.count"),
    ({"amount": "1e40"}, "stats.amount"),
    ({"score": "0x10"}, "stats.score"),
    ({"renews": "9999-12-31T23:00:00-05:00"}, "renews_at"),
    ({"born": "2024-02-30"}, "born"),
    ({"vip": "maybe"}, "stats.vip"),
]


def test_values_read_back_by_the_rules_and_misfits_fail_their_customer_by_property(
    warehouse_app: App, make_pipeline: MakePipeline
) -> None:
    app = warehouse_app
    for path, ptype in PROPERTIES.items():
        model.add(app, path, ptype)
    with start_sandbox(customers=0, seed=5) as sb:
        client = stripe.StripeClient(sb.secret_key, base_addresses={"api": sb.url})
        name = "Zoë \u200b😀 " + "é" * 4000
        good = client.v1.customers.create(
            {"email": "good@example.com", "name": name, "metadata": GOOD}
        )
        bad = {
            client.v1.customers.create(
                {"email": f"bad{i}@example.com", "metadata": {**GOOD, **meta}}
            ).id: (meta, where)
            for i, (meta, where) in enumerate(BAD)
        }
        pipeline = make_pipeline(connect(app, sb), mapping=MAPPING)
        run = runner.run_pipeline(app, pipeline.id)
    assert run.status == "succeeded", run.message
    assert run.counters["written"] == 1
    errors = {e["source_id"]: e for e in run.errors}
    assert sorted(errors) == sorted(bad)
    for sid, (meta, where) in bad.items():
        assert errors[sid]["step"] == "validate"
        assert f"property {where!r}" in errors[sid]["message"], errors[sid]
        shown = json.dumps(next(iter(meta.values())), ensure_ascii=False)[:9]  # the value
        assert shown in errors[sid]["message"]
    wh = app.warehouse()
    try:
        [row] = wh.identities(pipeline.id)
    finally:
        wh.close()
    assert row["_source_id"] == good.id
    assert row["stats_count"] == -42
    assert str(row["stats_amount"]) == "1234567890.123456789"
    assert row["stats_score"] == -1500.0
    assert row["stats_vip"] is True
    assert row["renews_at"] == datetime(2030, 1, 1, 8, tzinfo=UTC)
    assert row["born"] == date(1815, 12, 10)
    assert row["nickname"] == name
    assert row["created_at"].timestamp() == good.created
    assert row["metadata"] == GOOD  # Stripe's metadata: text values, kept as text
    assert isinstance(row["stats_amount"], Decimal)
