"""Retrying runs that failed on a transient cause (DESIGN.md §7, issue 11).

A run that failed because Stripe or the warehouse could not be reached (its summary
says ``transient``) gets a retry: a new queued run of the same pipeline, numbered
`attempt + 1`, pointing at the run it retries, not claimed before its backoff passed
(`run_retry_seconds`, doubled for each next attempt), up to `run_retries` retries.
Terminal causes (a bad key, a missing permission, an invalid definition) and cancelled
runs are not retried.  A run closed as lost (its worker died: no runner is left to
retry it) is retried by the housekeeping that closed it (`retry_lost`), up to the same
number of retries: a "Run now" of a pipeline without a schedule was otherwise never
done.  The first loss is retried at once; a retry lost again waits as a transient
failure's retry does (`lost_wait`).  A run closed as lost when another run of its
pipeline is enqueued is not: that run stands for it.  The retry is enqueued like any
run, so the database's one-live-run rule holds: when another run of the pipeline went
live meanwhile (run now, a schedule tick), that run stands for the retry.

`headwater pipelines run` executing a run itself (no service is up) retries one of
those causes alone, at once: a Customer Model change that refused the run's writes
(its summary also says ``model_changed``; `retry_model_change`).  Stripe's transient
failures were already retried inside the run; an unreachable warehouse is the user's
to look at, not a loop's.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from headwater.adapters.store import queue, runs
from headwater.kernel.entities import Run, RunKind, RunStatus, utcnow
from headwater.kernel.errors import Conflict, NotFound
from headwater.services.app import App
from headwater.services.pipelines import manage

log = logging.getLogger(__name__)

#: How many retries `retry_model_change` makes of a run (attempts 2 to 4).  A retry
#: reads the model anew, and renames and drops are refused while a run is running: it
#: fails again only when another change passed that check just before it was claimed
#: (a script renaming properties one after another: one failure per change at most).
#: More than a few means the model keeps changing, or is refused whatever is read:
#: running again would only loop, so the failed run is reported.
MODEL_CHANGE_RETRIES = 3


def failed_transiently(run: Run) -> bool:
    """Whether `run` failed on a transient cause: what the service retries."""
    return run.status == RunStatus.FAILED and bool(run.summary.get("transient"))


def retry_after(app: App, ended: Run) -> Run | None:
    """Enqueue the retry of `ended` if it failed on a transient cause and has retries
    left; the retry run, or None."""
    if not failed_transiently(ended):
        return None
    why = f"which failed on a transient cause: {ended.message}"
    retry = next_attempt(app, ended, why, backoff(app, ended.attempt))
    return None if retry is None else _enqueue(app, ended, retry)


def retry_lost(app: App, run_id: str) -> Run | None:
    """Enqueue the retry of run `run_id` if it was closed as lost and has retries left
    (`lost_retry`, as the webhooks' follow-ups retry a lost run); the retry, or None
    (see the module docstring)."""
    found = lost_retry(app, run_id, "whose worker was lost")
    return None if found is None else _enqueue(app, *found)


def lost_retry(app: App, run_id: str, why: str) -> tuple[Run, runs.Retry] | None:
    """Run `run_id` and its retry (`why`: what befell it; waiting `lost_wait`), if it was
    closed as lost (`queue.LOST_PREFIX`) and has retries left (`next_attempt`); else
    None."""
    try:
        lost = runs.get_run(app.engine, run_id, 0)
    except NotFound:
        return None
    if lost.status != RunStatus.FAILED or not (lost.message or "").startswith(queue.LOST_PREFIX):
        return None
    retry = next_attempt(app, lost, f"{why}: {lost.message}", lost_wait(app, lost))
    return None if retry is None else (lost, retry)


def lost_wait(app: App, lost: Run) -> timedelta:
    """How long the retry of `lost` waits: nothing after a first attempt (a killed
    worker or a lost machine is no outage to wait out, and finding it lost took a lease
    already); a retry lost again waits as a transient failure's retry does (a run that
    kills its worker, out of memory, is not retried as fast as each attempt dies)."""
    return timedelta(0) if lost.attempt == 1 else backoff(app, lost.attempt - 1)


def backoff(app: App, retry: int) -> timedelta:
    """The wait before the `retry`-th retry (1, 2, ...): `run_retry_seconds`, doubled
    each time."""
    return timedelta(seconds=app.settings.run_retry_seconds * 2 ** (retry - 1))


def retry_model_change(app: App, ended: Run) -> Run | None:
    """Enqueue the retry of `ended`, claimable at once, if it failed as transient
    because the Customer Model changed under it (`failed_transiently`, and its summary
    says ``model_changed``) and has retries left (`MODEL_CHANGE_RETRIES`); the retry
    run, or None.  For `pipelines run`, which executes it (`runner.run_here` claims
    it): with no service up, no one else would."""
    if not failed_transiently(ended) or ended.summary.get("model_changed") is not True:
        return None
    why = f"which failed because the Customer Model changed under it: {ended.message}"
    retry = next_attempt(app, ended, why, retries=MODEL_CHANGE_RETRIES)
    return None if retry is None else _enqueue(app, ended, retry)


def _enqueue(app: App, ended: Run, retry: runs.Retry) -> Run | None:
    """Enqueue `retry` of `ended` as a run of its pipeline's, full if `ended` was; None
    when the pipeline is gone or disabled, or another of its runs is live."""
    try:
        pipeline = manage.get(app, ended.pipeline_id)
    except NotFound:
        return None
    if not pipeline.enabled:
        return None
    kind = RunKind.FULL if ended.kind == RunKind.FULL else RunKind.INCREMENTAL
    try:
        return runs.create_run(app.engine, pipeline.id, kind, retry=retry)
    except Conflict:
        log.info("run %s not retried: another run of %s is live", ended.id, pipeline.id)
        return None


def next_attempt(
    app: App, ended: Run, why: str, wait: timedelta = timedelta(0), retries: int | None = None
) -> runs.Retry | None:
    """The retry of `ended` (`why`: what befell it), not started before `wait`, or None
    when it has had its `retries` (default `run_retries`) or a cancel was asked (it
    failed, or was lost, before it saw the cancel: the user wants it over)."""
    limit = app.settings.run_retries if retries is None else retries
    if ended.cancel_requested or ended.attempt > limit:
        return None
    return runs.Retry(
        attempt=ended.attempt + 1,
        retry_of=ended.id,
        not_before=utcnow() + wait,
        reason=f"retry {ended.attempt} of {limit} of run {ended.id}, {why}",
    )
