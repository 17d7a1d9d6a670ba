"""Incremental import under random change sequences and crashes (issue 6, the proof).

One sandbox and one pipeline per test function; every hypothesis example continues from
the state the previous one left, which is exactly what the invariant allows: after any
run, whatever came before, the warehouse equals Stripe after filter and mapping.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.services.conftest import MakePipeline, connect
from tests.services.test_incremental import FILTER, MAPPING, assert_in_sync, run, sdk

from headwater.adapters.store import runs
from headwater.kernel.entities import Pipeline
from headwater.sandbox.testing import RunningSandbox, start_sandbox
from headwater.services.app import App
from headwater.services.pipelines import runner

PLANS = ("pro", "free", "enterprise")
COUNTRIES = ("IT", "DE", "US")


class Mutator:
    """Random changes to the sandbox through the SDK; remembers live customer ids."""

    def __init__(self, sb: RunningSandbox) -> None:
        self.client = sdk(sb)
        self.ids = [c.id for c in self.client.v1.customers.list({"limit": 100}).auto_paging_iter()]
        self.serial = 0

    def apply(self, op: str, pick: int, plan: str, country: str) -> None:
        self.serial += 1
        customers = self.client.v1.customers
        if op == "create" or not self.ids:
            created = customers.create(
                {
                    "email": f" New{self.serial}@Example.com",
                    "metadata": {"plan": plan},
                    "address": {"country": country},
                }
            )
            self.ids.append(created.id)
            return
        target = self.ids[pick % len(self.ids)]
        if op == "delete":
            customers.delete(target)
            self.ids.remove(target)
        elif op == "email":
            customers.update(target, {"email": f"u{self.serial}@Example.com"})
        elif op == "plan":  # filter- and mapping-relevant
            customers.update(target, {"metadata": {"plan": plan}})
        else:  # "country": filter-relevant
            customers.update(target, {"address": {"country": country}})


OPS = st.sampled_from(["create", "delete", "email", "email", "plan", "plan", "country"])
CHANGE = st.tuples(OPS, st.integers(0, 10_000), st.sampled_from(PLANS), st.sampled_from(COUNTRIES))
STEP = st.one_of(
    st.lists(CHANGE, min_size=1, max_size=12).map(lambda c: ("changes", c)),
    st.just(("incremental", [])),
    st.just(("incremental", [])),
    st.just(("full", [])),
)


@pytest.mark.slow
def test_random_changes_and_runs_always_leave_the_warehouse_equal_to_stripe(
    warehouse_app: App, make_pipeline: MakePipeline
) -> None:
    app = warehouse_app
    with start_sandbox(customers=200, seed=31) as sb:
        pipeline = make_pipeline(connect(app, sb), mapping=MAPPING, filter=FILTER)
        mutator = Mutator(sb)
        kinds: list[str] = []

        # One sandbox and pipeline for all examples: each continues from the last.
        @settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
        @given(steps=st.lists(STEP, min_size=2, max_size=8))
        def check(steps: list[tuple[str, list[tuple[str, int, str, str]]]]) -> None:
            for kind, changes in [*steps, ("incremental", [])]:
                if kind == "changes":
                    for change in changes:
                        mutator.apply(*change)
                    continue
                finished = run(app, pipeline, full=kind == "full")
                kinds.append(finished.kind)
                assert_in_sync(app, sb, pipeline)

        check()
    # The sequence really exercised incremental runs, not only full ones.
    assert kinds.count("incremental") > len(kinds) // 2


def test_changes_made_during_a_full_read_are_caught_by_the_next_incremental_run(
    app: App, make_pipeline: MakePipeline
) -> None:
    with start_sandbox(customers=400, seed=33) as sb:
        pipeline = make_pipeline(connect(app, sb), mapping=MAPPING, filter=FILTER)
        mutator = Mutator(sb)
        rng = random.Random(5)
        fired: list[bool] = []

        def change_mid_read(counters: Any) -> None:
            # Runs on the reader thread after the first page: the read is under way.
            if not fired and counters.read > 0:
                fired.append(True)
                for _ in range(40):
                    op = rng.choice(["create", "delete", "email", "plan", "country"])
                    mutator.apply(op, rng.randrange(10_000), *_plan_country(rng))

        first = runner.run_pipeline(app, pipeline.id, on_progress=change_mid_read)
        assert first.status == "succeeded", first.message
        assert first.kind == "full"
        assert fired
        after = run(app, pipeline)
        assert after.kind == "incremental"
        assert after.counters["read"] > 0
        assert_in_sync(app, sb, pipeline)


def _plan_country(rng: random.Random) -> tuple[str, str]:
    return rng.choice(PLANS), rng.choice(COUNTRIES)


# A crash at a chosen instant, in a real separate process (os._exit: no cleanup at all).
CRASH_SCRIPT = textwrap.dedent(
    """
    import os, sys
    from headwater.entrypoints.environment import settings_from_env
    from headwater.services.app import App
    from headwater.services.pipelines import engine, runner

    point, nth = sys.argv[2], int(sys.argv[3])
    engine.WRITE_BATCH = 50  # about one write per page of events: several commits
    seen = {"save": 0, "write": 0}
    save_state = engine.RunContext.save_state
    open_warehouse = App.warehouse

    def crashing_save(self, state, **kw):
        seen["save"] += 1
        if point == "after-commit" and seen["save"] == nth:
            os._exit(99)  # this batch (and its position) committed; nothing after it did
        save_state(self, state, **kw)

    def crashing_warehouse(self, **kw):
        wh = open_warehouse(self, **kw)
        write = wh.write
        def crashing_write(batch):
            seen["write"] += 1
            if point == "before-write" and seen["write"] == nth:
                os._exit(99)
            return write(batch)
        wh.write = crashing_write
        return wh

    engine.RunContext.save_state = crashing_save
    App.warehouse = crashing_warehouse
    runner.run_pipeline(App.open(settings_from_env()), sys.argv[1])
    sys.exit(0)
    """
)


def warehouse_position(app: App, pipeline: Pipeline) -> dict[str, Any] | None:
    wh = app.warehouse()
    try:
        owned = wh.pipeline_state(pipeline.id)
    finally:
        wh.close()
    assert owned is not None
    assert owned.state is not None
    return owned.state.position


def _changes(mutator: Mutator, rng: random.Random, n: int) -> None:
    for _ in range(n):
        op = rng.choice(["create", "create", "delete", "email", "plan", "country"])
        mutator.apply(op, rng.randrange(10_000), *_plan_country(rng))


CRASH_POINTS = [("after-commit", 1), ("after-commit", 2), ("before-write", 2)]


@pytest.mark.slow
def test_a_crash_at_chosen_points_of_incremental_runs_loses_and_duplicates_nothing(
    warehouse_app: App, home: Path, make_pipeline: MakePipeline
) -> None:
    app = warehouse_app
    env = {**os.environ, "HEADWATER_HOME": str(home)}
    with start_sandbox(customers=200, seed=35) as sb:
        pipeline = make_pipeline(connect(app, sb), mapping=MAPPING, filter=FILTER)
        run(app, pipeline)
        mutator = Mutator(sb)
        for n, (point, nth) in enumerate(CRASH_POINTS):
            before = warehouse_position(app, pipeline)
            _changes(mutator, random.Random(n), 130)  # two pages of events: two batches
            crashed = subprocess.run(
                [sys.executable, "-c", CRASH_SCRIPT, pipeline.id, point, str(nth)],
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert crashed.returncode == 99, crashed.stderr[-2000:]
            # The position commits with its batch (rules 1 and 5): it moved exactly when
            # a batch committed before the crash.
            saved = warehouse_position(app, pipeline)
            if point == "before-write" and nth == 1:
                assert saved == before
            else:
                assert saved != before
            recovered = run(app, pipeline)
            assert recovered.kind == "incremental"
            assert_in_sync(app, sb, pipeline)
            killed = runs.list_runs(app.engine, [pipeline.id])[1]
            assert killed.status == "failed", (point, nth)


@pytest.mark.slow
def test_kill_9_at_random_moments_of_incremental_runs_then_run_again(
    app: App, home: Path, make_pipeline: MakePipeline
) -> None:
    """Kill -9 at random moments, then run again: nothing lost, nothing duplicated.

    Even rounds kill at a random share of a whole run's calibrated duration (start-up
    included); odd rounds at a random moment while the run's first request waits for
    its answer (200 ms of latency), so those kills land inside a run whatever the
    machine's speed: timed by the calibration alone, four runs on a loaded machine all
    finished before their kills (CI, 3 December 2026)."""
    rng = random.Random(2024)
    env = {**os.environ, "HEADWATER_HOME": str(home)}
    cmd = [sys.executable, "-m", "headwater", "pipelines", "run"]
    with start_sandbox(customers=200, seed=37) as sb:
        pipeline = make_pipeline(connect(app, sb), mapping=MAPPING, filter=FILTER)
        run(app, pipeline)
        mutator = Mutator(sb)
        # Calibrate: how long a whole CLI incremental run takes on this machine.
        _changes(mutator, rng, 150)
        sb.control(latency_ms=40)  # stretch each request so kills land inside runs
        started = time.monotonic()
        whole = subprocess.run([*cmd, pipeline.id, "--json"], env=env, capture_output=True)
        duration = time.monotonic() - started
        assert whole.returncode == 0, whole.stderr[-2000:]
        outcomes = []
        for round_ in range(4):
            sb.control(latency_ms=0)
            _changes(mutator, rng, rng.randrange(40, 160))
            inside = round_ % 2 == 1
            sb.control(latency_ms=200 if inside else 40)
            sb.reset_stats()
            proc = subprocess.Popen(
                [*cmd, pipeline.id, "--json"],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            if inside:
                _await_first_request(sb, proc)
                time.sleep(rng.uniform(0.0, 0.1))
            else:
                time.sleep(rng.uniform(0.2, 1.0) * duration)
            os.kill(proc.pid, signal.SIGKILL)
            outcomes.append(proc.wait())
            sb.control(latency_ms=0)
            recovered = run(app, pipeline)
            assert recovered.kind == "incremental"
            assert_in_sync(app, sb, pipeline)
    assert outcomes[1] == outcomes[3] == -signal.SIGKILL, outcomes  # killed inside runs


def _await_first_request(sb: RunningSandbox, proc: subprocess.Popen[bytes]) -> None:
    """Wait until the run `proc` has a request in flight at the sandbox (its stats were
    reset just before the run started: their peak in flight counts from admission)."""
    deadline = time.monotonic() + 60
    while sb.stats()["peak_in_flight"] < 1:
        assert proc.poll() is None, "the run ended without asking the sandbox anything"
        assert time.monotonic() < deadline, "the run sent no request within 60 s"
        time.sleep(0.005)
