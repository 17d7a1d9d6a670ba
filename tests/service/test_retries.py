"""Runs that failed on a transient cause are retried by the service, each retry its own
run; terminal causes are not."""

from __future__ import annotations

import itertools
from datetime import datetime

import pytest
from tests.service.conftest import World, wait_for
from tests.serving import start_serve

from headwater.adapters.store import objects, runs
from headwater.kernel.entities import Connection, Run, RunStatus
from headwater.sandbox.testing import RunningSandbox
from headwater.services.pipelines import runner
from headwater.services.warehouse import save_url

pytestmark = [pytest.mark.slow, pytest.mark.parametrize("service_store", ["sqlite"])]

RETRY = {"HEADWATER_RUN_RETRIES": "2", "HEADWATER_RUN_RETRY_SECONDS": "0.5"}


def _runs(world: World, pipeline_id: str) -> list[Run]:
    return sorted(runs.list_runs(world.app.engine, [pipeline_id]), key=lambda r: r.attempt)


def test_a_transient_failure_is_retried_with_backoff_then_given_up(
    world: World, small_sandbox: RunningSandbox
) -> None:
    [pipeline] = world.pipelines(small_sandbox, 1)
    save_url(world.app, "postgresql://nobody@127.0.0.1:1/none")  # unreachable: transient
    first = runner.enqueue(world.app, pipeline.id)
    with start_serve(world.home, database_url=world.database_url, env=RETRY, workers=1):
        wait_for(
            lambda: [r.status for r in _runs(world, pipeline.id)] == [RunStatus.FAILED] * 3,
            60,
            "the run and its two retries failed",
        )
    done = _runs(world, pipeline.id)
    assert [r.attempt for r in done] == [1, 2, 3]
    assert [r.retry_of for r in done] == [None, first.id, done[1].id]
    for earlier, retry in itertools.pairwise(done):
        assert retry.not_before is not None
        assert retry.started_at is not None
        assert aware(retry.started_at) >= retry.not_before  # not claimed before its backoff
        backoff = (retry.not_before - aware(earlier.finished_at)).total_seconds()
        assert backoff >= 0.5 * 2 ** (earlier.attempt - 1) - 0.05  # 0.5 s, then 1 s
        assert earlier.summary["transient"] is True
    assert all("127.0.0.1" in (r.message or "") or "unreachable" in (r.message or "") for r in done)


def test_a_terminal_failure_is_not_retried(world: World, small_sandbox: RunningSandbox) -> None:
    [pipeline] = world.pipelines(small_sandbox, 1)
    # The key is rolled in Stripe after the connection was saved: a terminal cause.
    conn = objects.get(world.app.engine, Connection, pipeline.connection_id)
    conn.api_key_encrypted = world.app.cipher.encrypt("sk_test_" + "x" * 24, context=conn.id)
    objects.save(world.app.engine, conn, only=["api_key_encrypted"])
    run = runner.enqueue(world.app, pipeline.id)
    with start_serve(world.home, database_url=world.database_url, env=RETRY, workers=1):
        wait_for(lambda: world.run(run.id).status == RunStatus.FAILED, 60, "the run failed")
    # The serve that ran it has stopped: any retry it would have made exists by now.
    assert [r.id for r in _runs(world, pipeline.id)] == [run.id]
    assert not world.run(run.id).summary.get("transient")


def aware(ts: datetime | None) -> datetime:
    assert ts is not None
    return objects.aware(ts) or ts
