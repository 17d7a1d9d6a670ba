"""A preview shows what a run lands: for the same customers, each sample's output is
the warehouse row the import writes (values converted to the Customer Model's types,
object properties flattened to their columns, every column), and each failing sample
carries the error, with its step, that the run records for that customer.

The preview showed what the transformation returned instead, before conversion: unix
seconds where the property is a datetime, ``"12"`` for an integer, ``{"address":
{"city": ...}}`` where the warehouse has ``address_city``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
import stripe
from tests.services.conftest import connect

from headwater.sandbox.testing import start_sandbox
from headwater.services import model
from headwater.services.app import App
from headwater.services.pipelines import history, manage, preview, runner, saving

EXTRA = [
    ("balance", "integer"),
    ("credit", "decimal"),
    ("ratio", "float"),
    ("vip", "boolean"),
    ("since", "date"),
    ("tags", "array"),
]

# Each returns values the import converts (text for numbers, unix seconds for times),
# and `credit` that cannot become a decimal for customers without a `crm_id`.
MAPPING = {
    "email": "email",
    "created_at": "created",
    "balance": "concat('', balance)",
    "credit": "coalesce(metadata.crm_id, 'none')",
    "ratio": "balance",
    "vip": "if(balance < 0, 'yes', 'no')",
    "since": "created",
    "address.city": "address.city",
    "metadata": "metadata",
}
JAVASCRIPT = """
function transform(c) {
  if (!c.email) return null;
  return {email: c.email, created_at: c.created, balance: String(c.balance),
          credit: c.metadata.crm_id || "none", ratio: c.balance,
          vip: c.balance < 0 ? "yes" : "no", since: c.created,
          tags: Object.keys(c.metadata), address: {city: c.address ? c.address.city : null},
          metadata: c.metadata};
}
"""
PYTHON = """
def transform(c):
    if not c.get("email"):
        return None
    return {"email": c["email"], "created_at": c["created"], "balance": str(c["balance"]),
            "credit": c["metadata"].get("crm_id") or "none", "ratio": c["balance"],
            "vip": "yes" if c["balance"] < 0 else "no", "since": c["created"],
            "tags": list(c["metadata"]), "address": {"city": (c.get("address") or {}).get("city")},
            "metadata": c["metadata"]}
"""
DEFINITIONS = {
    "mapping": {"kind": "mapping", "mapping": MAPPING},
    "javascript": {"kind": "javascript", "source": JAVASCRIPT},
    "python": {"kind": "python", "source": PYTHON},
}

STATUSES = ("ok", "error", "skipped")


def plain(value: Any) -> Any:
    """`value` as documents spell it: ISO 8601 times, decimals as text."""
    return orjson.loads(orjson.dumps(value, default=str))


@pytest.mark.parametrize("kind", list(DEFINITIONS))
def test_the_preview_shows_the_rows_and_errors_a_run_lands(warehouse_app: App, kind: str) -> None:
    app = warehouse_app
    for name, ptype in EXTRA:
        model.add(app, name, ptype)
    columns = [c.name for c in app.model().columns]
    with start_sandbox(customers=60, seed=4) as sb:
        pipeline = manage.create(app, connect(app, sb).id, kind, DEFINITIONS[kind])
        shown = plain(preview.preview(app, pipeline_id=pipeline.id, limit=100).as_dict())
        run = runner.run_pipeline(app, pipeline.id)
    assert run.status == "succeeded", run.message
    wh = app.warehouse()
    rows = {r["_source_id"]: plain({c: r[c] for c in columns}) for r in wh.identities(pipeline.id)}
    wh.close()
    stored = history.page_errors(app, run.id, limit=100)
    errors = {e["source_id"]: (e["step"], e["message"]) for e in stored.items}
    samples = shown["samples"]
    assert len(samples) == 60 == run.counters["read"]
    by_status = {status: [s for s in samples if s["status"] == status] for status in STATUSES}
    assert by_status["ok"]  # both are compared
    assert by_status["error"]
    assert sum(map(len, by_status.values())) == len(samples)
    for s in by_status["ok"]:
        created = datetime.fromtimestamp(s["input"]["created"], UTC)
        assert s["output"]["created_at"] == created.isoformat()  # not unix seconds
        assert s["output"]["balance"] == s["input"]["balance"]  # a number, not "12"
        assert list(s["output"]) == columns  # every column, in the model's order
        assert s["output"] == rows[s["source_id"]]
    for s in by_status["error"]:
        assert (s["step"], s["error"]) == errors[s["source_id"]]
        assert s["output"] is None
        assert s["source_id"] not in rows
    for s in by_status["skipped"]:
        assert s["source_id"] not in rows
        assert s["source_id"] not in errors
    assert all("'credit'" in s["error"] for s in by_status["error"])  # naming the property
    # What the transformation returned stays visible beside the row, unconverted.
    for s in samples:
        if s["status"] != "skipped":
            assert s["returned"]["credit"] == s["input"]["metadata"].get("crm_id", "none")


TRAPPED = """
def transform(c):
    if c["metadata"].get("trap") == "memory":
        hoard = []
        while True:
            hoard.append(bytearray(10**7))
    return {"email": c["email"], "created_at": c["created"]}
"""


def test_a_customer_that_breaks_a_limit_fails_alone_as_in_a_run(app: App) -> None:
    """A run retries a batch that broke a runtime's limit in parts (`bisection`), so only
    the customer that broke it fails; the preview (and the trial on save, which warned
    that every sampled customer fails) failed every sample of its batch with the limit,
    an error no run records for them."""
    with start_sandbox(customers=30, seed=9) as sb:
        client = stripe.StripeClient(sb.secret_key, base_addresses={"api": sb.url})
        trap = client.v1.customers.create({"email": "t@x.io", "metadata": {"trap": "memory"}})
        spec = {"kind": "python", "source": TRAPPED}
        saved = saving.save_new(app, connect(app, sb).id, "trapped", spec)
        pipeline = saved.pipeline
        shown = plain(preview.preview(app, pipeline_id=pipeline.id, limit=100).as_dict())
        run = runner.run_pipeline(app, pipeline.id)
    assert run.status == "succeeded", run.message
    # The trial on save, the same retries: one customer of the 31 fails, no warning.
    assert saved.warnings == []
    stored = history.page_errors(app, run.id, limit=100)
    assert [(e["source_id"], e["step"]) for e in stored.items] == [(trap.id, "transform")]
    samples = {s["source_id"]: s for s in shown["samples"]}
    assert len(samples) == 31
    failed = samples.pop(trap.id)
    assert (failed["step"], failed["error"]) == ("transform", stored.items[0]["message"])
    assert "memory limit" in failed["error"]
    assert {s["status"] for s in samples.values()} == {"ok"}
    wh = app.warehouse()
    rows = {r["_source_id"]: plain(r["created_at"]) for r in wh.identities(pipeline.id)}
    wh.close()
    assert {k: s["output"]["created_at"] for k, s in samples.items()} == rows


def test_text_the_warehouse_cannot_store_fails_as_in_a_run(
    warehouse_app: App, warehouse_engine: str
) -> None:
    """A PostgreSQL warehouse refuses the NUL character in text: a run records that
    customer's row as a write error (the rest land); the preview showed it as landing.
    DuckDB stores it: there the preview shows the row."""
    app = warehouse_app
    mapping = {"email": "email", "first_name": "name"}
    with start_sandbox(customers=5, seed=2) as sb:
        client = stripe.StripeClient(sb.secret_key, base_addresses={"api": sb.url})
        nul = client.v1.customers.create({"email": "z@x.io", "name": "Zo\x00e"})
        spec = {"kind": "mapping", "mapping": mapping}
        pipeline = manage.create(app, connect(app, sb).id, "nul", spec)
        shown = plain(preview.preview(app, pipeline_id=pipeline.id, limit=100).as_dict())
        run = runner.run_pipeline(app, pipeline.id)
    assert run.status == "succeeded", run.message
    stored = history.page_errors(app, run.id, limit=100).items
    samples = {s["source_id"]: s for s in shown["samples"]}
    assert len(samples) == 6
    sample = samples.pop(nul.id)
    assert {s["status"] for s in samples.values()} == {"ok"}
    if warehouse_engine == "postgres":
        assert [(e["source_id"], e["step"]) for e in stored] == [(nul.id, "write")]
        assert (sample["status"], sample["step"]) == ("error", "write")
        assert sample["error"] == stored[0]["message"]
        assert "'first_name'" in sample["error"]
        assert sample["output"] is None
    else:
        assert stored == []
        assert sample["status"] == "ok"
        assert sample["output"]["first_name"] == "Zo\x00e"
