"""The scheduler at rest: 10,000 enabled hourly pipelines, ticked as a worker does.

    python bench/service.py [--pipelines 10000] [--seconds 60] [--interval 2]
                            [--database-url URL]

Prints, measured in this run:

- next-run computation: computing every pipeline's next slot (`manage.next_run_at`), as
  a multiple of the yardstick, one read of the same pipelines' rows from the store;
- spread: the busiest second of the hour holds what share of the hourly pipelines'
  slots (target: at most 1%);
- idle scheduler: the process's CPU time over `--seconds` of ticks every `--interval`
  seconds, as a share of one core (target: under 2%).  The clock stands at the moment
  the pipelines were created, so no slot comes due: this is the cost of looking.

The store is a fresh SQLite file by default; give `--database-url` (say a PostgreSQL
URL with ``?options=-csearch_path%3Dbench``) to measure another.  The queue's figures of
issue 11 (claim latency, drain rate) come with the workers.
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

from headwater.adapters.store import objects, tables
from headwater.kernel.entities import Connection, Pipeline, new_id, utcnow
from headwater.kernel.settings import Settings
from headwater.kernel.state import PipelineState
from headwater.services.app import App
from headwater.services.pipelines import manage
from headwater.services.runs.scheduler import Tick, tick


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


def idle_ticks(app: App, clock: StandingClock, seconds: float, interval: float) -> list[Tick]:
    done = []
    deadline = time.monotonic() + seconds
    while (now := time.monotonic()) < deadline:
        done.append(tick(app, clock))
        time.sleep(max(0.0, min(interval, deadline - now)))
    return done


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pipelines", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--interval", type=float, default=2.0)
    parser.add_argument("--database-url")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings.embedded(Path(tmp))
        if args.database_url:
            settings = replace(settings, database_url=args.database_url)
        app = App.open(settings)
        try:
            report(app, args.pipelines, args.seconds, args.interval)
        finally:
            app.close()


def report(app: App, n: int, seconds: float, interval: float) -> None:
    pipelines, computing = populate(app, n)
    yardstick = min(read_rows(app) for _ in range(3))
    slots = Counter(int(p.next_run_at.timestamp()) for p in pipelines if p.next_run_at)
    busiest = max(slots.values())
    clock = StandingClock(min(p.created_at for p in pipelines))
    cpu_before, wall_before = time.process_time(), time.perf_counter()
    ticks = idle_ticks(app, clock, seconds, interval)
    cpu = time.process_time() - cpu_before
    wall = time.perf_counter() - wall_before
    enqueued = sum(len(t.enqueued) for t in ticks)
    print(f"pipelines             {n:>12,}   enabled, hourly")
    print(f"yardstick (read rows) {yardstick * 1000:>12.2f} ms")
    print(
        f"next-run computation  {computing * 1000:>12.2f} ms   = "
        f"{computing / yardstick:.2f} x yardstick"
    )
    print(f"busiest second        {busiest:>12,}   = {busiest / n:.2%} of the pipelines (<= 1%)")
    print(f"idle ticks            {len(ticks):>12,}   every {interval:g} s over {wall:.1f} s")
    print(f"idle scheduler CPU    {cpu * 1000:>12.1f} ms   = {cpu / wall:.2%} of one core (< 2%)")
    print(f"runs enqueued         {enqueued:>12,}   (idle: 0)")


if __name__ == "__main__":
    main()
