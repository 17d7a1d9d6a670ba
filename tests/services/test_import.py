"""End to end: sandbox over HTTP → run engine → DuckDB / PostgreSQL (issue 3)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import stripe
from tests.services.conftest import MakePipeline, connect

from headwater.adapters.store import objects, runs
from headwater.adapters.warehouse import connect as connect_warehouse
from headwater.kernel.entities import Workspace
from headwater.kernel.errors import Conflict, InvalidInput, TerminalError, TransientError
from headwater.sandbox.testing import RunningSandbox, start_sandbox
from headwater.services import connections, model
from headwater.services.app import App
from headwater.services.pipelines import manage, runner


def _identities(app: App, pipeline_id: str) -> dict[str, dict[str, object]]:
    wh = app.warehouse()
    try:
        return {row["_source_id"]: row for row in wh.identities(pipeline_id)}
    finally:
        wh.close()


def _stripe_ids(sb: RunningSandbox) -> list[str]:
    client = stripe.StripeClient(sb.secret_key, base_addresses={"api": sb.url})
    return [c.id for c in client.v1.customers.list({"limit": 100}).auto_paging_iter()]


def test_full_import_lands_every_customer_once(
    warehouse_app: App, sandbox: RunningSandbox, make_pipeline: MakePipeline
) -> None:
    app = warehouse_app
    pipeline = make_pipeline(connect(app, sandbox))
    run = runner.run_pipeline(app, pipeline.id)
    assert run.status == "succeeded", run.message
    assert run.kind == "full"
    assert run.counters["read"] == 1500
    assert run.counters["written"] == 1500
    rows = _identities(app, pipeline.id)
    assert sorted(rows) == sorted(_stripe_ids(sandbox))
    client = stripe.StripeClient(sandbox.secret_key, base_addresses={"api": sandbox.url})
    sample = client.v1.customers.retrieve(next(iter(rows)))
    row = rows[sample.id]
    assert row["email"] == sample.email
    assert row["created_at"].timestamp() == sample.created
    assert row["address_country"] == (sample.address.country if sample.address else None)
    profiles_before = {r["_source_id"]: r["_profile_id"] for r in rows.values()}
    # A second full run rewrites nothing twice and keeps every profile id.
    again = runner.run_pipeline(app, pipeline.id, full=True)
    assert again.status == "succeeded"
    rows = _identities(app, pipeline.id)
    assert len(rows) == 1500
    assert {r["_source_id"]: r["_profile_id"] for r in rows.values()} == profiles_before
    # Every identity was resolved after the run: the profiles hold each exactly once
    # (customers sharing an email share a profile) and nothing is left pending.
    wh = app.warehouse()
    try:
        found = wh.profiles()
        assert None not in profiles_before.values()
        assert sum(p["_identity_count"] for p in found) == 1500
        assert {p["_profile_id"] for p in found} == set(profiles_before.values())
        assert not wh.pending_identities()
    finally:
        wh.close()


def test_connection_key_errors_are_distinct_and_never_show_the_key(
    app: App, sandbox: RunningSandbox
) -> None:
    with pytest.raises(InvalidInput, match="key") as malformed:
        connections.add_stripe(app, "x", "pk_test_123456789012", sandbox.url)
    with pytest.raises(TerminalError, match=r"(?i)invalid|revoked") as invalid:
        connections.add_stripe(app, "x", "sk_test_doesnotexist12345", sandbox.url)
    with (
        start_sandbox(keys={"rk_test_eventsonly99": "events:read"}) as sb,
        pytest.raises(TerminalError, match="Customers: Read") as perm,
    ):
        connections.add_stripe(app, "x", "rk_test_eventsonly99", sb.url)
    with pytest.raises(TransientError, match=r"(?i)reach|connect") as down:
        connections.add_stripe(app, "x", "sk_test_sandbox", "http://127.0.0.1:9")
    for info in (malformed, invalid, perm, down):
        assert "doesnotexist12345" not in str(info.value)
        assert "eventsonly99" not in str(info.value)
    assert connections.list_connections(app) == []
    saved = connect(app, sandbox, key="rk_test_customers_only")
    assert saved.api_key_masked.startswith("rk_test_")
    assert "customers_only" not in saved.api_key_masked
    assert not saved.events_read
    with app.engine.connect() as conn:
        raw = conn.exec_driver_sql("select api_key_encrypted from connections").scalar_one()
    assert "rk_test" not in raw


def test_server_errors_and_rate_limits_for_a_while_still_give_the_exact_count(
    app: App, make_pipeline: MakePipeline
) -> None:
    with start_sandbox(customers=800, seed=3, error_rate=0.25, rate_limit_error_rate=0.15) as sb:
        pipeline = make_pipeline(connect(app, sb))
        run = runner.run_pipeline(app, pipeline.id)
        stats = sb.stats()
    assert run.status == "succeeded", run.message
    assert run.counters["written"] == 800
    assert len(_identities(app, pipeline.id)) == 800
    # The faults really happened and the client rode them out.
    assert stats["by_status"].get("500", 0) + stats["by_status"].get("503", 0) > 0
    assert stats["by_status"].get("429", 0) > 0


@pytest.mark.slow
def test_malformed_json_fails_the_run_clearly_and_the_next_run_recovers(
    app: App, make_pipeline: MakePipeline
) -> None:
    with start_sandbox(customers=600, seed=5) as sb:
        pipeline = make_pipeline(connect(app, sb))
        assert runner.run_pipeline(app, pipeline.id).status == "succeeded"
        before = _identities(app, pipeline.id)
        sb.control(malformed_rate=1.0)
        failed = runner.run_pipeline(app, pipeline.id, full=True)
        assert failed.status == "failed"
        assert failed.message is not None
        assert failed.message.startswith("Stripe GET /v1/")
        assert "the response body is not a JSON object" in failed.message
        assert failed.summary.get("purged") == 0
        assert _identities(app, pipeline.id).keys() == before.keys()  # intact
        sb.control(malformed_rate=0.0)
        recovered = runner.run_pipeline(app, pipeline.id, full=True)
    assert recovered.status == "succeeded"
    assert len(_identities(app, pipeline.id)) == 600


@pytest.mark.postgres
def test_unreachable_warehouse_fails_clearly_and_writes_nothing(
    app: App, sandbox: RunningSandbox, make_pipeline: MakePipeline, pg_schema: str
) -> None:
    from tests.services.conftest import use_postgres

    from headwater.services.warehouse import save_url

    good = use_postgres(app, pg_schema)
    pipeline = make_pipeline(connect(app, sandbox))
    assert runner.run_pipeline(app, pipeline.id).status == "succeeded"
    save_url(app, "postgresql://root@127.0.0.1:1/test")
    run = runner.run_pipeline(app, pipeline.id, full=True)
    assert run.status == "failed"
    assert run.message is not None
    assert run.message.startswith("cannot connect to PostgreSQL at 127.0.0.1:1/test")
    wh = connect_warehouse(good)
    assert wh.count(pipeline.id) == 1500
    wh.close()


def test_a_customer_that_does_not_fit_the_model_is_a_per_record_error(
    app: App, make_pipeline: MakePipeline
) -> None:
    model.add(app, "score", "integer")
    with start_sandbox(customers=50, seed=9) as sb:
        client = stripe.StripeClient(sb.secret_key, base_addresses={"api": sb.url})
        bad = client.v1.customers.create(
            {"email": "bad@example.com", "metadata": {"score": "lots"}}
        )
        client.v1.customers.create({"email": "ok@example.com", "metadata": {"score": "7"}})
        pipeline = make_pipeline(
            connect(app, sb), mapping={"email": "email", "score": "metadata.score"}
        )
        run = runner.run_pipeline(app, pipeline.id)
    assert run.status == "succeeded"
    assert run.counters["failed"]["validate"] >= 1
    assert run.counters["written"] == run.counters["read"] - run.counters["failed_total"]
    errors = {e["source_id"]: e for e in run.errors}
    assert errors[bad.id]["step"] == "validate"
    assert "score" in errors[bad.id]["message"]
    assert "lots" in errors[bad.id]["message"]
    rows = _identities(app, pipeline.id)
    assert bad.id not in rows
    assert {r["score"] for r in rows.values() if r["email"] == "ok@example.com"} == {7}


def test_disabled_pipelines_and_second_live_runs_are_refused(
    app: App, sandbox: RunningSandbox, make_pipeline: MakePipeline
) -> None:
    pipeline = make_pipeline(connect(app, sandbox), enabled=False)
    with pytest.raises(Conflict, match="disabled"):
        runner.run_pipeline(app, pipeline.id)
    manage.update(app, pipeline.id, manage.PipelineChanges(enabled=True))
    live = runs.create_run(app.engine, pipeline.id, "full")
    with pytest.raises(Conflict, match=f"already has a live run \\({live.id}"):
        runner.run_pipeline(app, pipeline.id)


def _cli(home: Path, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "HEADWATER_HOME": str(home)}
    return subprocess.Popen(
        [sys.executable, "-m", "headwater", *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )


@pytest.mark.slow
def test_kill_9_during_a_run_then_run_again_loses_and_duplicates_nothing(
    app: App, home: Path, make_pipeline: MakePipeline
) -> None:
    with start_sandbox(customers=20_000, seed=13, latency_ms=20) as sb:
        pipeline = make_pipeline(connect(app, sb, rps=50), incremental=False)
        proc = _cli(home, "pipelines", "run", pipeline.id, "--json")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            listed = runs.list_runs(app.engine, [pipeline.id], limit=1)
            if listed and listed[0].counters.get("written", 0) > 0:
                break
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        partial = len(_identities(app, pipeline.id))
        assert 0 < partial < 20_000
        run = runner.run_pipeline(app, pipeline.id)
        assert run.status == "succeeded", run.message
        ids = _stripe_ids(sb)
    rows = _identities(app, pipeline.id)
    assert sorted(rows) == sorted(ids)
    killed = runs.list_runs(app.engine, [pipeline.id])[-1]
    assert killed.status == "failed"
    assert killed.message is not None
    assert killed.message.startswith(f"worker lost on {killed.host}: its process {killed.pid}")
    assert objects.find(app.engine, Workspace)[0].name == "default"


def test_an_integer_past_64_bits_fails_its_customer_and_keeps_its_old_row(
    warehouse_app: App, make_pipeline: MakePipeline
) -> None:
    """Refused by the Customer Model (integers are 64-bit), at validate: it was left to
    the warehouse's write, which named the column rather than the property."""
    app = warehouse_app
    model.add(app, "score", "integer")
    with start_sandbox(customers=30, seed=12) as sb:
        client = stripe.StripeClient(sb.secret_key, base_addresses={"api": sb.url})
        big = client.v1.customers.create({"email": "big@example.com", "metadata": {"score": "5"}})
        pipeline = make_pipeline(
            connect(app, sb), mapping={"email": "email", "score": "metadata.score"}
        )
        assert runner.run_pipeline(app, pipeline.id).counters["written"] == 31
        # Fits a Python int, not a 64-bit warehouse column.
        client.v1.customers.update(big.id, {"metadata": {"score": str(2**70)}})
        run = runner.run_pipeline(app, pipeline.id, full=True)
    assert run.status == "succeeded", run.message
    assert run.counters["failed"]["validate"] == 1
    assert run.counters["failed_total"] == 1
    assert run.counters["written"] == 30
    assert run.counters["deleted"] == 0  # the refused customer was seen: not purged
    [error] = run.errors
    assert (error["source_id"], error["step"]) == (big.id, "validate")
    assert "property 'score' (integer)" in error["message"]
    assert "64-bit" in error["message"]
    rows = _identities(app, pipeline.id)
    assert len(rows) == 31
    assert rows[big.id]["score"] == 5  # the earlier import is intact


def test_a_full_run_asks_for_its_first_page_while_the_warehouse_opens(
    app: App, sandbox: RunningSandbox, make_pipeline: MakePipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first request's round trip overlaps opening the warehouse; an incremental
    run asks nothing before (it reads its position from the warehouse)."""
    pipeline = make_pipeline(connect(app, sandbox))
    opened = App.warehouse
    seen: list[int] = []

    def warehouse(self: App, **kw: Any) -> Any:
        deadline = time.monotonic() + (5.0 if not seen else 0.5)
        while time.monotonic() < deadline and not sandbox.stats()["requests"]:
            time.sleep(0.01)
        seen.append(sandbox.stats()["requests"])
        return opened(self, **kw)

    monkeypatch.setattr(App, "warehouse", warehouse)
    sandbox.reset_stats()
    run = runner.run_pipeline(app, pipeline.id)
    assert run.status == "succeeded", run.message
    assert run.kind == "full"
    assert run.counters["written"] == 1500
    assert seen[0] == 1  # the first page, before the warehouse was opened
    sandbox.reset_stats()
    again = runner.run_pipeline(app, pipeline.id)
    assert again.status == "succeeded", again.message
    assert again.kind == "incremental"
    assert seen[-1] == 0
