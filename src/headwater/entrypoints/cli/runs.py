"""`headwater runs ...`"""

from __future__ import annotations

import sys

import click

from headwater.entrypoints.cli import EXIT_INTERRUPTED
from headwater.entrypoints.cli.output import (
    err,
    handle_errors,
    json_option,
    opened_app,
    out,
    print_json,
    say,
    table,
    warn,
)
from headwater.entrypoints.cli.progress import live_progress
from headwater.kernel.entities import Run, RunStatus
from headwater.services.pipelines import runner
from headwater.services.pipelines.documents import (
    RunOutcome,
    run_document,
    run_outcome,
    run_warnings,
)
from headwater.services.runs import follow as following

#: How `pipelines run` and `runs show --follow` exit once the run ended (documented in
#: their help and the README).
EXIT_CODES = {
    RunOutcome.SUCCEEDED: 0,
    RunOutcome.SUCCEEDED_WITH_ERRORS: 3,
    RunOutcome.FAILED: 1,
    RunOutcome.CANCELLED: 1,
}

_COLOURS = {
    RunOutcome.SUCCEEDED: "green",
    RunOutcome.SUCCEEDED_WITH_ERRORS: "yellow",
    RunOutcome.FAILED: "red",
}


def print_run(run: Run) -> None:
    """A run in text: outcome, message, warnings, counters and first errors (all values
    printed as text, never as markup)."""
    c = run.counters
    outcome = run_outcome(run)
    say(f"run {run.id} ({run.kind}) ", (outcome.replace("_", " "), _COLOURS.get(outcome, "yellow")))
    if run.message:
        out.print(f"  message: {run.message}", highlight=False, markup=False)
    if run.summary.get("reason"):
        out.print(f"  reason: {run.summary['reason']}", highlight=False, markup=False)
    for warning in run_warnings(run):
        warn(warning, indent="  ")
    if c:
        failed = ", ".join(f"{k} {v}" for k, v in c.get("failed", {}).items() if v) or "0"
        out.print(
            f"  read {c.get('read', 0):,} · filtered out {c.get('filtered_out', 0):,} · "
            f"skipped {c.get('skipped', 0):,} · failed {failed} · written "
            f"{c.get('written', 0):,} (created {c.get('created', 0):,}, updated "
            f"{c.get('updated', 0):,}) · deleted {c.get('deleted', 0):,}",
            highlight=False,
            markup=False,
        )
    for e in run.errors:
        out.print(
            f"  {e['step']:>9} {e['source_id'] or '-'}: {e['message']}",
            highlight=False,
            markup=False,
        )


@click.group("runs")
def runs() -> None:
    """Inspect and cancel pipeline runs."""


@runs.command("list")
@click.option("--pipeline", "pipeline_id", help="Only runs of this pipeline.")
@click.option(
    "--status",
    type=click.Choice([s.value for s in RunStatus]),
    help="Only runs with this status (as the API's status=).",
)
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 1000))
@json_option
@handle_errors
def list_(pipeline_id: str | None, status: str | None, limit: int, as_json: bool) -> None:
    """List recent runs, newest first."""
    with opened_app() as app:
        items = runner.list_runs(app, pipeline_id, limit, RunStatus(status) if status else None)
    if as_json:
        print_json([run_document(r) for r in items])
        return
    table(
        ["id", "pipeline", "kind", "status", "read", "written", "deleted", "failed", "started"],
        [
            [
                r.id,
                r.pipeline_id,
                r.kind,
                run_outcome(r),
                r.counters.get("read", 0),
                r.counters.get("written", 0),
                r.counters.get("deleted", 0),
                r.counters.get("failed_total", 0),
                r.started_at and r.started_at.strftime("%Y-%m-%d %H:%M:%S"),
            ]
            for r in items
        ],
        ids=("id", "pipeline"),
    )


@runs.command("show")
@click.argument("run_id")
@click.option(
    "--errors", "error_limit", default=20, show_default=True, type=click.IntRange(0, 1000)
)
@click.option("--follow", is_flag=True, help="Follow the run live until it ends.")
@json_option
@handle_errors
def show(run_id: str, error_limit: int, follow: bool, as_json: bool) -> None:
    """Show a run's status, counters and first errors (live while it runs).

    With --follow, wait for it to end, showing progress on a terminal, and exit as
    `pipelines run` does; Ctrl-C stops following and leaves the run alone.

    \b
    Exit codes:
      0    shown (with --follow: succeeded, every record landed)
      3    with --follow: succeeded with per-record errors
      1    not found (with --follow: failed or cancelled)
      130  with --follow: interrupted with Ctrl-C; the run goes on
    """
    if follow:
        sys.exit(_shown(_followed(run_id, error_limit, as_json), as_json))
    with opened_app() as app:
        run = runner.get_run(app, run_id, error_limit)
    _shown(run, as_json)


def _shown(run: Run, as_json: bool) -> int:
    """Print `run` (its document with --json); the exit code following it ends with."""
    if as_json:
        print_json(run_document(run))
    else:
        print_run(run)
    return EXIT_CODES.get(run_outcome(run), 1)


def _followed(run_id: str, error_limit: int, as_json: bool) -> Run:
    """The run followed to its end.  On Ctrl-C, wherever it lands (opening the store
    takes seconds on a loaded machine), exit 130, with --json after the run's document
    as it stands: one document, as promised."""
    try:
        with opened_app() as app:
            with live_progress(sys.stderr.isatty()) as progress:
                following.follow(app, run_id, progress)
            return runner.get_run(app, run_id, error_limit)
    except KeyboardInterrupt:
        err.print(f"stopped following; run {run_id} goes on", highlight=False, markup=False)
        if as_json:
            with opened_app() as app:
                print_json(run_document(runner.get_run(app, run_id, error_limit)))
        sys.exit(EXIT_INTERRUPTED)


@runs.command("cancel")
@click.argument("run_id")
@json_option
@handle_errors
def cancel(run_id: str, as_json: bool) -> None:
    """Cancel a run: a queued one ends now; a running one stops at its next batch
    boundary (within seconds), keeping what it committed.  Exits 1 if it already ended."""
    with opened_app() as app:
        run = runner.cancel_run(app, run_id)
    if as_json:
        print_json(run_document(run))
    elif run.status == RunStatus.CANCELLED:
        out.print(f"Run {run.id} cancelled", highlight=False, markup=False)
    else:
        out.print(
            f"Run {run.id} asked to stop: it ends cancelled at its next batch boundary",
            highlight=False,
            markup=False,
        )
