"""`headwater runs ...`"""

from __future__ import annotations

import click

from headwater.entrypoints.cli.output import (
    handle_errors,
    json_option,
    opened_app,
    out,
    print_json,
    run_document,
    say,
    table,
    warn,
)
from headwater.kernel.entities import Run
from headwater.services.pipelines import runner


def print_run(run: Run) -> None:
    c = run.counters
    colour = {"succeeded": "green", "failed": "red"}.get(run.status, "yellow")
    say(f"run {run.id} ({run.kind}) ", (run.status, colour))
    if run.message:
        out.print(f"  message: {run.message}", highlight=False)
    if run.summary.get("reason"):
        out.print(f"  reason: {run.summary['reason']}", highlight=False)
    for warning in run.summary.get("warnings", []):
        warn(warning, indent="  ")
    if c:
        failed = ", ".join(f"{k} {v}" for k, v in c.get("failed", {}).items() if v) or "0"
        out.print(
            f"  read {c.get('read', 0):,} · filtered out {c.get('filtered_out', 0):,} · "
            f"skipped {c.get('skipped', 0):,} · failed {failed} · written "
            f"{c.get('written', 0):,} (created {c.get('created', 0):,}, updated "
            f"{c.get('updated', 0):,}) · deleted {c.get('deleted', 0):,}",
            highlight=False,
        )
    for e in run.errors:
        out.print(f"  {e['step']:>9} {e['source_id'] or '-'}: {e['message']}", highlight=False)


@click.group("runs")
def runs() -> None:
    """Inspect pipeline runs."""


@runs.command("list")
@click.option("--pipeline", "pipeline_id", help="Only runs of this pipeline.")
@click.option("--limit", default=20, show_default=True)
@json_option
@handle_errors
def list_(pipeline_id: str | None, limit: int, as_json: bool) -> None:
    """List recent runs, newest first."""
    with opened_app() as app:
        items = runner.list_runs(app, pipeline_id, limit)
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
                r.status,
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
@click.option("--errors", "error_limit", default=20, show_default=True)
@json_option
@handle_errors
def show(run_id: str, error_limit: int, as_json: bool) -> None:
    """Show a run's status, counters and first errors (live while it runs)."""
    with opened_app() as app:
        run = runner.get_run(app, run_id, error_limit)
    if as_json:
        print_json(run_document(run))
    else:
        print_run(run)
