"""A run releases the embedded warehouse before its final status is recorded.

The DuckDB file admits one writing process; a user (or a test) that sees the run
`succeeded` and opens the file must find it free.  The run used to commit its final
status first and close the file a moment later, a window CI hit once under load."""

from __future__ import annotations

from typing import Any

import duckdb
import pytest
from sqlalchemy.exc import OperationalError
from tests.services.conftest import MakePipeline, connect
from tests.services.test_run_failures import one_without_id, script_source

from headwater.adapters.store import runs
from headwater.kernel.entities import RunStatus
from headwater.sandbox.testing import RunningSandbox
from headwater.services.app import App
from headwater.services.pipelines import engine, runner


def _file_is_free(path: str) -> bool:
    """Whether the DuckDB file can be opened read-only now (it cannot while this process
    holds it open read-write: DuckDB refuses a second configuration of one file)."""
    try:
        duckdb.connect(path, read_only=True).close()
    except (duckdb.ConnectionException, duckdb.IOException):
        return False
    return True


@pytest.mark.parametrize("outcome", ["succeeded", "failed"])
def test_the_warehouse_file_is_free_when_the_final_status_is_recorded(
    app: App,
    make_pipeline: MakePipeline,
    sandbox: RunningSandbox,
    monkeypatch: pytest.MonkeyPatch,
    outcome: str,
) -> None:
    pipeline = make_pipeline(connect(app, sandbox))
    path = app.warehouse_url().removeprefix("duckdb:///")
    seen: list[tuple[str, bool]] = []
    finish = runs.finish_run

    def recording_finish(engine: Any, run_id: str, owner: str, **kw: Any) -> Any:
        seen.append((kw["status"], _file_is_free(path)))
        return finish(engine, run_id, owner, **kw)

    monkeypatch.setattr(runs, "finish_run", recording_finish)
    if outcome == "failed":  # the run fails after it opened the warehouse

        def failing(*args: Any, **kw: Any) -> None:
            raise RuntimeError("the import broke")

        monkeypatch.setattr(engine, "run_full", failing)
    ended = runner.run_pipeline(app, pipeline.id)
    assert ended.status == RunStatus(outcome)
    assert seen == [(outcome, True)]
    assert _file_is_free(path)


def test_errors_still_pending_when_the_run_ends_are_stored_with_its_ending(
    app: App, make_pipeline: MakePipeline, sandbox: RunningSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Progress updates are best effort, the ending is retried: per-record errors that
    no progress update could store (the store was locked throughout) were dropped, while
    the ending recorded the counters that count them."""
    pipeline = make_pipeline(connect(app, sandbox))

    def locked(*_: Any) -> None:
        raise OperationalError("UPDATE runs", {}, Exception("database is locked"))

    script_source(monkeypatch, read_full=one_without_id)
    monkeypatch.setattr(runs, "record_progress", locked)
    ended = runner.run_pipeline(app, pipeline.id)
    assert ended.status == RunStatus.SUCCEEDED, ended.message
    assert ended.counters["failed"]["read"] == 1
    assert ended.summary["progress_updates_skipped"] > 0
    [error] = ended.errors
    assert (error["step"], error["source_id"]) == ("read", None)
