"""The reads the API and the console poll use indexes on both stores, however many runs
there are: the plan of each statement the real functions send is read with EXPLAIN
(after ANALYZE, with 5,000 runs over 50 pipelines) and must find rows by an index,
never by reading or sorting every run.  (Migration 0009 added the list indexes.)"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, event, insert
from tests.store.seeding import seed

from headwater.adapters.store import objects, run_queries, runs
from headwater.adapters.store.tables import runs as runs_table
from headwater.kernel.entities import Pipeline, utcnow

RUNS = 5000


def _plans(engine: Engine, call: Callable[[], object]) -> list[str]:
    """The query plan of each statement `call` sends, as text."""
    sent: list[tuple[str, Any]] = []

    def grab(_c: Any, _cur: Any, statement: str, parameters: Any, _ctx: Any, _many: bool) -> None:
        sent.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", grab)
    try:
        call()
    finally:
        event.remove(engine, "before_cursor_execute", grab)
    sqlite = engine.dialect.name == "sqlite"
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        plans = []
        for statement, parameters in sent:
            cursor.execute(
                ("EXPLAIN QUERY PLAN " if sqlite else "EXPLAIN ") + statement, parameters
            )
            plans.append("\n".join(str(row[-1] if sqlite else row[0]) for row in cursor.fetchall()))
        return plans
    finally:
        raw.close()


def _full_reads_of_runs(plan: str) -> list[str]:
    """Lines of `plan` that read every run, or sort every run read."""
    bad = (
        r"^SCAN (runs|newest)$|^USE TEMP B-TREE FOR ORDER BY"  # SQLite
        r"|Seq Scan on runs|^(->\s*)?Sort\s+\(cost"  # PostgreSQL (not an Incremental Sort)
    )
    return [line for line in plan.splitlines() if re.search(bad, line.strip())]


@pytest.fixture
def store(engine: Engine) -> tuple[Engine, list[str]]:
    first = seed(engine)
    now = utcnow()
    ids = [first.id]
    for i in range(49):
        pipeline = dataclasses.replace(first, id=f"pl_{i + 2}", created_at=now + timedelta(i))
        ids.append(objects.add(engine, pipeline).id)
    rows = [
        {
            "id": f"run_{i:05}",
            "pipeline_id": ids[i % len(ids)],
            "kind": "full",
            "status": "failed" if i % 7 == 0 else "succeeded",
            "counters": {},
            "message": None,
            "summary": {},
            "created_at": now - timedelta(minutes=i),
            "cancel_requested": False,
        }
        for i in range(RUNS)
    ]
    with engine.begin() as conn:
        conn.execute(insert(runs_table), rows)
        conn.exec_driver_sql("ANALYZE")
    return engine, ids


def test_the_polled_reads_find_runs_by_index(store: tuple[Engine, list[str]]) -> None:
    engine, ids = store
    reads: dict[str, tuple[Callable[[], object], str]] = {
        "last runs of a page of pipelines": (
            lambda: run_queries.latest_runs(engine, ids[:20]),
            "ix_runs_pipeline",
        ),
        "a run of the workspace": (
            lambda: runs.get_run(engine, "run_00010", 20, "ws"),
            "runs_pkey" if engine.dialect.name == "postgresql" else "sqlite_autoindex_runs_1",
        ),
        "a page of a pipeline's runs": (
            lambda: run_queries.page_runs(engine, ["pl_1"], 20),
            "ix_runs_pipeline",
        ),
        "a page of the workspace's runs": (
            lambda: run_queries.page_runs(engine, ids, 20),
            "ix_runs_created",
        ),
        "a page of the workspace's failed runs": (
            lambda: run_queries.page_runs(engine, ids, 20, status="failed"),
            "ix_runs_",
        ),
    }
    for name, (call, index) in reads.items():
        plans = _plans(engine, call)
        assert plans, name
        assert index in plans[0], f"{name}: {plans[0]}"
        assert _full_reads_of_runs(plans[0]) == [], f"{name}: {plans[0]}"
        for plan in plans[1:]:  # a run's first errors: from a table empty here
            assert "Seq Scan on runs" not in plan, f"{name}: {plan}"
            assert "SCAN runs\n" not in plan + "\n", f"{name}: {plan}"
    found = run_queries.latest_runs(engine, ids[:20])
    assert sorted(found) == sorted(ids[:20])
    assert found["pl_1"].id == "run_00000"  # the newest
    # A workspace's pipelines by their index (PostgreSQL rightly reads 50 rows whole).
    [plan] = _plans(engine, lambda: objects.find_page(engine, Pipeline, 20, workspace_id="ws"))
    if engine.dialect.name == "sqlite":
        assert "ix_pipelines_workspace" in plan
        assert "TEMP B-TREE" not in plan
