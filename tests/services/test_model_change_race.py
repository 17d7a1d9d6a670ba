"""A Customer Model rename racing a run's claim (DESIGN.md §6: a Customer Model change
alters the tables).  The service refuses a rename or drop while a run is running, but
a run claimed just after that check (a queued one is not counted) imported with the
model it read: its values went into the old column, re-created for it, and the renamed
column stayed empty for its rows.  Each test forces one interleaving of the rename's
steps (the check, the warehouse change, the model saved) with a run's, on both
warehouse engines."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.services.conftest import MakePipeline, connect

from headwater.adapters.store import objects
from headwater.adapters.store import runs as run_store
from headwater.kernel.entities import Pipeline, Run
from headwater.sandbox.testing import RunningSandbox
from headwater.services import model
from headwater.services import warehouse as warehouse_settings
from headwater.services.app import App
from headwater.services.pipelines import runner
from headwater.services.pipelines.shaping import Shaper

MAPPING = {"email": "email", "plan": "email"}


@pytest.fixture
def planned(warehouse_app: App, sandbox: RunningSandbox, make_pipeline: MakePipeline) -> Pipeline:
    """A pipeline whose mapping sets `plan` (to the email, so every value is known)."""
    model.add(warehouse_app, "plan", "string")
    return make_pipeline(connect(warehouse_app, sandbox), MAPPING)


def columns(app: App) -> set[str]:
    warehouse = app.warehouse()
    try:
        return {name for row in warehouse.identities()[:1] for name in row}
    finally:
        warehouse.close()


def landed(app: App, column: str) -> dict[str, Any]:
    warehouse = app.warehouse()
    try:
        return {row["_source_id"]: row.get(column) for row in warehouse.identities()}
    finally:
        warehouse.close()


def emails(app: App) -> dict[str, Any]:
    return landed(app, "email")


@pytest.fixture
def before_model_saved(monkeypatch: pytest.MonkeyPatch) -> Callable[[Callable[[], Any]], None]:
    """Run `step` once, when a model change has altered the warehouse and is about to
    save the model: the instant between the two."""

    def arm(step: Callable[[], Any]) -> None:
        real = objects.save_together
        calls = iter([step])

        def save_together(*args: Any, **kwargs: Any) -> None:
            for pending in calls:
                pending()
            real(*args, **kwargs)

        monkeypatch.setattr(objects, "save_together", save_together)

    return arm


def test_a_queued_run_claimed_while_a_rename_saves_the_model_misplaces_nothing(
    warehouse_app: App, planned: Pipeline, before_model_saved: Callable[..., None]
) -> None:
    """The run was queued when the rename checked for running imports (so not counted),
    and claimed after the columns were renamed but before the model was saved: it read
    the old model, added the old column back and filled it; `legacy_plan` stayed empty."""
    app = warehouse_app
    queued = runner.enqueue(app, planned.id)
    ended: list[Run] = []
    before_model_saved(lambda: ended.append(runner.execute_run(app, queued.id)))
    model.rename(app, "plan", "legacy_plan")
    [gap] = ended
    assert gap.status == "failed", gap.message
    assert "renamed or dropped" in (gap.message or "")
    assert gap.summary.get("transient") is True  # the service retries it, with the new model
    assert gap.counters.get("written", 0) == 0
    assert "plan" not in columns(app)
    assert landed(app, "legacy_plan") == {}  # nothing landed anywhere

    again = runner.run_pipeline(app, planned.id)
    assert again.status == "succeeded", again.message
    found = emails(app)
    assert found
    assert landed(app, "legacy_plan") == found
    assert "plan" not in columns(app)


@pytest.fixture
def during_first_shape(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., None]]:
    """Run `step` once, while a run shapes its first page (it has opened the warehouse
    with the model it read and not written yet)."""
    steps: list[Callable[[], Any]] = []
    real = Shaper.shape

    def shape(self: Shaper, *args: Any, **kwargs: Any) -> Any:
        while steps:
            steps.pop()()
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Shaper, "shape", shape)
    return steps.append


def test_a_rename_committed_under_a_claimed_run_refuses_its_writes(
    warehouse_app: App,
    planned: Pipeline,
    monkeypatch: pytest.MonkeyPatch,
    during_first_shape: Callable[..., None],
) -> None:
    """The rename checked for running imports just before the run was claimed, and
    changed the columns while the run read its first page: the run wrote with the old
    model (its values in a re-created `plan`, or its writes failing on a missing one)."""
    app = warehouse_app
    first = runner.run_pipeline(app, planned.id)  # rows to rename, a position to keep
    assert first.status == "succeeded", first.message
    kept = emails(app)
    # The check saw no run importing: it was made just before this run was claimed.
    monkeypatch.setattr(model.run_queries, "running_in_workspace", lambda *_: [])
    during_first_shape(lambda: model.rename(app, "plan", "legacy_plan"))
    raced = runner.run_pipeline(app, planned.id, full=True)
    assert raced.status == "failed", raced.message
    assert "renamed or dropped" in (raced.message or "")
    assert raced.summary.get("transient") is True
    assert "plan" not in columns(app)
    assert landed(app, "legacy_plan") == kept  # the renamed column kept every value
    assert app.model().find("legacy_plan") is not None

    monkeypatch.undo()
    again = runner.run_pipeline(app, planned.id, full=True)
    assert again.status == "succeeded", again.message
    assert landed(app, "legacy_plan") == emails(app) == kept


def test_a_run_queued_before_a_rename_writes_the_renamed_column(
    warehouse_app: App, planned: Pipeline
) -> None:
    """Queued runs do not hold a rename back: they read the model when claimed."""
    app = warehouse_app
    queued = runner.enqueue(app, planned.id)
    model.rename(app, "plan", "legacy_plan")
    assert run_store.get_run(app.engine, queued.id).status == "queued"
    done = runner.execute_run(app, queued.id)
    assert done.status == "succeeded", done.message
    found = emails(app)
    assert found
    assert landed(app, "legacy_plan") == found
    assert "plan" not in columns(app)


def test_a_warehouse_the_workspace_comes_back_to_takes_the_model_it_comes_with(
    app: App, sandbox: RunningSandbox, make_pipeline: MakePipeline, tmp_path: Path
) -> None:
    """A rename marks the model it replaced outdated in that warehouse.  The same model
    made again while the workspace used another warehouse, then brought back, was still
    outdated there: every run failed ("the Customer Model changed") and no column it
    lacked was added, until the model changed again."""
    model.add(app, "plan", "string")
    pipe = make_pipeline(connect(app, sandbox), MAPPING)
    first = app.warehouse_url()
    model.rename(app, "plan", "tier")  # `first` holds the model with `plan` outdated
    warehouse_settings.set_url(app, f"duckdb:///{tmp_path / 'other.duckdb'}")
    model.rename(app, "tier", "plan")  # the model with `plan` again, made elsewhere
    warehouse_settings.set_url(app, first)
    done = runner.run_pipeline(app, pipe.id)
    assert done.status == "succeeded", done.message
    found = emails(app)
    assert found
    assert landed(app, "plan") == found
