"""State rules 5 and 6 end to end: the position lives in the warehouse, one owner writes.

Rule 5: a pipeline's position belongs to the warehouse that holds its rows, so a new
warehouse, a dropped schema or a replaced DuckDB file makes the next run full and exact.
Rule 6: a run that lost the pipeline to a newer run cannot write, purge or save a
position afterwards (a fencing token checked inside the warehouse transaction).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import stripe
from tests.conftest import PG_URL
from tests.services.conftest import MakePipeline, connect, reload

from headwater.adapters.store import runs
from headwater.kernel.entities import Pipeline, Run, utcnow
from headwater.kernel.state import PipelineState
from headwater.sandbox.testing import RunningSandbox, start_sandbox
from headwater.services.app import App
from headwater.services.pipelines import engine, lease, manage, runner
from headwater.services.warehouse import set_url

MAPPING = {"email": "email", "created_at": "created"}


@pytest.fixture
def sb() -> Iterator[RunningSandbox]:
    with start_sandbox(customers=500, seed=17) as running:
        yield running


def sdk(sb: RunningSandbox) -> stripe.StripeClient:
    return stripe.StripeClient(sb.secret_key, base_addresses={"api": sb.url})


def stripe_emails(sb: RunningSandbox) -> dict[str, Any]:
    listed = sdk(sb).v1.customers.list({"limit": 100}).auto_paging_iter()
    return {c.id: c.email for c in listed}


def warehouse_emails(app: App, pipeline: Pipeline) -> dict[str, Any]:
    wh = app.warehouse()
    try:
        rows = wh.identities(pipeline.id)
    finally:
        wh.close()
    return {r["_source_id"]: r["email"] for r in rows}


def saved_state(app: App, pipeline: Pipeline) -> PipelineState | None:
    wh = app.warehouse()
    try:
        owned = wh.pipeline_state(pipeline.id)
    finally:
        wh.close()
    return owned.state if owned else None


def run(app: App, pipeline: Pipeline, *, full: bool = False) -> Run:
    finished = runner.run_pipeline(app, pipeline.id, full=full)
    assert finished.status == "succeeded", finished.message
    return finished


def imported(app: App, sb: RunningSandbox, make_pipeline: MakePipeline) -> Pipeline:
    """A pipeline after its first (full) run, then a few customers changed in Stripe."""
    pipeline = make_pipeline(connect(app, sb), mapping=MAPPING)
    assert run(app, pipeline).kind == "full"
    assert warehouse_emails(app, pipeline) == stripe_emails(sb)
    client = sdk(sb)
    for i, customer in enumerate(client.v1.customers.list({"limit": 5}).data):
        client.v1.customers.update(customer.id, {"email": f"changed{i}@x.io"})
    return pipeline


def assert_full_and_exact(app: App, sb: RunningSandbox, pipeline: Pipeline) -> None:
    again = run(app, pipeline)
    assert again.kind == "full"
    assert "no saved position" in again.summary["reason"]
    assert warehouse_emails(app, pipeline) == stripe_emails(sb)
    state = saved_state(app, pipeline)
    assert state is not None
    assert state.position is not None
    assert state.last_full_run == again.id
    # The next run is incremental again, from the position saved in this warehouse.
    assert run(app, pipeline).kind == "incremental"


def _postgres(app: App) -> str | None:
    """The warehouse's PostgreSQL schema, or None on DuckDB."""
    url = app.warehouse_url()
    return url.rsplit("schema=", 1)[1] if url.startswith("postgresql") else None


def test_a_new_warehouse_gets_a_full_exact_run(
    warehouse_app: App, sb: RunningSandbox, make_pipeline: MakePipeline, tmp_path: Path
) -> None:
    """The audit: after `warehouse set` only 5 of 500 customers landed."""
    app = warehouse_app
    pipeline = imported(app, sb, make_pipeline)
    schema = _postgres(app)
    if schema is None:
        set_url(app, f"duckdb:///{tmp_path / 'other.duckdb'}")
        assert_full_and_exact(app, sb, pipeline)
        return
    set_url(app, f"{PG_URL}?schema={schema}_b")
    try:
        assert_full_and_exact(app, sb, pipeline)
    finally:
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}_b" CASCADE')


def test_a_dropped_schema_gets_a_full_exact_run(
    warehouse_app: App, sb: RunningSandbox, make_pipeline: MakePipeline
) -> None:
    app = warehouse_app
    pipeline = imported(app, sb, make_pipeline)
    schema = _postgres(app)
    if schema is None:
        import duckdb

        path = app.warehouse_url().removeprefix("duckdb:///")
        with duckdb.connect(path) as conn:
            conn.execute("DROP SCHEMA headwater CASCADE")
    else:
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
            conn.execute(f'CREATE SCHEMA "{schema}"')
    assert_full_and_exact(app, sb, pipeline)


def test_a_replaced_duckdb_file_gets_a_full_exact_run(
    app: App, sb: RunningSandbox, make_pipeline: MakePipeline
) -> None:
    pipeline = imported(app, sb, make_pipeline)
    path = Path(app.warehouse_url().removeprefix("duckdb:///"))
    path.unlink()
    path.with_name(path.name + ".wal").unlink(missing_ok=True)
    assert_full_and_exact(app, sb, pipeline)


class Gate:
    """Pauses the first warehouse opened after `arm`: right after its first write commits."""

    def __init__(self, monkeypatch: Any) -> None:
        self.reached = threading.Event()
        self.release = threading.Event()
        self._armed = True
        opened = App.warehouse

        def gated(app: App, **kw: Any) -> Any:
            warehouse = opened(app, **kw)
            if self._armed:
                self._armed = False
                write = warehouse.write

                def write_then_pause(batch: Any) -> Any:
                    result = write(batch)
                    if not self.reached.is_set():
                        self.reached.set()
                        assert self.release.wait(60), "the test never released the first run"
                    return result

                warehouse.write = write_then_pause  # type: ignore[method-assign]
            return warehouse

        monkeypatch.setattr(App, "warehouse", gated)


def test_two_overlapping_full_runs_never_purge_each_others_customers(
    warehouse_app: App, sb: RunningSandbox, make_pipeline: MakePipeline, monkeypatch: Any
) -> None:
    """The audit: two full runs of one pipeline purged each other's rows (9,765 of 30,000
    left).  The first run is paused after its first commit and declared lost, and a second
    full run does the whole import; when the first resumes it must stop without writing."""
    app = warehouse_app
    monkeypatch.setattr(engine, "WRITE_BATCH", 100)  # several commits per run
    pipeline = make_pipeline(connect(app, sb), mapping=MAPPING)
    gate = Gate(monkeypatch)
    outcome: list[Run] = []
    first = threading.Thread(
        target=lambda: outcome.append(runner.run_pipeline(app, pipeline.id, full=True))
    )
    first.start()
    try:
        assert gate.reached.wait(60), "the first run never committed a write"
        stale = runs.live_run(app.engine, pipeline.id)
        assert stale is not None
        # What the lease machinery does to a run that stopped beating (§7).
        runs.update_run(
            app.engine, stale.id, status="failed", message="worker lost", finished_at=utcnow()
        )
        second = run(app, pipeline, full=True)
        assert warehouse_emails(app, pipeline) == stripe_emails(sb)
    finally:
        gate.release.set()
        first.join(120)
    [resumed] = outcome
    assert resumed.status == "failed"
    # The run stays closed as lost; its process, once resumed, stopped without writing
    # (its lease thread or the warehouse's fencing told it first) and says so.
    assert resumed.message is not None
    assert resumed.message.startswith("worker lost; after that, the run's own process said: ")
    assert warehouse_emails(app, pipeline) == stripe_emails(sb)  # all 500 remain
    state = saved_state(app, pipeline)
    assert state is not None
    assert state.last_full_run == second.id
    assert {r["_run_id"] for r in _identities(app, pipeline)} == {second.id}
    assert run(app, pipeline).kind == "incremental"
    assert warehouse_emails(app, pipeline) == stripe_emails(sb)


def test_a_run_stalled_after_its_last_write_and_closed_as_lost_says_what_it_did(
    warehouse_app: App, sb: RunningSandbox, make_pipeline: MakePipeline, monkeypatch: Any
) -> None:
    """A run whose process stalled after its import's last write (a CI worker paused
    then) and was closed as lost meanwhile added an empty account to the lost run's
    message ("... the run's own process said: "): it had succeeded as far as it knew."""
    app = warehouse_app
    pipeline = make_pipeline(connect(app, sb), mapping=MAPPING)
    imported_all, release = threading.Event(), threading.Event()
    run_full = engine.run_full

    def run_full_then_stall(ctx: Any, reason: str) -> None:
        run_full(ctx, reason)
        imported_all.set()
        assert release.wait(60), "the test never released the run"

    monkeypatch.setattr(engine, "run_full", run_full_then_stall)
    outcome: list[Run] = []
    first = threading.Thread(
        target=lambda: outcome.append(runner.run_pipeline(app, pipeline.id, full=True))
    )
    first.start()
    try:
        assert imported_all.wait(60), "the run never finished its import"
        stale = runs.live_run(app.engine, pipeline.id)
        assert stale is not None
        runs.update_run(
            app.engine, stale.id, status="failed", message="worker lost", finished_at=utcnow()
        )
        stop = lease._HELD[stale.id]
        deadline = time.monotonic() + 30
        while not stop.is_set() and time.monotonic() < deadline:  # its next lease beat
            time.sleep(0.05)
        assert stop.is_set(), "the run never learnt it lost its lease"
    finally:
        release.set()
        first.join(120)
    [resumed] = outcome
    assert resumed.status == "failed"
    said = "worker lost; after that, the run's own process said: "
    assert resumed.message is not None
    assert resumed.message.startswith(said)
    account = resumed.message.removeprefix(said)
    assert "every write had committed" in account, resumed.message
    assert warehouse_emails(app, pipeline) == stripe_emails(sb)


def _identities(app: App, pipeline: Pipeline) -> list[dict[str, Any]]:
    wh = app.warehouse()
    try:
        return wh.identities(pipeline.id)
    finally:
        wh.close()


FAIL_SOME = """
function transform(customer) {
  if (customer.metadata.broken) throw new Error("broken " + customer.id);
  return {email: customer.email, created_at: customer.created};
}
"""


def test_a_full_run_keeps_the_earlier_rows_of_customers_that_now_fail(
    app: App, sb: RunningSandbox
) -> None:
    """Rule 3's exception: a customer that fails its transformation in a full run was
    seen, so its earlier row stays (neither purged nor overwritten)."""
    conn = connect(app, sb)
    spec = {"kind": "javascript", "source": FAIL_SOME}
    pipeline = manage.create(app, conn.id, "js", spec)
    run(app, pipeline)
    before = warehouse_emails(app, pipeline)
    client = sdk(sb)
    broken = [c.id for c in client.v1.customers.list({"limit": 7}).data]
    for sid in broken:
        client.v1.customers.update(sid, {"email": "new@x.io", "metadata": {"broken": "yes"}})
    again = run(app, pipeline, full=True)
    assert again.counters["failed"]["transform"] == len(broken)
    assert again.counters["deleted"] == 0
    after = warehouse_emails(app, pipeline)
    assert after == before  # the broken ones keep their earlier row, untouched
    assert reload(app, pipeline).needs_full is False
