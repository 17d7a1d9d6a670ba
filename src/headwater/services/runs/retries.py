"""Retrying runs that failed on a transient cause (DESIGN.md §7, issue 11).

A run that failed because Stripe or the warehouse could not be reached (its summary
says ``transient``) gets a retry: a new queued run of the same pipeline, numbered
`attempt + 1`, pointing at the run it retries, not claimed before its backoff passed
(`run_retry_seconds`, doubled for each next attempt), up to `run_retries` retries.
Terminal causes (a bad key, a missing permission, an invalid definition), cancelled
runs and runs closed as lost are not retried.  The retry is enqueued like any run, so
the database's one-live-run rule holds: when another run of the pipeline went live
meanwhile (run now, a schedule tick), that run stands for the retry.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from headwater.adapters.store import runs
from headwater.kernel.entities import Run, RunKind, RunStatus, utcnow
from headwater.kernel.errors import Conflict, NotFound
from headwater.services.app import App
from headwater.services.pipelines import manage

log = logging.getLogger(__name__)


def retry_after(app: App, ended: Run) -> Run | None:
    """Enqueue the retry of `ended` if it failed on a transient cause and has retries
    left; the retry run, or None."""
    if ended.status != RunStatus.FAILED or not ended.summary.get("transient"):
        return None
    wait = timedelta(seconds=app.settings.run_retry_seconds * 2 ** (ended.attempt - 1))
    retry = next_attempt(app, ended, f"which failed on a transient cause: {ended.message}", wait)
    if retry is None:
        return None
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
    app: App, ended: Run, why: str, wait: timedelta = timedelta(0)
) -> runs.Retry | None:
    """The retry of `ended` (`why`: what befell it), not started before `wait`, or None
    when it has had its `run_retries` or a cancel was asked (it failed, or was lost,
    before it saw the cancel: the user wants it over)."""
    if ended.cancel_requested or ended.attempt > app.settings.run_retries:
        return None
    return runs.Retry(
        attempt=ended.attempt + 1,
        retry_of=ended.id,
        not_before=utcnow() + wait,
        reason=f"retry {ended.attempt} of {app.settings.run_retries} of run {ended.id}, {why}",
    )
