"""An incremental run whose event history expires midway turns full (rule 3 then holds
for every row, the ones its own incremental part wrote included)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from tests.services.conftest import MakePipeline, connect
from tests.services.test_incremental import sdk
from tests.services.test_run_failures import ids, script_source

from headwater.adapters.connectors.contract import ChangeBatch, HistoryExpired
from headwater.kernel.entities import RunStatus
from headwater.sandbox.testing import start_sandbox
from headwater.services.app import App
from headwater.services.pipelines import engine, runner


def _expires_after_first_page(
    app: App, pipeline_id: str, wanted: str, meanwhile: Callable[[], None]
) -> Callable[[Any], Callable[..., Iterator[ChangeBatch]]]:
    """For `script_source`: the real change read's first page, then (once `wanted` is
    in the warehouse and `meanwhile` changed Stripe) the history is gone."""

    def scripted(real: Any) -> Callable[..., Iterator[ChangeBatch]]:
        def read_changes(position: dict[str, Any]) -> Iterator[ChangeBatch]:
            yield next(iter(real.read_changes(position)))
            deadline = time.monotonic() + 10
            while wanted not in ids(app, pipeline_id) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert wanted in ids(app, pipeline_id), "the incremental part wrote nothing"
            meanwhile()
            raise HistoryExpired("the event after the first page left Stripe's 30 days")

        return read_changes

    return scripted


@pytest.mark.parametrize("how", ["deleted", "filtered out"])
def test_rows_the_incremental_part_wrote_are_purged_when_the_full_part_does_not_see_them(
    app: App, make_pipeline: MakePipeline, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    """A customer created (so written by the run's incremental part), then deleted in
    Stripe or changed to fail the filter before the full part read everything, was kept:
    the purge removes only the rows of other runs, and this row was the run's own."""
    monkeypatch.setattr(engine, "WRITE_BATCH", 1)
    with start_sandbox(customers=30, seed=61) as sb:
        stripe = sdk(sb)
        keep = {
            "logical": "and",
            "conditions": [
                {"property": "email", "operator": "does not contain", "values": ["@gone."]}
            ],
        }
        pipeline = make_pipeline(connect(app, sb), filter=keep)
        assert runner.run_pipeline(app, pipeline.id).status == RunStatus.SUCCEEDED
        ann = stripe.v1.customers.create({"email": "ann@example.com"}).id

        def meanwhile() -> None:
            if how == "deleted":
                stripe.v1.customers.delete(ann)
            else:
                stripe.v1.customers.update(ann, {"email": "ann@gone.example"})

        reads = _expires_after_first_page(app, pipeline.id, ann, meanwhile)
        script_source(monkeypatch, read_changes=reads)
        run = runner.run_pipeline(app, pipeline.id)
        listed = {c.id for c in stripe.v1.customers.list({"limit": 100}).auto_paging_iter()}
    assert run.status == RunStatus.SUCCEEDED, run.message
    assert run.kind == "full"
    assert "incremental history is gone" in run.summary["reason"]
    assert ann not in ids(app, pipeline.id)
    assert ids(app, pipeline.id) == listed - {ann}
    assert run.counters["deleted"] >= 1
