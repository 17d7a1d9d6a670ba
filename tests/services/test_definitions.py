"""Filters and expression mappings decide exactly which rows land with which values."""

from __future__ import annotations

from typing import Any

import pytest
import stripe
from tests.services.conftest import MakePipeline, connect, reload

from headwater.kernel.errors import InvalidInput
from headwater.sandbox.testing import RunningSandbox, start_sandbox
from headwater.services import model
from headwater.services.app import App
from headwater.services.pipelines import manage, preview, runner

EU = {
    "logical": "and",
    "conditions": [
        {"property": "address.country", "operator": "is one of", "values": ["IT", "FR", "DE"]},
        {
            "logical": "or",
            "conditions": [
                {"property": "metadata.plan", "operator": "is", "values": ["pro"]},
                {"property": "balance", "operator": "is less than", "values": [0]},
            ],
        },
    ],
}
MAPPING = {
    "email": "lower(trim(email))",
    "first_name": "initcap(split_part(name, ' ', 1))",
    "address.country": "address.country",
    "created_at": "from_unix(created)",
    "metadata": "metadata",
    "plan": "coalesce(metadata.plan, 'none')",
}


def _wanted(customer: dict[str, Any]) -> bool:
    country = (customer.get("address") or {}).get("country")
    plan = (customer.get("metadata") or {}).get("plan")
    return country in {"IT", "FR", "DE"} and (plan == "pro" or customer["balance"] < 0)


def _all_customers(sb: RunningSandbox) -> list[dict[str, Any]]:
    client = stripe.StripeClient(sb.secret_key, base_addresses={"api": sb.url})
    listing = client.v1.customers.list({"limit": 100}).auto_paging_iter()
    return [c.to_dict(recursive=True) for c in listing]


def test_filter_and_expressions_decide_rows_and_values(
    warehouse_app: App, make_pipeline: MakePipeline
) -> None:
    app = warehouse_app
    model.add(app, "plan", "string")
    with start_sandbox(customers=1200, seed=21) as sb:
        pipeline = make_pipeline(connect(app, sb), mapping=MAPPING, filter=EU)
        run = runner.run_pipeline(app, pipeline.id)
        customers = _all_customers(sb)
    assert run.status == "succeeded", run.message
    expected = {c["id"]: c for c in customers if _wanted(c)}
    assert 0 < len(expected) < len(customers)
    assert run.counters["filtered_out"] == len(customers) - len(expected)
    wh = app.warehouse()
    rows = {r["_source_id"]: r for r in wh.identities(pipeline.id)}
    wh.close()
    assert rows.keys() == expected.keys()
    for source_id, row in rows.items():
        c = expected[source_id]
        assert row["email"] == (c["email"].strip().lower() if c["email"] else None)
        first = c["name"].split(" ")[0] if c["name"] else None
        assert row["first_name"] == (first[:1].upper() + first[1:].lower() if first else None)
        assert row["plan"] == c["metadata"].get("plan", "none")
        assert int(row["created_at"].timestamp()) == c["created"]


def test_a_changed_filter_makes_the_next_run_full_and_purges(
    app: App, make_pipeline: MakePipeline
) -> None:
    with start_sandbox(customers=400, seed=8) as sb:
        pipeline = make_pipeline(connect(app, sb))
        assert runner.run_pipeline(app, pipeline.id).counters["written"] == 400
        only_us = {
            "logical": "and",
            "conditions": [{"property": "address.country", "operator": "is", "values": ["US"]}],
        }
        manage.update(app, pipeline.id, manage.PipelineChanges(filter=only_us))
        assert reload(app, pipeline).needs_full
        run = runner.run_pipeline(app, pipeline.id)
        us = [c for c in _all_customers(sb) if (c.get("address") or {}).get("country") == "US"]
    assert run.kind == "full"
    assert run.counters["deleted"] == 400 - len(us)
    wh = app.warehouse()
    assert wh.count(pipeline.id) == len(us)
    wh.close()


@pytest.mark.parametrize(
    ("definition", "message"),
    [
        (
            {
                "filter": {
                    "logical": "and",
                    "conditions": [
                        {"property": "balance", "operator": "starts with", "values": ["1"]}
                    ],
                }
            },
            'conditions[0]: operator "starts with" does not apply to integer property "balance"',
        ),
        ({"mapping": {"email": "lower(balance"}}, "email: line 1, column"),
        ({"mapping": {"nickname": "name"}}, "nickname"),
    ],
)
def test_invalid_definitions_are_rejected_on_save_naming_where(
    app: App, sandbox: RunningSandbox, definition: dict[str, Any], message: str
) -> None:
    conn = connect(app, sandbox)
    spec = {"kind": "mapping", "mapping": definition.get("mapping", {"email": "email"})}
    with pytest.raises(InvalidInput) as info:
        manage.create(app, conn.id, "p", spec, filter=definition.get("filter"))
    assert message in str(info.value)
    assert manage.list_pipelines(app) == []


def test_preview_shows_filtered_samples_with_outputs_and_errors(
    app: App, sandbox: RunningSandbox, make_pipeline: MakePipeline
) -> None:
    conn = connect(app, sandbox)
    unsaved = {"kind": "mapping", "mapping": {"email": "upper(email)", "created_at": "name"}}
    result = preview.preview(app, connection_id=conn.id, transformation=unsaved, filter=EU, limit=7)
    assert len(result.samples) == 7
    assert result.scanned == 7 + result.filtered_out
    named = [s for s in result.samples if s.input.get("name")]
    assert named  # the branch below is exercised
    for sample in result.samples:
        assert _wanted(sample.input)
        if sample.input.get("name"):
            # A name is not a datetime: a per-record validate error, shown, not raised.
            assert sample.status == "error"
            assert sample.step == "validate"
            assert sample.error is not None
            assert "created_at" in sample.error
        assert sample.output is None or sample.output["email"] == (
            sample.input["email"].upper() if sample.input["email"] else None
        )
    saved = make_pipeline(conn)
    assert len(preview.preview(app, pipeline_id=saved.id, limit=3).samples) == 3
    # Its own connection named beside it is the same preview; another connection is
    # refused (it was ignored: the samples came from the pipeline's connection).
    own = preview.preview(app, pipeline_id=saved.id, connection_id=conn.id, limit=3)
    assert len(own.samples) == 3
    other = connect(app, sandbox)
    with pytest.raises(InvalidInput) as refused:
        preview.preview(app, pipeline_id=saved.id, connection_id=other.id, limit=3)
    assert refused.value.location == "connection_id"
    assert conn.id in str(refused.value)
