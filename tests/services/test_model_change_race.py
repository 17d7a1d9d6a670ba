"""A Customer Model rename racing a run's claim (DESIGN.md §6: a Customer Model change
alters the tables).  The service refuses a rename or drop while a run is running, but
a run claimed just after that check (a queued one is not counted) imported with the
model it read: its values went into the old column, re-created for it, and the renamed
column stayed empty for its rows.  Each test forces one interleaving of the rename's
steps (the check, the warehouse change, the model saved) with a run's, on both
warehouse engines.  Such a run fails as transient: the service retries it, and so does
`headwater pipelines run` executing it itself (a CLI subprocess here)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
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
from headwater.services.runs.retries import MODEL_CHANGE_RETRIES

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


#: `headwater` with its arguments, in a process where each run, as it shapes its first
#: page, sees a rename commit (`during_first_shape`): the next of the ``old:new`` pairs
#: in HW_TEST_RENAMES, its check for running imports made just before the run was
#: claimed (the process holds a DuckDB warehouse: the rename must be made in it).
RACED_CLI = textwrap.dedent(
    """
    import os, runpy, sys
    from headwater.adapters.store import run_queries
    from headwater.entrypoints.environment import settings_from_env
    from headwater.services import model
    from headwater.services.app import App
    from headwater.services.pipelines.shaping import Shaper

    # The runs' Shapers, held: an id() alone can be a freed Shaper's, taken again by the
    # next run's (CI once saw a retry's first page taken for an old run's, and no rename).
    real_shape, shaped = Shaper.shape, []
    renames = [p.split(":") for p in os.environ["HW_TEST_RENAMES"].split()]

    def shape(self, *args, **kwargs):
        if renames and not any(seen is self for seen in shaped):  # a new run's first page
            shaped.append(self)
            old, new = renames.pop(0)
            checked = run_queries.running_in_workspace
            run_queries.running_in_workspace = lambda *_: []
            app = App.open(settings_from_env())
            try:
                model.rename(app, old, new)
            finally:
                run_queries.running_in_workspace = checked
                app.close()
        return real_shape(self, *args, **kwargs)

    Shaper.shape = shape

    if os.environ.get("HW_TEST_RETRY_STORE_FAILS"):  # the store away at the retry's enqueue
        import sqlite3
        from sqlalchemy.exc import OperationalError
        from headwater.adapters.store import runs

        real_create = runs.create_run

        def create_run(*args, retry=None, **kwargs):
            if retry is None:
                return real_create(*args, **kwargs)
            print("HW_TEST: the retry's enqueue failed", file=sys.stderr)
            locked = sqlite3.OperationalError("database is locked")
            raise OperationalError("INSERT INTO runs", {}, locked)

        runs.create_run = create_run
    sys.argv = ["headwater", *sys.argv[1:]]
    runpy.run_module("headwater", run_name="__main__")
    """
)


def cli(
    home: Path, *args: str, renames: str = "", retry_store_fails: bool = False
) -> subprocess.CompletedProcess[str]:
    """`headwater *args`; with `renames` (``old:new ...``), one rename raced per run;
    with `retry_store_fails`, the store's driver failing each retry's enqueue."""
    program = ["-c", RACED_CLI] if renames else ["-m", "headwater"]
    fails = "1" if retry_store_fails else ""
    return subprocess.run(
        [sys.executable, *program, *args],
        env={
            **os.environ,
            "HEADWATER_HOME": str(home),
            "HW_TEST_RENAMES": renames,
            "HW_TEST_RETRY_STORE_FAILS": fails,
        },
        capture_output=True,
        text=True,
        timeout=180,
    )


def retry_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "retrying" in line]


def test_pipelines_run_retries_a_run_the_model_changed_under(
    warehouse_app: App, planned: Pipeline, sandbox: RunningSandbox, home: Path
) -> None:
    """With no service up, `pipelines run` executes the run itself: the rename refused
    its writes and it failed as transient, which only the service retried; the user got
    a failed run to run again.  It is run again here, once, and the document is the
    retry's."""
    app = warehouse_app
    done = cli(home, "pipelines", "run", planned.id, "--json", renames="plan:legacy_plan")
    assert done.returncode == 0, done.stderr[-3000:]
    document = json.loads(done.stdout)  # one document, the last run's
    assert document["status"] == "succeeded", document["message"]
    assert document["attempt"] == 2
    first = runner.get_run(app, document["retry_of"])
    assert first.status == "failed"
    assert "renamed or dropped" in (first.message or "")
    assert first.summary.get("transient") is True  # what the service retries
    [line] = retry_lines(done.stderr)  # one line per retry, on stderr
    assert first.id in line
    assert f"1 of {MODEL_CHANGE_RETRIES}" in line
    assert [r.id for r in runner.list_runs(app, planned.id)] == [document["id"], first.id]
    rows = identities(app)
    ids = [row["_source_id"] for row in rows]
    assert len(ids) == len(set(ids)) == sandbox.stats()["customers"]  # every customer once
    assert all(row["legacy_plan"] == row["email"] for row in rows)
    assert "plan" not in columns(app)


def test_pipelines_run_retries_a_model_change_a_bounded_number_of_times(
    warehouse_app: App, planned: Pipeline, home: Path
) -> None:
    """A model that changes under every run (one rename raced per run) ends the command
    after its retries, failed, with the last run's document: it does not loop."""
    app = warehouse_app
    chain = " ".join(f"p{n}:p{n + 1}" for n in range(MODEL_CHANGE_RETRIES + 2))
    done = cli(home, "pipelines", "run", planned.id, "--json", renames=f"plan:p0 {chain}")
    assert done.returncode == 1, done.stderr[-3000:]
    document = json.loads(done.stdout)
    assert document["status"] == "failed"
    assert document["summary"].get("model_changed") is True
    assert document["attempt"] == MODEL_CHANGE_RETRIES + 1
    assert len(retry_lines(done.stderr)) == MODEL_CHANGE_RETRIES
    ended = runner.list_runs(app, planned.id)
    assert [r.attempt for r in ended] == list(range(MODEL_CHANGE_RETRIES + 1, 0, -1))
    assert all(r.status == "failed" for r in ended)
    assert app.model().find(f"p{MODEL_CHANGE_RETRIES}") is not None  # no rename after


def test_pipelines_run_reports_the_failed_run_when_its_retry_cannot_be_queued(
    warehouse_app: App, planned: Pipeline, home: Path
) -> None:
    """The store failing as the retry is enqueued (its driver's OperationalError) ended
    the command on "the metadata store failed", without the failed run's document.  It
    now says on one line that the retry could not be queued and why, tries once, and
    ends as the failed run: its document, its exit code."""
    app = warehouse_app
    renames = "plan:legacy_plan"
    done = cli(
        home, "pipelines", "run", planned.id, "--json", renames=renames, retry_store_fails=True
    )
    assert done.returncode == 1, done.stderr[-3000:]
    document = json.loads(done.stdout)  # the failed run's, not an error document
    assert document["status"] == "failed"
    assert document["summary"].get("model_changed") is True
    assert document["attempt"] == 1
    assert done.stderr.count("HW_TEST: the retry's enqueue failed") == 1  # tried once
    [line] = [line for line in done.stderr.splitlines() if "could not be queued" in line]
    assert document["id"] in line
    assert "the metadata store failed: OperationalError: database is locked" in line
    assert retry_lines(done.stderr) == []
    assert [r.id for r in runner.list_runs(app, planned.id)] == [document["id"]]


def test_pipelines_run_retries_no_other_failure(
    app: App, sandbox: RunningSandbox, make_pipeline: MakePipeline, home: Path
) -> None:
    """A run that failed on another transient cause (its warehouse unreachable, which
    the service retries with a backoff) ends the command failed, retried by no one."""
    pipeline = make_pipeline(connect(app, sandbox))
    warehouse_settings.save_url(app, "postgresql://nobody@127.0.0.1:1/none")
    done = cli(home, "pipelines", "run", pipeline.id, "--json")
    assert done.returncode == 1, done.stderr[-3000:]
    document = json.loads(done.stdout)
    assert document["status"] == "failed"
    assert document["summary"].get("transient") is True  # the service would retry it
    assert document["attempt"] == 1
    assert retry_lines(done.stderr) == []
    assert [r.id for r in runner.list_runs(app, pipeline.id)] == [document["id"]]


def identities(app: App) -> list[dict[str, Any]]:
    warehouse = app.warehouse()
    try:
        return list(warehouse.identities())
    finally:
        warehouse.close()
