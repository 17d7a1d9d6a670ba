"""`headwater pipelines ...`"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from headwater.entrypoints.cli.output import (
    handle_errors,
    json_option,
    opened_app,
    out,
    print_json,
    run_document,
    table,
)
from headwater.entrypoints.cli.progress import live_progress
from headwater.entrypoints.cli.runs import print_run
from headwater.kernel.entities import SCHEDULES
from headwater.kernel.errors import InvalidInput
from headwater.services.pipelines import manage, runner
from headwater.services.pipelines import preview as preview_service
from headwater.services.pipelines.documents import pipeline_document, suggested_transformation

FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


def _json_file(path: Path, option: str) -> Any:
    text = path.read_text()
    if not text.strip():
        raise InvalidInput(f"{path}: the file is empty", option)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(
            f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})", option
        ) from None


def definition_options(fn: Any) -> Any:
    for option in reversed(
        [
            click.option("--description"),
            click.option("--mapping", type=FILE, help="Mapping JSON: {property: expression}."),
            click.option("--suggested-mapping", is_flag=True, help="Use the suggested mapping."),
            click.option("--javascript", type=FILE, help="A .js file defining transform()."),
            click.option("--python", type=FILE, help="A .py file defining transform()."),
            click.option("--filter", "filter_file", type=FILE, help="Filter JSON."),
            click.option("--schedule", type=click.Choice(SCHEDULES)),
            click.option("--incremental/--no-incremental", default=None),
        ]
    ):
        fn = option(fn)
    return fn


def transformation_from(
    app: Any, mapping: Path | None, suggested: bool, javascript: Path | None, python: Path | None
) -> dict[str, Any] | None:
    given = [x for x in (mapping, javascript, python) if x] + ([True] if suggested else [])
    if len(given) > 1:
        raise InvalidInput(
            "give at most one of --mapping, --suggested-mapping, --javascript, --python"
        )
    if mapping:
        return {"kind": "mapping", "mapping": _json_file(mapping, "--mapping")}
    if javascript:
        return {"kind": "javascript", "source": javascript.read_text()}
    if python:
        return {"kind": "python", "source": python.read_text()}
    if suggested:
        return suggested_transformation(app.model())
    return None


@click.group("pipelines")
def pipelines() -> None:
    """Create, change, run and delete pipelines."""


@pipelines.command("add")
@click.option("--connection", "connection_id", required=True)
@click.option("--name", required=True)
@definition_options
@click.option("--disabled", is_flag=True, help="Create it disabled.")
@json_option
@handle_errors
def add(
    connection_id: str,
    name: str,
    description: str | None,
    mapping: Path | None,
    suggested_mapping: bool,
    javascript: Path | None,
    python: Path | None,
    filter_file: Path | None,
    schedule: str | None,
    incremental: bool | None,
    disabled: bool,
    as_json: bool,
) -> None:
    """Add a pipeline (without a transformation option it uses the suggested mapping)."""
    with opened_app() as app:
        spec = transformation_from(app, mapping, suggested_mapping, javascript, python)
        pipeline = manage.create(
            app,
            connection_id,
            name,
            spec or suggested_transformation(app.model()),
            description=description or "",
            filter=_json_file(filter_file, "--filter") if filter_file else None,
            schedule=schedule or "off",
            incremental=True if incremental is None else incremental,
            enabled=not disabled,
        )
        doc = pipeline_document(app, pipeline)
    if as_json:
        print_json(doc)
    else:
        out.print(f"Added pipeline [bold]{pipeline.id}[/bold] ({pipeline.name})")


@pipelines.command("update")
@click.argument("pipeline_id")
@click.option("--name")
@definition_options
@click.option("--clear-filter", is_flag=True, help="Remove the filter (import everyone).")
@json_option
@handle_errors
def update(
    pipeline_id: str,
    name: str | None,
    description: str | None,
    mapping: Path | None,
    suggested_mapping: bool,
    javascript: Path | None,
    python: Path | None,
    filter_file: Path | None,
    schedule: str | None,
    incremental: bool | None,
    clear_filter: bool,
    as_json: bool,
) -> None:
    """Change a pipeline; a new filter or transformation makes its next run full."""
    with opened_app() as app:
        changes = manage.PipelineChanges(
            name=name,
            description=description,
            schedule=schedule,
            incremental=incremental,
            filter=_json_file(filter_file, "--filter") if filter_file else None,
            clear_filter=clear_filter,
            transformation=transformation_from(app, mapping, suggested_mapping, javascript, python),
        )
        doc = pipeline_document(app, manage.update(app, pipeline_id, changes))
    if as_json:
        print_json(doc)
    else:
        out.print(f"Updated pipeline {pipeline_id}")


@pipelines.command("list")
@click.option("--connection", "connection_id")
@json_option
@handle_errors
def list_(connection_id: str | None, as_json: bool) -> None:
    """List pipelines."""
    with opened_app() as app:
        docs = [pipeline_document(app, p) for p in manage.list_pipelines(app, connection_id)]
    if as_json:
        print_json(docs)
        return
    table(
        [
            "id",
            "name",
            "connection",
            "enabled",
            "schedule",
            "incremental",
            "transformation",
            "filter",
            "last run",
        ],
        [
            [
                d["id"],
                d["name"],
                d["connection_id"],
                d["enabled"],
                d["schedule"],
                d["incremental"],
                d["transformation"]["kind"],
                d["filter_text"] or "everyone",
                (d["last_run"] or {}).get("status"),
            ]
            for d in docs
        ],
    )


@pipelines.command("show")
@click.argument("pipeline_id")
@json_option
@handle_errors
def show(pipeline_id: str, as_json: bool) -> None:
    """Show a pipeline's definition, state and last run."""
    with opened_app() as app:
        doc = pipeline_document(app, manage.get(app, pipeline_id))
    if as_json:
        print_json(doc)
        return
    for key in (
        "id",
        "name",
        "description",
        "connection_id",
        "enabled",
        "schedule",
        "incremental",
        "filter_text",
        "next_run_kind",
    ):
        out.print(f"{key:>14}: {doc[key]}", highlight=False)
    out.print(
        f"{'transformation':>14}: {json.dumps(doc['transformation'], indent=2)}", highlight=False
    )
    for warning in doc["warnings"]:
        out.print(f"[yellow]warning:[/yellow] {warning}", highlight=False)


def _toggle(pipeline_id: str, enabled: bool) -> None:
    with opened_app() as app:
        manage.update(app, pipeline_id, manage.PipelineChanges(enabled=enabled))
    out.print(f"Pipeline {pipeline_id} {'enabled' if enabled else 'disabled'}")


@pipelines.command("enable")
@click.argument("pipeline_id")
@handle_errors
def enable(pipeline_id: str) -> None:
    """Enable a pipeline."""
    _toggle(pipeline_id, True)


@pipelines.command("disable")
@click.argument("pipeline_id")
@handle_errors
def disable(pipeline_id: str) -> None:
    """Disable a pipeline: it never runs, scheduled or not."""
    _toggle(pipeline_id, False)


@pipelines.command("delete")
@click.argument("pipeline_id")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@handle_errors
def delete(pipeline_id: str, yes: bool) -> None:
    """Delete a pipeline, its runs and the customers it imported."""
    if not yes:
        click.confirm(f"Delete {pipeline_id} and the customers it imported?", abort=True)
    with opened_app() as app:
        removed = manage.delete(app, pipeline_id)
    out.print(f"Deleted pipeline {pipeline_id} and {removed:,} imported customers")


@pipelines.command("run")
@click.argument("pipeline_id")
@click.option("--full", is_flag=True, help="Force a full run (re-read everything, purge).")
@json_option
@handle_errors
def run(pipeline_id: str, full: bool, as_json: bool) -> None:
    """Run a pipeline now and wait; exits non-zero if the run failed."""
    with opened_app() as app, live_progress(sys.stderr.isatty()) as progress:
        finished = runner.run_pipeline(app, pipeline_id, full=full, on_progress=progress)
    if as_json:
        print_json(run_document(finished))
    else:
        print_run(finished)
    if finished.status != "succeeded":
        sys.exit(1)


def _lines(value: Any, prefix: str = "", width: int = 48) -> list[str]:
    """Flatten nested values into `path: value` lines for side-by-side display."""
    if isinstance(value, dict) and value:
        return [line for k, v in value.items() for line in _lines(v, f"{prefix}{k}.", width)]
    text = json.dumps(value, ensure_ascii=False, default=str)
    text = text if len(text) <= width else text[: width - 1] + "…"
    return [f"{prefix.rstrip('.')}: {text}"]


PREVIEW_INPUT = ("id", "email", "name", "phone", "address", "created", "metadata")


@pipelines.command("preview")
@click.argument("pipeline_id", required=False)
@click.option("--connection", "connection_id", help="Preview an unsaved definition on it.")
@click.option("--mapping", type=FILE)
@click.option("--suggested-mapping", is_flag=True)
@click.option("--javascript", type=FILE)
@click.option("--python", type=FILE)
@click.option("--filter", "filter_file", type=FILE)
@click.option("--limit", default=20, show_default=True)
@json_option
@handle_errors
def preview(
    pipeline_id: str | None,
    connection_id: str | None,
    mapping: Path | None,
    suggested_mapping: bool,
    javascript: Path | None,
    python: Path | None,
    filter_file: Path | None,
    limit: int,
    as_json: bool,
) -> None:
    """Run a pipeline's definition (or an unsaved one) on live sample customers."""
    if not pipeline_id and not connection_id:
        raise InvalidInput("give a PIPELINE_ID, or --connection with a definition")
    with opened_app() as app:
        spec = transformation_from(app, mapping, suggested_mapping, javascript, python)
        if spec is None and not pipeline_id:
            spec = suggested_transformation(app.model())
        result = preview_service.preview(
            app,
            pipeline_id=pipeline_id,
            connection_id=connection_id,
            transformation=spec,
            filter=_json_file(filter_file, "--filter") if filter_file else None,
            limit=limit,
        )
    if as_json:
        print_json(result.as_dict())
        return
    rows = []
    for s in result.samples:
        shown_in = {k: s.input.get(k) for k in PREVIEW_INPUT if s.input.get(k) is not None}
        shown_out = _lines(s.output) if s.output is not None else []
        if s.status != "ok":
            shown_out.insert(0, f"{s.status.upper()} ({s.step or '-'}): {s.error or ''}")
        rows.append([s.source_id, "\n".join(_lines(shown_in)), "\n".join(shown_out)])
    table(["customer", "Stripe (input)", "Customer Model (output)"], rows)
    out.print(
        f"{len(result.samples)} shown · scanned {result.scanned} · filtered out "
        f"{result.filtered_out}",
        highlight=False,
    )
    for line in result.logs:
        out.print(f"[dim]log:[/dim] {line}", highlight=False)
