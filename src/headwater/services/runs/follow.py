"""Following a run that someone else executes (a service worker), until it ends."""

from __future__ import annotations

import time

from headwater.kernel.entities import Run
from headwater.kernel.records import Counters
from headwater.services.app import App
from headwater.services.pipelines import runner
from headwater.services.pipelines.recorder import Progress

#: How often a follower reads the run's row.
FOLLOW_SECONDS = 0.25


def follow(app: App, run_id: str, on_progress: Progress | None = None) -> Run:
    """Read the run until it ended, calling `on_progress` with its counters as they
    change (on the caller's thread); the ended run.  Interrupting (Ctrl-C) only stops
    following: the run goes on."""
    last: dict[str, object] | None = None
    while True:
        run = runner.get_run(app, run_id)
        if on_progress is not None and run.counters and run.counters != last:
            last = run.counters
            on_progress(Counters.from_dict(run.counters))
        if not run.live:
            return run
        time.sleep(FOLLOW_SECONDS)
