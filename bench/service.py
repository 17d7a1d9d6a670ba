"""The service: the scheduler at rest with 10,000 pipelines, and the run queue.

    python bench/service.py [--pipelines 10000] [--seconds 60] [--database-url URL]
                            [--runs 1000] [--processes 2] [--samples 40] [--rounds 10]
                            [--no-queue]

Prints, measured in this run:

- next-run computation: computing every pipeline's next slot (`manage.next_run_at`), as
  a multiple of the yardstick, one read of the same pipelines' rows from the store;
- spread: the busiest second of the hour holds what share of the hourly pipelines'
  slots (target: at most 1%);
- idle scheduler: the process's CPU time over `--seconds` of a real worker's
  housekeeping (`Workers` with no run slot: heartbeat, reaping, a schedule tick of every
  workspace each second), as a share of one core (target: under 2%).  Its clock stands
  at the moment the pipelines were created, so no slot comes due: the cost of looking.
- queue (`bench/service_queue.py`): `queued → running` latency with an idle worker at
  the 95th percentile (target under 1 s); `--runs` tiny queued runs drained by
  `--processes` worker processes, each executed once, as a multiple of the rate of the
  same runs back to back in one process (target at least 0.8), measured in `--rounds`
  alternating rounds so that a change of the machine's load weighs on both alike.

The store is a fresh SQLite file by default; give `--database-url` (say a PostgreSQL
URL with ``?options=-csearch_path%3Dbench``) to measure another.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import Counter
from dataclasses import asdict, replace
from datetime import datetime
from pathlib import Path

from sqlalchemy import insert, select

from headwater.adapters.store import objects, queue, tables
from headwater.kernel.entities import Connection, Pipeline, new_id, utcnow
from headwater.kernel.settings import Settings
from headwater.kernel.state import PipelineState
from headwater.services.app import App
from headwater.services.pipelines import manage
from headwater.services.runs.worker import Workers
from service_queue import report_queue


class StandingClock:
    """A clock stopped at one instant: the bench's ticks all look at the same time."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def now(self) -> datetime:
        return self.at


def populate(app: App, n: int) -> tuple[list[Pipeline], float]:
    """Store `n` enabled hourly pipelines; return them and the seconds their next-slot
    computation took."""
    now = utcnow()
    workspace = app.workspace().id
    conn = Connection(
        new_id("conn"), workspace, "bench", "stripe", "http://127.0.0.1:9", 20.0,
        "v1:unused", "sk_test_…bench", False, True, now,
    )  # fmt: skip
    objects.add(app.engine, conn)
    pipelines = [_pipeline(workspace, conn.id, f"p{i}", now) for i in range(n)]
    started = time.perf_counter()
    for pipeline in pipelines:
        pipeline.next_run_at = manage.next_run_at(pipeline, now)
    computing = time.perf_counter() - started
    with app.engine.begin() as db:
        db.execute(insert(tables.pipelines), [asdict(p) for p in pipelines])
    return pipelines, computing


def _pipeline(workspace: str, connection_id: str, name: str, now: datetime) -> Pipeline:
    spec = {"kind": "mapping", "mapping": {"email": "email"}}
    return Pipeline(
        new_id("pl"), workspace, connection_id, name, "", True, "1h", True, None, spec,
        PipelineState(), True, now, now,
    )  # fmt: skip


def read_rows(app: App) -> float:
    started = time.perf_counter()
    with app.engine.connect() as db:
        db.execute(select(tables.pipelines.c.id, tables.pipelines.c.schedule)).all()
    return time.perf_counter() - started


def idle_housekeeping(app: App, clock: StandingClock, seconds: float) -> None:
    housekeeping = Workers(app, 0, clock=clock)
    housekeeping.start()
    time.sleep(seconds)
    housekeeping.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pipelines", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--database-url")
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--samples", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--no-queue", action="store_true", help="Only the scheduler's figures.")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings.embedded(Path(tmp))
        if args.database_url:
            settings = replace(settings, database_url=args.database_url)
        app = App.open(settings)
        try:
            report(app, args.pipelines, args.seconds)
        finally:
            app.close()
        if not args.no_queue:
            queue_app = App.open(Settings.embedded(Path(tmp) / "queue"))
            try:
                report_queue(queue_app, args.runs, args.processes, args.samples, args.rounds)
            finally:
                queue_app.close()


def report(app: App, n: int, seconds: float) -> None:
    pipelines, computing = populate(app, n)
    yardstick = min(read_rows(app) for _ in range(3))
    slots = Counter(int(p.next_run_at.timestamp()) for p in pipelines if p.next_run_at)
    busiest = max(slots.values())
    clock = StandingClock(min(p.created_at for p in pipelines))
    cpu_before, wall_before = time.process_time(), time.perf_counter()
    idle_housekeeping(app, clock, seconds)
    cpu = time.process_time() - cpu_before
    wall = time.perf_counter() - wall_before
    enqueued = queue.queue_depth(app.engine)
    print(f"pipelines             {n:>12,}   enabled, hourly")
    print(f"yardstick (read rows) {yardstick * 1000:>12.2f} ms")
    print(
        f"next-run computation  {computing * 1000:>12.2f} ms   = "
        f"{computing / yardstick:.2f} x yardstick"
    )
    print(f"busiest second        {busiest:>12,}   = {busiest / n:.2%} of the pipelines (<= 1%)")
    print(f"idle housekeeping     {wall:>12.1f} s    a tick of every workspace each second")
    print(f"idle scheduler CPU    {cpu * 1000:>12.1f} ms   = {cpu / wall:.2%} of one core (< 2%)")
    print(f"runs enqueued         {enqueued:>12,}   (idle: 0)")


if __name__ == "__main__":
    main()
