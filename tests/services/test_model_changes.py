"""Customer Model changes against the warehouse: nothing half-done, nothing under a
running import's feet."""

from __future__ import annotations

from datetime import timedelta

import duckdb
import pytest
from tests.services.conftest import MakePipeline, connect, reload

from headwater.adapters.store import runs as run_store
from headwater.kernel.entities import utcnow
from headwater.kernel.errors import Conflict, InvalidInput
from headwater.sandbox.testing import RunningSandbox
from headwater.services import model
from headwater.services.app import App
from headwater.services.pipelines import manage, runner


def test_a_rename_past_the_warehouse_name_limit_changes_nothing(app: App) -> None:
    """Renaming an object renamed its columns one by one: a child whose new column name
    passed 63 characters failed after the first child's rename had committed, the old
    model stayed, and the next warehouse open added the old column back empty (its data
    then lost to the next import)."""
    model.add(app, "addr", "object")
    model.add(app, "addr.city", "string")
    long_child = "c" * 55
    model.add(app, f"addr.{long_child}", "string")
    before = app.model()
    with pytest.raises(InvalidInput) as caught:
        model.rename(app, "addr", "billing_addr_01")
    assert "63" in caught.value.message
    assert app.model() == before
    app.warehouse().close()  # opening it brings the tables to the saved model
    path = app.warehouse_url().removeprefix("duckdb:///")
    with duckdb.connect(path, read_only=True) as con:
        found = con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'identities'"
        ).fetchall()
    names = {r[0] for r in found}
    assert {"addr_city", f"addr_{long_child}"} <= names
    assert "billing_addr_01_city" not in names


def test_a_rename_or_drop_waits_for_running_imports(
    app: App, sandbox: RunningSandbox, make_pipeline: MakePipeline
) -> None:
    """A run imports with the model it started with: renaming under it put its values
    into whatever took the old name, and left the renamed column empty for its rows."""
    model.add(app, "plan", "string")
    pipe = make_pipeline(connect(app, sandbox))
    run = run_store.create_run(app.engine, pipe.id, "full")
    run_store.claim_run(app.engine, run.id, "owner", utcnow() + timedelta(seconds=30))
    for change in (
        lambda: model.rename(app, "plan", "legacy_plan"),
        lambda: model.drop(app, "plan"),
    ):
        with pytest.raises(Conflict) as caught:
            change()
        assert run.id in caught.value.message
    assert app.model().find("plan") is not None
    model.add(app, "tier", "string")  # adding is harmless: the run leaves it empty
    run_store.finish_run(app.engine, run.id, "owner", status="succeeded", message=None)
    model.rename(app, "plan", "legacy_plan")
    assert app.model().find("legacy_plan") is not None


def test_mappings_follow_a_renamed_property_and_keep_a_mapped_one_from_being_dropped(
    app: App, sandbox: RunningSandbox, make_pipeline: MakePipeline
) -> None:
    """A renamed property left the pipelines' mappings setting the old path, a dropped
    one left them setting nothing: every later run of those pipelines failed whole
    ("address.country: unknown Customer Model property"), with no warning before."""
    pipe = make_pipeline(connect(app, sandbox))
    assert runner.run_pipeline(app, pipe.id).status == "succeeded"
    model.rename(app, "address", "postal")
    mapping = reload(app, pipe).transformation["mapping"]
    assert list(mapping) == ["email", "postal.country", "created_at", "metadata"]
    assert mapping["postal.country"] == "address.country"  # still Stripe's path
    again = runner.run_pipeline(app, pipe.id)
    assert again.status == "succeeded", again.message
    assert again.kind == "incremental"  # the column kept its values: nothing to re-read

    before = app.model()
    for path in ("postal", "postal.country"):
        with pytest.raises(InvalidInput) as caught:
            model.drop(app, path)
        assert caught.value.location == path
        assert f"pipeline {pipe.id} (p)" in caught.value.message
    assert app.model() == before
    unmapped = {k: v for k, v in mapping.items() if k != "postal.country"}
    changes = manage.PipelineChanges(transformation={"kind": "mapping", "mapping": unmapped})
    manage.update(app, pipe.id, changes)
    model.drop(app, "postal")
    assert app.model().find("postal") is None
