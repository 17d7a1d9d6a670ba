"""`/readyz`, `/metrics` and the JSON-lines logs of a real `headwater serve`."""

from __future__ import annotations

import json

import httpx
import pytest
from tests.service.conftest import World, wait_for
from tests.serving import start_serve

from headwater.entrypoints.store_outage import RETRY_AFTER_SECONDS
from headwater.kernel.entities import RunStatus
from headwater.sandbox.testing import RunningSandbox, start_sandbox
from headwater.services.auth import tokens, workspaces
from headwater.services.pipelines import runner
from headwater.services.warehouse import save_url

pytestmark = [pytest.mark.slow, pytest.mark.parametrize("service_store", ["sqlite"])]


def _metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    raise AssertionError(f"{name} not in /metrics")


def test_readyz_metrics_and_logs_of_a_run(world: World, small_sandbox: RunningSandbox) -> None:
    [pipeline] = world.pipelines(small_sandbox, 1)
    raw, _ = tokens.create_token(world.app, "prometheus")
    with start_serve(world.home, database_url=world.database_url, workers=1) as served:
        auth = {"Authorization": f"Bearer {raw}"}
        # /readyz and /metrics need credentials like every route but /healthz.
        assert httpx.get(f"{served.url}/readyz").status_code == 401
        ready = httpx.get(f"{served.url}/readyz", headers=auth)
        assert ready.status_code == 200
        assert ready.json() == {"status": "ready", "checks": {"store": "ok", "warehouse": "ok"}}
        run = runner.enqueue(world.app, pipeline.id)
        wait_for(lambda: world.run(run.id).status == RunStatus.SUCCEEDED, 60, "the run ended")
        assert httpx.get(f"{served.url}/metrics").status_code == 401
        forged = {"Authorization": "Bearer hw_forged"}
        assert httpx.get(f"{served.url}/metrics", headers=forged).status_code == 401
        scrape = httpx.get(f"{served.url}/metrics", headers={"Authorization": f"Bearer {raw}"})
        assert scrape.status_code == 200
        text = scrape.text
        assert _metric(text, 'headwater_runs{status="succeeded"}') == 1
        assert _metric(text, "headwater_queue_depth") == 0
        assert _metric(text, "headwater_lease_losses_total") == 0
        assert _metric(text, "headwater_customers_read_total") == 5
        assert _metric(text, "headwater_customers_written_total") == 5
        assert _metric(text, 'headwater_run_duration_seconds_count{status="succeeded"}') == 1
        # An unreachable warehouse makes the service not ready, saying why.
        save_url(world.app, "postgresql://nobody@127.0.0.1:1/none")
        unready = httpx.get(f"{served.url}/readyz", headers=auth)
        assert unready.status_code == 503
        assert unready.headers["retry-after"] == str(RETRY_AFTER_SECONDS)  # as every 503
        assert unready.json()["checks"]["store"] == "ok"
        assert unready.json()["checks"]["warehouse"].startswith("unreachable: ")
    lines = [json.loads(line) for line in served.output if line.startswith("{")]
    of_run = [line for line in lines if line["run_id"] == run.id]
    assert {line["pipeline_id"] for line in of_run} == {pipeline.id}
    assert any(line["message"].startswith(f"run {run.id} ended succeeded") for line in of_run)
    # Lines outside any run carry no run id.
    assert any(
        "run worker(s) started" in line["message"] and line["run_id"] is None for line in lines
    )


def test_the_stripe_reading_process_logs_json_lines_of_its_run(world: World) -> None:
    # Every fault is retried; 20 pages at 30% make retries in the reading process sure.
    with start_sandbox(customers=2000, seed=12) as sandbox:
        [pipeline] = world.pipelines(sandbox, 1)
        sandbox.control(error_rate=0.3)
        with start_serve(world.home, database_url=world.database_url, workers=1) as served:
            run = runner.enqueue(world.app, pipeline.id)
            wait_for(lambda: not world.run(run.id).live, 120, "the run ended")
    assert world.run(run.id).kind == "full"  # read by the reading process
    lines = [json.loads(line) for line in served.output]  # every line is JSON
    of_child = [line for line in lines if line["pid"] != served.pid]
    assert any(line["message"].startswith("Stripe GET /v1/customers: HTTP 5") for line in of_child)
    assert {(line["run_id"], line["pipeline_id"]) for line in of_child} == {(run.id, pipeline.id)}
    # Its own lines only, not one per HTTP request (httpx logs those at INFO).
    assert {line["logger"] for line in of_child} == {"headwater.adapters.connectors.stripe.http"}


def test_metrics_and_readyz_show_only_the_callers_workspace(
    world: World, small_sandbox: RunningSandbox
) -> None:
    # DESIGN §8: a token of one workspace sees nothing of another, the operator's
    # figures included: another workspace's runs, customers and warehouse are its own.
    [pipeline] = world.pipelines(small_sandbox, 1)
    mine, _ = tokens.create_token(world.app, "prometheus")
    other = world.app.in_workspace(workspaces.add_workspace(world.app, "other").id)
    theirs, _ = tokens.create_token(other, "prometheus")
    save_url(world.app, "postgresql://operator:hunter2@127.0.0.1:1/secretdb")
    with start_serve(world.home, database_url=world.database_url, workers=1) as served:
        save_url(world.app, f"duckdb:///{world.home}/default.duckdb")
        run = runner.enqueue(world.app, pipeline.id)
        wait_for(lambda: world.run(run.id).status == RunStatus.SUCCEEDED, 60, "the run ended")
        save_url(world.app, "postgresql://operator:hunter2@127.0.0.1:1/secretdb")

        def scrape(raw: str) -> str:
            answer = httpx.get(f"{served.url}/metrics", headers={"Authorization": f"Bearer {raw}"})
            assert answer.status_code == 200
            return answer.text

        own, foreign = scrape(mine), scrape(theirs)
        assert _metric(own, 'headwater_runs{status="succeeded"}') == 1
        assert _metric(own, "headwater_customers_written_total") == 5
        assert _metric(own, 'headwater_run_duration_seconds_count{status="succeeded"}') == 1
        assert _metric(foreign, 'headwater_runs{status="succeeded"}') == 0
        assert _metric(foreign, "headwater_customers_read_total") == 0
        assert _metric(foreign, "headwater_customers_written_total") == 0
        assert 'headwater_run_duration_seconds_count{status="succeeded"}' not in foreign
        ready = httpx.get(f"{served.url}/readyz", headers={"Authorization": f"Bearer {theirs}"})
        assert ready.json() == {"status": "ready", "checks": {"store": "ok", "warehouse": "ok"}}
        unready = httpx.get(f"{served.url}/readyz", headers={"Authorization": f"Bearer {mine}"})
        assert unready.status_code == 503
        assert "secretdb" in unready.text or "127.0.0.1" in unready.text
        assert "hunter2" not in unready.text
