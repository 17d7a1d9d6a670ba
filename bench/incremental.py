"""Incremental import: does a run after a few changes cost only those changes?

Starts a sandbox with N customers (default 1,000,000), imports them all into a temporary
HEADWATER_HOME's default DuckDB warehouse with a full run (the yardstick, measured in
this same run), makes C changes (default 1,000: creates, updates and deletes) and runs
the pipeline incrementally.  Targets, printed as ratios (measured / target, so <= 1.0
passes): the incremental run makes at most C/100 + 5 API calls, and its wall time is at
most 2 % of the full run's.  The warehouse is then checked against the sandbox.

    python bench/incremental.py [--customers N] [--changes C]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from typing import Any

import httpx

from headwater.entrypoints.environment import settings_from_env
from headwater.kernel.entities import Run
from headwater.sandbox.testing import RunningSandbox, start_sandbox
from headwater.services import connections
from headwater.services.app import App
from headwater.services.pipelines import manage, runner

CALLS_SLACK = 5
WALL_SHARE = 0.02
MAPPING = {
    "email": "email",
    "address.country": "address.country",
    "created_at": "created",
    "metadata": "metadata",
}


def change(sb: RunningSandbox, count: int) -> dict[str, int]:
    """Make `count` changes: 40 % creates, 40 % updates, 20 % deletes (raw HTTP: fast)."""
    headers = {"Authorization": f"Bearer {sb.secret_key}"}
    done = {"created": 0, "updated": 0, "deleted": 0}
    with httpx.Client(base_url=sb.url, headers=headers, timeout=30) as http:
        targets = [c["id"] for c in http.get("/v1/customers", params={"limit": 100}).json()["data"]]
        page = targets
        while len(targets) < count:  # enough distinct existing customers to touch
            after = {"limit": 100, "starting_after": page[-1]}
            page = [c["id"] for c in http.get("/v1/customers", params=after).json()["data"]]
            targets += page
        for i in range(count):
            kind = ("created", "updated", "created", "updated", "deleted")[i % 5]
            if kind == "created":
                http.post("/v1/customers", data={"email": f"bench{i}@example.com"})
            elif kind == "updated":
                http.post(f"/v1/customers/{targets[i]}", data={"email": f"moved{i}@example.com"})
            else:
                http.delete(f"/v1/customers/{targets[i]}")
            done[kind] += 1
    return done


def timed_run(app: App, pipeline_id: str, sb: RunningSandbox, full: bool) -> tuple[Run, float, int]:
    sb.reset_stats()
    started = time.perf_counter()
    finished = runner.run_pipeline(app, pipeline_id, full=full)
    seconds = time.perf_counter() - started
    if finished.status != "succeeded":
        raise SystemExit(f"run failed: {finished.message}")
    return finished, seconds, int(sb.stats()["requests"])


def report(label: str, run: Run, seconds: float, calls: int) -> None:
    c: dict[str, Any] = run.counters
    print(
        f"{label:<12} {run.kind:<11} {seconds:8.2f} s {calls:7,} calls  read {c['read']:,}  "
        f"created {c['created']:,} updated {c['updated']:,} deleted {c['deleted']:,}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--changes", type=int, default=1_000)
    parser.add_argument("--rps", type=float, default=1000.0, help="the connection's budget")
    args = parser.parse_args()

    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as home, start_sandbox(customers=args.customers) as sb:
        up = time.perf_counter() - started
        print(f"sandbox with {args.customers:,} customers up in {up:.1f} s")
        os.environ["HEADWATER_HOME"] = home
        os.environ.pop("HEADWATER_DATABASE_URL", None)
        app = App.open(settings_from_env())
        try:
            conn = connections.add_stripe(app, "bench", sb.secret_key, sb.url, args.rps)
            spec = {"kind": "mapping", "mapping": MAPPING}
            pipeline = manage.create(app, conn.id, "bench", spec, incremental=True)
            full, full_s, full_calls = timed_run(app, pipeline.id, sb, full=False)
            report("full", full, full_s, full_calls)
            made = change(sb, args.changes)
            print(f"changes      {made}")
            inc, inc_s, inc_calls = timed_run(app, pipeline.id, sb, full=False)
            report("incremental", inc, inc_s, inc_calls)
            expected = int(sb.stats()["customers"])
            wh = app.warehouse()
            landed = wh.count(pipeline.id)
            wh.close()
        finally:
            app.close()
    if inc.kind != "incremental":
        raise SystemExit(f"the second run was {inc.kind}, not incremental")
    if landed != expected:
        raise SystemExit(f"warehouse holds {landed:,} customers, the sandbox {expected:,}")
    calls_target = args.changes / 100 + CALLS_SLACK
    print(f"warehouse    {landed:,} customers = sandbox {expected:,}")
    print(
        f"api calls    {inc_calls} vs target {calls_target:.0f} "
        f"(changes/100 + {CALLS_SLACK}): ratio {inc_calls / calls_target:.2f}"
    )
    share = inc_s / full_s
    print(
        f"wall time    {share:.2%} of the full run vs target {WALL_SHARE:.0%}: "
        f"ratio {share / WALL_SHARE:.2f}"
    )


if __name__ == "__main__":
    main()
