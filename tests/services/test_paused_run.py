"""Issue 17 §1 in real processes: a run paused (SIGSTOP) past its lease, then resumed.

While it is stopped its lease lapses, a newer run takes the pipeline over and finishes;
when the stopped run continues it must not write, purge or save a position (state rule
6), and every customer stays in the warehouse.
The warehouse is PostgreSQL: a stopped process keeps a DuckDB file locked, so on
DuckDB the newer run could not even open it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tests.service.conftest import pause
from tests.services.conftest import MakePipeline, connect, use_postgres
from tests.services.test_runs import sb_customers, wait_for, warehouse_ids

from headwater.adapters.store import runs
from headwater.kernel.entities import RunStatus
from headwater.sandbox.testing import start_sandbox
from headwater.services.app import App

LEASE = 2.0

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def cli_run(env: dict[str, str], pipeline_id: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "headwater", "pipelines", "run", pipeline_id, "--full", "--json"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group: SIGSTOP reaches its reader too
    )


def test_a_run_paused_past_its_lease_cannot_write_when_it_resumes(
    app: App, home: Path, pg_schema: str, make_pipeline: MakePipeline
) -> None:
    use_postgres(app, pg_schema)
    env = {**os.environ, "HEADWATER_HOME": str(home), "HEADWATER_RUN_LEASE_SECONDS": str(LEASE)}
    # 100 ms per request: the first run reads for a few seconds, so it can be caught
    # after it claimed the pipeline and before it wrote anything.
    with start_sandbox(customers=6000, seed=23, latency_ms=100) as sb:
        pipeline = make_pipeline(connect(app, sb))
        first = cli_run(env, pipeline.id)
        paused = wait_for(app, pipeline.id, lambda r: r.counters.get("read", 0) > 0)
        pause(app, first.pid, paused.id, group=True)  # not inside a write to the store
        try:
            assert paused.counters["read"] < 6000  # caught mid-read
            time.sleep(3 * LEASE)  # its lease lapses while it is stopped
            second = cli_run(env, pipeline.id)
            out, err = second.communicate(timeout=120)
            assert second.returncode == 0, err
            assert json.loads(out)["status"] == RunStatus.SUCCEEDED
        finally:
            os.killpg(first.pid, signal.SIGCONT)
        first_out, first_err = first.communicate(timeout=120)
        stripe_ids = {c["id"] for c in sb_customers(sb)}
    assert first.returncode == 1, first_err
    document = json.loads(first_out)
    # Resumed, the stale run learns it lost the pipeline before it writes (its lease
    # timer sees the run closed as lost; the warehouse's fencing token would refuse a
    # write anyway: tests/services/test_warehouse_state.py).
    assert document["status"] == RunStatus.FAILED
    assert "stopped without writing" in document["message"]
    assert document["counters"]["written"] == 0
    lost = runs.get_run(app.engine, paused.id)
    assert lost.status == RunStatus.FAILED
    assert lost.message is not None
    assert lost.message.startswith("worker lost on ")
    # Nothing of the newer run's import was purged or overwritten by the stale run.
    assert warehouse_ids(app, pipeline.id) == stripe_ids
    assert len(stripe_ids) == 6000
