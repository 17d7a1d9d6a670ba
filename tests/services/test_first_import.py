"""A first full import into an empty warehouse has nothing to purge (issue 16).

The purge after a full run scans every identity of the pipeline (recording the unseen
as pending, then deleting them); on a first import all of them were written by the run
itself, so the run skips it and commits its position alone.  A later full run, with
identities there before it, still purges what the source no longer has.
"""

from __future__ import annotations

from collections.abc import Collection

import pytest
import stripe
from tests.services.conftest import MakePipeline, connect

from headwater.adapters.warehouse.sql_warehouse import SQLWarehouse
from headwater.kernel.state import PipelineState
from headwater.sandbox.testing import RunningSandbox
from headwater.services.app import App
from headwater.services.pipelines import runner


def test_a_first_full_import_skips_the_purge_and_a_later_one_purges(
    warehouse_app: App,
    sandbox: RunningSandbox,
    make_pipeline: MakePipeline,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    purges: list[str] = []
    purge = SQLWarehouse.purge_unseen

    def recorded(
        self: SQLWarehouse,  # type: ignore[type-arg]
        pipeline_id: str,
        run_id: str,
        keep: Collection[str] = (),
        state: PipelineState | None = None,
    ) -> int:
        purges.append(run_id)
        return purge(self, pipeline_id, run_id, keep, state)

    monkeypatch.setattr(SQLWarehouse, "purge_unseen", recorded)
    app = warehouse_app
    pipeline = make_pipeline(connect(app, sandbox))

    first = runner.run_pipeline(app, pipeline.id)
    assert first.status == "succeeded", first.message
    assert first.counters["written"] == 1500
    assert purges == []  # nothing could be unseen: no scan
    assert first.summary["purged"] == 0
    wh = app.warehouse()
    try:
        owned = wh.pipeline_state(pipeline.id)
        assert owned is not None
        assert owned.state is not None
        assert owned.state.last_full_run == first.id
        assert owned.state.max_created > 0
    finally:
        wh.close()

    client = stripe.StripeClient(sandbox.secret_key, base_addresses={"api": sandbox.url})
    gone = client.v1.customers.list({"limit": 1}).data[0].id
    client.v1.customers.delete(gone)
    again = runner.run_pipeline(app, pipeline.id, full=True)
    assert again.status == "succeeded", again.message
    assert purges == [again.id]  # identities were there before it: it purges
    assert again.summary["purged"] == 1
    assert again.counters["deleted"] == 1
    wh = app.warehouse()
    try:
        assert wh.count(pipeline.id) == 1499
        owned = wh.pipeline_state(pipeline.id)
        assert owned is not None
        assert owned.state is not None
        assert owned.state.last_full_run == again.id
    finally:
        wh.close()
