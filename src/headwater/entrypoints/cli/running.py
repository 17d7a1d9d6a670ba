"""`headwater pipelines run`: run a pipeline now and follow it (DESIGN.md §7)."""

from __future__ import annotations

import os
import sys
from typing import NoReturn

import click
from sqlalchemy.exc import DBAPIError

from headwater.adapters.store.database import store_error
from headwater.entrypoints.cli import EXIT_INTERRUPTED
from headwater.entrypoints.cli.output import err, handle_errors, json_option, opened_app, print_json
from headwater.entrypoints.cli.progress import live_progress
from headwater.entrypoints.cli.runs import EXIT_CODES, print_run
from headwater.kernel.entities import Run
from headwater.services.app import App
from headwater.services.pipelines import runner
from headwater.services.pipelines.documents import run_document, run_outcome
from headwater.services.runs import retries
from headwater.services.runs.follow import follow
from headwater.services.runs.worker import any_worker_alive


@click.command("run")
@click.argument("pipeline_id")
@click.option("--full", is_flag=True, help="Force a full run (re-read everything, purge).")
@json_option
@handle_errors
def run(pipeline_id: str, full: bool, as_json: bool) -> None:
    """Run a pipeline now and follow it until it ends.

    When a service (`headwater serve` or `headwater worker`) is up, the run is queued
    for it and followed here; otherwise this command executes it itself, and runs it
    again (up to 3 times, a line on stderr each) when a Customer Model change (a
    property renamed or dropped) refused its writes, as the service would.

    \b
    Exit codes:
      0    succeeded: every record landed
      3    succeeded with per-record errors (some records failed and were not imported;
           the run shows how many and the first errors)
      1    failed (or was cancelled, or could not start)
      130  interrupted with Ctrl-C: when this command executed the run, it ends
           cancelled, keeping what it committed; when the service executes it, only
           the following stops and the run goes on
    """
    with opened_app() as app:
        if any_worker_alive(app):
            finished = _follow_queued(app, pipeline_id, full, as_json)
        else:
            finished = _execute_here(app, pipeline_id, full, as_json)
    if as_json:
        print_json(run_document(finished))
    else:
        print_run(finished)
    sys.exit(EXIT_CODES.get(run_outcome(finished), 1))


def _follow_queued(app: App, pipeline_id: str, full: bool, as_json: bool) -> Run:
    queued = runner.enqueue(app, pipeline_id, full=full)
    try:
        with live_progress(sys.stderr.isatty()) as progress:
            return follow(app, queued.id, progress)
    except KeyboardInterrupt:
        _say_err(
            f"stopped following; run {queued.id} goes on in the service "
            f"(headwater runs show {queued.id} --follow)"
        )
        _interrupted(app, queued.id if as_json else None)


def _execute_here(app: App, pipeline_id: str, full: bool, as_json: bool) -> Run:
    """Execute the run here; one the Customer Model changed under is retried here, as
    the service would (`retries.retry_model_change`): a line on stderr for each retry."""
    try:
        with live_progress(sys.stderr.isatty()) as progress:
            ended = runner.run_here(app, pipeline_id, full=full, on_progress=progress)
            while (retry := _retry_model_change(app, ended)) is not None:
                _say_err(
                    f"run {ended.id} failed: the Customer Model changed under it (a property "
                    f"renamed or dropped); retrying with the new model as run {retry.id} "
                    f"(retry {retry.attempt - 1} of {retries.MODEL_CHANGE_RETRIES})"
                )
                ended = runner.run_here(app, pipeline_id, full=full, on_progress=progress)
            return ended
    except KeyboardInterrupt:
        _say_err(
            "interrupted: the run ended cancelled; what it committed is kept and the next "
            "run continues from there"
        )
        # The run this process executed (none when Ctrl-C came before it was claimed).
        mine = [r for r in runner.list_runs(app, pipeline_id, limit=5) if r.pid == os.getpid()]
        _interrupted(app, mine[0].id if as_json and mine else None)


def _retry_model_change(app: App, ended: Run) -> Run | None:
    """`retries.retry_model_change` of `ended`; None, with a line on stderr, when the
    store failed as the retry was enqueued (`store_error`): the command then ends as
    `ended` did, its document and exit code, rather than on the store's error.  Tried
    once: a store locked past its busy timeout or away is not waited for here."""
    try:
        return retries.retry_model_change(app, ended)
    except DBAPIError as exc:
        failure = store_error(exc)
        if failure is None:
            raise  # a bug's: with its traceback
        _say_err(
            f"run {ended.id} failed: the Customer Model changed under it (a property "
            f"renamed or dropped); its retry could not be queued: {failure.message}"
        )
        return None


def _interrupted(app: App, run_id: str | None) -> NoReturn:
    """Exit 130; with --json (`run_id` given) after printing the run's document as it
    stands: `--json` promises one document, and a script needs the run's id."""
    if run_id is not None:
        print_json(run_document(runner.get_run(app, run_id)))
    sys.exit(EXIT_INTERRUPTED)


def _say_err(message: str) -> None:
    err.print(message, highlight=False, markup=False)
