"""Run workers: claim queued runs, execute them, and keep the service's housekeeping
(the worker registry, closing runs whose lease lapsed, schedule ticks).

Concurrency boundary.  One `Workers` object lives in each `headwater serve` or
`headwater worker` process and owns:
- `slots` run threads ("headwater-run-N"), each looping claim → execute.  Threads, not
  processes: a run's CPU-heavy parts already live elsewhere (the Stripe reader is its own
  process, JavaScript and Python transformations run in their own processes, the
  warehouse writer is its own thread and DuckDB/psycopg release the GIL), so a run
  thread mostly waits.  Threads share one store connection pool and, in embedded mode,
  keep the DuckDB file inside one process, as DuckDB's one-writing-process rule needs.
  More CPU comes from more `headwater worker` processes, which the queue supports.
- one housekeeping thread ("headwater-housekeeping") that beats the registry, reaps
  lapsed leases and ticks the scheduler for every workspace.  It runs with no run slot
  too (`serve --workers 0`): the scheduler is leaderless, so any process may tick, and a
  deployment of HTTP-only `serve` processes and `headwater worker`s keeps its schedules.
The threads share only `_stops` (the `RunStop` of each run in progress, under `_lock`)
and the `_stopping` event.  `request_stop` (from a signal handler's thread or the main
thread) asks every run in progress to stop at its next batch boundary and go back to the
queue (`queued`; or `cancelled` when it was being cancelled); `stop` then waits for them.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from datetime import timedelta

from headwater.adapters.store import objects, queue, runs
from headwater.adapters.store.database import describe_error
from headwater.kernel.clock import Clock, SystemClock
from headwater.kernel.entities import Pipeline, Run, RunStatus, utcnow
from headwater.kernel.errors import NotFound
from headwater.services.app import App
from headwater.services.pipelines import runner
from headwater.services.pipelines.lease import RunStop, new_owner
from headwater.services.runs import logcontext, retries, scheduler
from headwater.services.runs.metrics import Metrics

log = logging.getLogger(__name__)

#: How often an idle run thread looks for a queued run (queue latency under 1 s).
POLL_SECONDS = 0.2
#: How often the housekeeping thread wakes: heartbeat, reaping, schedule ticks.
HOUSEKEEPING_SECONDS = 1.0
#: How often the housekeeping thread moves back slots set by a clock that was ahead.
RESLOT_SECONDS = 60.0
#: A worker is alive while its last heartbeat is at most this old.
ALIVE_WITHIN = timedelta(seconds=10)


def any_worker_alive(app: App) -> bool:
    """Whether some process runs queued runs now (the CLI executes runs itself when not)."""
    return queue.alive(app.engine, ALIVE_WITHIN) > 0


class Workers:
    """The run threads and housekeeping of one process (see the module docstring)."""

    def __init__(
        self,
        app: App,
        slots: int,
        *,
        clock: Clock | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.app = app
        self.slots = slots
        self.clock = clock or SystemClock()
        self.worker_id = new_owner()
        self.metrics = metrics
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._stops: dict[str, RunStop] = {}
        self._reslotted_at = -RESLOT_SECONDS  # `time.monotonic()` of the last `_reslot`
        self._threads = [
            threading.Thread(target=self._run_loop, name=f"headwater-run-{i}", daemon=True)
            for i in range(slots)
        ]
        self._threads.append(
            threading.Thread(target=self._housekeeping, name="headwater-housekeeping", daemon=True)
        )

    def start(self) -> None:
        queue.register_worker(self.app.engine, self.worker_id, self.slots)
        for thread in self._threads:
            thread.start()
        log.info("%d run worker(s) started (%s)", self.slots, self.worker_id)

    def request_stop(self) -> None:
        """Ask every run in progress to stop at its next batch boundary and go back to
        the queue; claim nothing more.  Returns at once (safe from a signal handler)."""
        self._stopping.set()
        message = f"re-queued: the service on {socket.gethostname()} stopped while it ran"
        with self._lock:
            for stop in self._stops.values():
                stop.request(RunStatus.QUEUED, message)

    def stop(self) -> None:
        """`request_stop`, then wait until every run in progress went back or ended."""
        self.request_stop()
        for thread in self._threads:
            thread.join()
        try:
            queue.unregister_worker(self.app.engine, self.worker_id)
        except Exception as exc:  # its row lapses by itself
            log.warning("worker %s not unregistered (%s)", self.worker_id, describe_error(exc))
        log.info("run workers stopped (%s)", self.worker_id)

    def _run_loop(self) -> None:
        lease = timedelta(seconds=self.app.settings.run_lease_seconds)
        while not self._stopping.is_set():
            owner = new_owner()
            try:
                run = queue.claim_next(self.app.engine, owner, utcnow() + lease)
            except Exception as exc:  # the store is locked or away: look again later
                log.warning("claiming a run failed (%s)", describe_error(exc))
                self._stopping.wait(POLL_SECONDS * 10)
                continue
            if run is None:
                self._stopping.wait(POLL_SECONDS)
                continue
            self._execute(run, owner)

    def _execute(self, run: Run, owner: str) -> None:
        stop = RunStop()
        with self._lock:
            self._stops[run.id] = stop
            if self._stopping.is_set():  # stopping began between the claim and now
                stop.request(RunStatus.QUEUED, "re-queued: the service stopped")
        try:
            with logcontext.bound(run.id, run.pipeline_id):
                self._execute_bound(run, owner, stop)
        finally:
            with self._lock:
                del self._stops[run.id]

    def _execute_bound(self, run: Run, owner: str, stop: RunStop) -> None:
        log.info("run %s of %s claimed", run.id, run.pipeline_id)
        started = time.monotonic()
        try:
            workspace_id = objects.get(self.app.engine, Pipeline, run.pipeline_id).workspace_id
            app = self.app.in_workspace(workspace_id)
            ended = runner.execute_claimed(app, run, owner, stop=stop)
        except NotFound:
            # Deleted between the claim and now (deleting cancels queued runs, so only
            # a claim racing the deletion gets here): end the run now, not a lease later.
            self._fail(run, owner, f"its pipeline {run.pipeline_id} no longer exists")
            return
        except Exception as exc:  # execute_claimed records failures; this is a bug's net
            log.exception("run %s: the worker failed around it", run.id)
            self._fail(run, owner, f"the worker failed around the run: {describe_error(exc)}")
            return
        seconds = time.monotonic() - started
        log.info("run %s ended %s in %.1f s", run.id, ended.status, seconds)
        if self.metrics is not None:
            self.metrics.run_ended(ended, seconds, app.workspace_id)
        try:
            retry = retries.retry_after(app, ended)
        except Exception as exc:  # the run ended; only its retry is lost (schedules remain)
            log.warning("run %s: its retry was not queued (%s)", run.id, describe_error(exc))
            return
        if retry is not None:
            log.info("run %s will be retried by %s", run.id, retry.id)

    def _fail(self, run: Run, owner: str, reason: str) -> None:
        """End a claimed run `failed` with `reason` at once (if it still exists)."""
        try:
            runs.finish_run(
                self.app.engine, run.id, owner, status=RunStatus.FAILED.value, message=reason
            )
        except Exception as exc:  # the store is away: the lease lapses and it is reaped
            log.warning("run %s not closed (%s)", run.id, describe_error(exc))
        log.warning("run %s failed: %s", run.id, reason)

    def _housekeeping(self) -> None:
        while not self._stopping.wait(HOUSEKEEPING_SECONDS):
            for name, chore in (
                ("heartbeat", self._beat),
                ("reaping lapsed runs", self._reap),
                ("schedule tick", self._tick),
                ("moving slots ahead of the clock", self._reslot),
            ):
                try:
                    chore()
                except Exception as exc:  # each chore is retried at the next wake
                    log.warning("%s failed (%s)", name, describe_error(exc))

    def _beat(self) -> None:
        queue.beat(self.app.engine, self.worker_id, self.slots)

    def _reap(self) -> None:
        for run_id in runs.reap_lapsed(self.app.engine, utcnow()):
            log.warning("run %s closed as failed: its worker was lost", run_id)
            retry = retries.retry_lost(self.app, run_id)
            if retry is not None:
                log.info(
                    "run %s enqueued to retry %s, not before %s", retry.id, run_id, retry.not_before
                )

    def _tick(self) -> None:
        scheduler.tick_all(self.app, self.clock)

    def _reslot(self) -> None:
        if time.monotonic() - self._reslotted_at >= RESLOT_SECONDS:
            self._reslotted_at = time.monotonic()
            scheduler.reslot_all(self.app, self.clock)
