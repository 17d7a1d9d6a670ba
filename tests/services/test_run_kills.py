"""`kill -9` of `headwater pipelines run` on a PostgreSQL warehouse, at moments seen from
the warehouse's side: after a chosen number of committed batches (of a first import and
of incremental runs) and while the run resolves identities (it holds the resolution's
advisory lock).  After each kill: the killed run is closed as lost, saying its process
ended; the next run continues from what committed (full after a first import that never
finished, incremental after that); in the end the warehouse holds exactly what a fresh
import of the same sandbox holds.
"""

from __future__ import annotations

import os
import random
import secrets
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
import stripe
from tests.conftest import PG_URL
from tests.services.failure_world import fresh_import, landed, make, seed_shared

from headwater.adapters.store import runs
from headwater.kernel.entities import Run
from headwater.kernel.settings import Settings
from headwater.sandbox.testing import RunningSandbox, start_sandbox
from headwater.services.app import App
from headwater.services.pipelines import runner
from headwater.services.warehouse import set_url

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

#: `headwater pipelines run`, with writes of 200 rows (several commits per run).
CLI_RUN = textwrap.dedent(
    """
    import runpy, sys
    from headwater.services.pipelines import engine
    engine.WRITE_BATCH = 200
    sys.argv = ["headwater", "pipelines", "run", sys.argv[1]]
    runpy.run_module("headwater", run_name="__main__")
    """
)


class Watch:
    """One autocommit session on the test server, polling what the run did."""

    def __init__(self) -> None:
        self.conn = psycopg.connect(PG_URL, autocommit=True)

    def one(self, query: str, *params: object) -> int:
        found = self.conn.execute(query, params).fetchone()
        return int(found[0]) if found and found[0] is not None else 0

    def committed_after(self, schema: str, rows: int) -> Callable[[], bool]:
        """Whether `rows` identities written by runs after this call committed."""
        s = f'"{schema}"'
        self.conn.execute(f"DROP TABLE IF EXISTS {s}.hw_old_runs")
        self.conn.execute(
            f"CREATE TABLE {s}.hw_old_runs AS SELECT DISTINCT _run_id FROM {s}.identities"
        )
        query = (
            f"SELECT count(*) FROM {s}.identities "
            f"WHERE _run_id NOT IN (SELECT _run_id FROM {s}.hw_old_runs)"
        )
        return lambda: self.one(query) >= rows

    def resolving(self, application_name: str) -> Callable[[], bool]:
        """Whether the run's warehouse session holds the resolution's advisory lock."""
        query = (
            "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid) "
            "WHERE a.application_name = %s AND l.locktype = 'advisory' AND l.granted"
        )
        return lambda: self.one(query, application_name) > 0


def kill_when(home: Path, pipeline_id: str, moment: Callable[[], bool]) -> bool:
    """Start `pipelines run` and SIGKILL it at `moment`; False when it ended first."""
    proc = subprocess.Popen(
        [sys.executable, "-c", CLI_RUN, pipeline_id],
        env={**os.environ, "HEADWATER_HOME": str(home)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            if moment():
                proc.send_signal(signal.SIGKILL)
                break
            time.sleep(0.005)
    finally:
        _, stderr = proc.communicate(timeout=30)
    if proc.returncode == 0:
        return False  # the moment passed between two looks: the run ended
    assert proc.returncode == -signal.SIGKILL, f"ended {proc.returncode}: {stderr[-2000:]}"
    return True


def killed_after_changes(
    home: Path, sb: RunningSandbox, pipeline_id: str, rng: random.Random, moment: Callable[[], bool]
) -> None:
    """Change the sandbox, then kill an incremental run at `moment` (three tries: a
    resolution of a few hundred identities can fall between two looks)."""
    for _ in range(3):
        _changes(sb, rng)
        if kill_when(home, pipeline_id, moment):
            return
    pytest.fail("the run always ended before the moment to kill it was seen")


def _changes(sb: RunningSandbox, rng: random.Random) -> None:
    client = stripe.StripeClient(sb.secret_key, base_addresses={"api": sb.url})
    listed = [c.id for c in client.v1.customers.list({"limit": 100}).auto_paging_iter()]
    for cid in rng.sample(listed, 80):
        if rng.random() < 0.2:
            client.v1.customers.delete(cid)
        else:
            email = f"k{rng.randrange(40)}@example.com"
            client.v1.customers.update(cid, {"email": email, "name": f"n{rng.random()}"})
    for n in range(10):
        client.v1.customers.create({"email": f"k{n}@example.com", "name": "new"})


def _lost(app: App, pipeline_id: str, ran: Run) -> None:
    """The run before `ran` was the killed one: closed as lost, saying why."""
    listed = runs.list_runs(app.engine, [pipeline_id], limit=2)
    assert listed[0].id == ran.id
    killed = listed[1]
    assert killed.status == "failed"
    assert killed.message is not None
    assert killed.message.startswith(
        f"worker lost on {killed.host}: its process {killed.pid} ended"
    ), killed.message


@pytest.mark.parametrize("seed", [3, 8])
def test_kill_9_at_chosen_moments_then_the_next_run_lands_exactly(
    app: App, home: Path, settings: Settings, pg_schema: str, tmp_path: Path, seed: int
) -> None:
    rng = random.Random(seed)
    watch = Watch()
    name = f"hw_run_{secrets.token_hex(4)}"
    set_url(app, f"{PG_URL}?schema={pg_schema}&application_name={name}")
    with start_sandbox(customers=1500, seed=seed) as sb:
        seed_shared(sb)
        pipeline = make(app, sb, rps=20, incremental=True)  # a full read lasts a second
        # A first import killed after a few of its batches committed.
        app.warehouse().close()  # creates the tables
        assert kill_when(
            home, pipeline.id, watch.committed_after(pg_schema, 200 * rng.randint(1, 5))
        )
        partial = landed(app, pipeline.id, resolved=False)
        assert 0 < len(partial.identities) < 1509
        again = runner.run_pipeline(app, pipeline.id)
        assert again.status == "succeeded", again.message
        assert again.summary["kind"] == "full"  # no position committed: it never finished
        _lost(app, pipeline.id, again)
        # An incremental run killed while it resolves identities (every write committed).
        killed_after_changes(home, sb, pipeline.id, rng, watch.resolving(name))
        again = runner.run_pipeline(app, pipeline.id)
        assert again.status == "succeeded", again.message
        assert again.summary["kind"] == "incremental"
        _lost(app, pipeline.id, again)
        # An incremental run killed after its first batch committed.
        killed_after_changes(home, sb, pipeline.id, rng, watch.committed_after(pg_schema, 1))
        again = runner.run_pipeline(app, pipeline.id)
        assert again.status == "succeeded", again.message
        assert again.summary["kind"] == "incremental"
        _lost(app, pipeline.id, again)
        got = landed(app, pipeline.id)
        assert got.pending == 0
        want = fresh_import(settings, tmp_path / "ref", f"duckdb:///{tmp_path / 'ref.duckdb'}", sb)
    watch.conn.close()
    assert got.identities == want.identities
    assert set(got.profiles) == set(want.profiles)
