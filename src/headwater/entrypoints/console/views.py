"""Shaping service results for the templates: form values kept across a failed post,
the words a run's summary is told in, and small parsers for form fields."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from headwater.kernel.entities import SCHEDULES, Pipeline, Run, RunStatus
from headwater.kernel.errors import InvalidInput
from headwater.services.app import App
from headwater.services.connections import STRIPE_API
from headwater.services.pipelines import runner

#: The "Schedule" menu of the pipelines table: the schedules a pipeline takes, labelled.
SCHEDULE_CHOICES = tuple((s, "Off" if s == "off" else s) for s in SCHEDULES)


@dataclass(frozen=True)
class StripeForm:
    """The "Add source..." form's values (the API key is never sent back)."""

    name: str = "Stripe"
    base_url: str = STRIPE_API
    requests_per_second: str = "20"


def parse_float(text: str, field: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise InvalidInput(f"must be a number; got {text!r}", field) from None


def last_run(app: App, pipelines: list[Pipeline]) -> Run | None:
    """The most recent run of any of `pipelines`."""
    latest = [r for p in pipelines for r in runner.list_runs(app, p.id, 1)]
    return max(latest, key=lambda r: r.created_at, default=None)


def failed_count(run: Run) -> int:
    failed = run.counters.get("failed", {})
    if isinstance(failed, dict):
        return sum(int(n) for n in failed.values())
    return int(failed or 0)


def summary(run: Run) -> str:
    """A finished run in one line: "Import completed • 9,214 customers imported •
    786 filtered out • no errors" (or how many failed, or why it did not complete)."""
    counters = run.counters
    written = int(counters.get("written", 0))
    filtered = int(counters.get("filtered_out", 0))
    failed = failed_count(run)
    errors = "no errors" if not failed else f"{failed:,} {'error' if failed == 1 else 'errors'}"
    parts = [f"{written:,} customers imported", f"{filtered:,} filtered out", errors]
    if run.status == RunStatus.SUCCEEDED:
        return " • ".join(["Import completed", *parts])
    if run.status == RunStatus.CANCELLED:
        return " • ".join([_cancelled(run.message), *parts])
    if run.status == RunStatus.FAILED:
        return f"Import failed: {run.message or 'unknown error'}"
    return run.status.value.capitalize()


def _cancelled(message: str | None) -> str:
    """ "Import cancelled", and why when it was not on request ("cancelled on request",
    "cancelled: interrupted (Ctrl-C)", "dropped: the pipeline was disabled ...")."""
    why = (message or "").strip()
    if why.startswith("cancelled: "):
        return f"Import cancelled: {why.removeprefix('cancelled: ')}"
    if why.startswith("cancelled "):
        return f"Import {why}"
    return f"Import cancelled ({why})" if why else "Import cancelled"


def progress(run: Run) -> dict[str, Any]:
    """The live numbers of a run, for its progress line."""
    counters = run.counters
    return {
        "read": int(counters.get("read", 0)),
        "written": int(counters.get("written", 0)),
        "filtered_out": int(counters.get("filtered_out", 0)),
        "failed": failed_count(run),
    }


def duration(run: Run) -> str:
    if run.started_at is None or run.finished_at is None:
        return "—"
    seconds = (run.finished_at - run.started_at).total_seconds()
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def finished(runs: list[Run]) -> list[Run]:
    """The runs the chart shows: the finished ones, oldest first."""
    return sorted((r for r in runs if r.finished_at is not None), key=lambda r: r.created_at)


def chart(runs: list[Run]) -> dict[str, list[Any]]:
    """Customers imported and failed per finished run, oldest first (for uPlot)."""
    done = finished(runs)
    return {
        "x": [int(r.created_at.timestamp()) for r in done],
        "imported": [int(r.counters.get("written", 0)) for r in done],
        "failed": [failed_count(r) for r in done],
    }


def chart_summary(runs: list[Run]) -> str:
    """The chart in one sentence, for those who cannot see it (its table has the rest):
    "3 finished runs, from 2026-01-02 10:00 to 2026-01-02 11:00 UTC: 1,200 customers
    imported and 4 failed in all; the latest imported 400 and failed 0."."""
    done = finished(runs)
    if not done:
        return "No finished run yet: the chart is empty."
    imported = sum(int(r.counters.get("written", 0)) for r in done)
    failed = sum(failed_count(r) for r in done)
    first, last = (f"{r.created_at:%Y-%m-%d %H:%M}" for r in (done[0], done[-1]))
    when = f"at {last} UTC" if len(done) == 1 else f"from {first} to {last} UTC"
    count = "1 finished run" if len(done) == 1 else f"{len(done):,} finished runs"
    latest = int(done[-1].counters.get("written", 0)), failed_count(done[-1])
    return (
        f"{count}, {when}: {imported:,} customers imported and {failed:,} failed in all; "
        f"the latest imported {latest[0]:,} and failed {latest[1]:,}."
    )
