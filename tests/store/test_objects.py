"""Workspace, connection and pipeline rows (`adapters/store/objects.py`), on both stores."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine
from tests.store.seeding import seed

from headwater.adapters.store import objects, runs
from headwater.adapters.store.database import open_engine
from headwater.kernel.entities import Pipeline
from headwater.kernel.errors import NotFound
from headwater.kernel.records import RecordError, Step
from headwater.kernel.state import PipelineState


def test_migrations_are_idempotent_and_entities_round_trip(engine: Engine) -> None:
    pipeline = seed(engine)
    loaded = objects.get(engine, Pipeline, "pl_1")
    assert loaded.transformation == pipeline.transformation
    assert loaded.state == PipelineState()
    loaded.state = PipelineState(position={"event_id": "evt_1", "created": 5}, max_created=7)
    objects.save(engine, loaded, only=["state"])
    assert objects.get(engine, Pipeline, "pl_1").state == loaded.state
    # Opening again runs migrations again: nothing to do, nothing lost.
    again = open_engine(str(engine.url.render_as_string(hide_password=False)))
    assert [p.id for p in objects.find(again, Pipeline)] == ["pl_1"]
    again.dispose()
    with pytest.raises(NotFound, match="no pipeline with id 'nope'"):
        objects.get(engine, Pipeline, "nope")


def test_deleting_a_pipeline_removes_its_runs(engine: Engine) -> None:
    seed(engine)
    run = runs.create_run(engine, "pl_1", "full")
    runs.add_errors(engine, run.id, [RecordError("cus_1", Step.READ, "x")])
    objects.remove(engine, Pipeline, "pl_1")
    with pytest.raises(NotFound):
        runs.get_run(engine, run.id)
