"""The queue's figures for `bench/service.py` (issue 11): claim latency with an idle
worker, and the drain rate of many tiny queued runs by worker processes against the
same runs executed back to back in this process.

Workers run as real `headwater worker` processes over this bench's store; the warehouse
is a fresh PostgreSQL schema (several processes cannot share one DuckDB file), dropped
at the end.
"""

from __future__ import annotations

import os
import secrets
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

from headwater.adapters.store import objects, queue
from headwater.kernel.entities import Pipeline, Run
from headwater.sandbox.testing import RunningSandbox, start_sandbox
from headwater.services import connections
from headwater.services.app import App
from headwater.services.pipelines import manage, runner
from headwater.services.runs.worker import ALIVE_WITHIN
from headwater.services.warehouse import set_url

PG = "postgresql://root@127.0.0.1:5432/test"
MAPPING = {"kind": "mapping", "mapping": {"email": "email"}}


@contextmanager
def pg_warehouse(app: App) -> Iterator[None]:
    schema = f"bench_{secrets.token_hex(4)}"
    with psycopg.connect(PG, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        set_url(app, f"{PG}?schema={schema}")
        yield
    finally:
        with psycopg.connect(PG, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@contextmanager
def workers(app: App, processes: int, slots: int) -> Iterator[None]:
    env = {**os.environ, "HEADWATER_HOME": str(app.settings.home)}
    env["HEADWATER_DATABASE_URL"] = app.settings.database_url
    args = [sys.executable, "-m", "headwater", "worker", "--workers", str(slots)]
    started = [
        subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(processes)
    ]
    try:
        while queue.alive(app.engine, ALIVE_WITHIN) < processes * slots:
            time.sleep(0.1)  # every worker registered: imported and polling
        time.sleep(0.5)
        yield
    finally:
        for process in started:
            process.terminate()
        for process in started:
            process.wait(60)


def _ended(app: App, run_id: str) -> Run:
    while (run := runner.get_run(app, run_id, 0)).live:
        time.sleep(0.02)
    return run


def claim_latency(app: App, pipeline: Pipeline, samples: int) -> list[float]:
    """Seconds from `queued` to `running`, one run at a time, with an idle worker."""
    latencies = []
    with workers(app, 1, 1):
        for _ in range(samples):
            queued = runner.enqueue(app, pipeline.id)
            ended = _ended(app, queued.id)
            assert ended.started_at is not None
            started = objects.aware(ended.started_at) or ended.started_at
            latencies.append((started - queued.created_at).total_seconds())
            time.sleep(0.3)  # the worker is idle again, polling
    return latencies


def drain(app: App, sandbox: RunningSandbox, pipelines: list[Pipeline]) -> float:
    """Seconds for the running workers to drain one queued run per pipeline; checks
    that each run was executed exactly once."""
    sandbox.reset_stats()
    queued = [runner.enqueue(app, p.id, full=True).id for p in pipelines]
    started = time.perf_counter()
    ended = [_ended(app, run_id) for run_id in queued]
    seconds = time.perf_counter() - started
    failed = [r.id for r in ended if r.status != "succeeded"]
    reads = sandbox.stats()["by_path"].get("GET /v1/customers", 0)
    assert not failed, f"runs failed: {failed[:5]}"
    assert reads == len(queued), f"{reads} reads for {len(queued)} runs: a run ran twice"
    return seconds


def back_to_back(app: App, pipelines: list[Pipeline]) -> float:
    started = time.perf_counter()
    for pipeline in pipelines:
        runner.run_pipeline(app, pipeline.id, full=True)
    return time.perf_counter() - started


def interleaved(
    app: App, sandbox: RunningSandbox, pipelines: list[Pipeline], processes: int, rounds: int
) -> tuple[float, float]:
    """Seconds of the same runs back to back in this process and drained by worker
    processes, in `rounds` alternating rounds (a slice of the pipelines each, the
    order swapped every round), so that a change of the machine's load during the
    bench weighs on both alike; each pipeline runs once each way (full runs)."""
    sequential = drained = 0.0
    with workers(app, processes, 1):
        for i in range(rounds):
            chunk = pipelines[i::rounds]
            if i % 2:
                drained += drain(app, sandbox, chunk)
                sequential += back_to_back(app, chunk)
            else:
                sequential += back_to_back(app, chunk)
                drained += drain(app, sandbox, chunk)
    return sequential, drained


def report_queue(app: App, runs: int, processes: int, samples: int, rounds: int = 10) -> None:
    with start_sandbox(customers=1, seed=2) as sandbox, pg_warehouse(app):
        conn = connections.add_stripe(app, "bench", sandbox.secret_key, sandbox.url, 1000)
        pipelines = [manage.create(app, conn.id, f"q{i}", MAPPING) for i in range(runs)]
        runner.run_pipeline(app, pipelines[0].id)  # the warehouse's tables exist
        latencies = claim_latency(app, pipelines[0], samples)
        sequential, drained = interleaved(app, sandbox, pipelines, processes, rounds)
    p95 = statistics.quantiles(latencies, n=20)[-1]
    print(f"claim latency p95     {p95 * 1000:>12.0f} ms   over {samples} runs (< 1000 ms)")
    print(f"back to back          {runs / sequential:>12.1f} runs/s   ({runs} runs, one process)")
    print(
        f"drained by workers    {runs / drained:>12.1f} runs/s   = "
        f"{sequential / drained:.2f} x back to back ({processes} processes; >= 0.8), "
        f"each run executed once; {rounds} alternating rounds"
    )
