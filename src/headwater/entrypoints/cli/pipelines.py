"""`headwater pipelines ...`: the group and the commands that manage pipelines (add,
update, list, show, enable, disable, delete), with the definition files' readers they
share; `preview`, `run` and `validate` have their own modules and join the group in
`commands`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from headwater.entrypoints.cli.files import FILE, json_file, text_file
from headwater.entrypoints.cli.output import (
    confirm,
    handle_errors,
    json_option,
    opened_app,
    print_json,
    say,
    table,
    warn,
)
from headwater.kernel.entities import SCHEDULES
from headwater.services.pipelines import manage, saving
from headwater.services.pipelines.documents import (
    pipeline_document,
    pipeline_documents,
)


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
    """The transformation the options give (the service enforces "at most one")."""
    return manage.choose_transformation(
        app.model(),
        mapping=json_file(mapping, "--mapping") if mapping else None,
        suggested=suggested,
        javascript=text_file(javascript, "--javascript") if javascript else None,
        python=text_file(python, "--python") if python else None,
    )


def _print_saved(verb: str, saved: saving.Saved) -> None:
    say(f"{verb} pipeline ", (saved.pipeline.id, "bold"), f" ({saved.pipeline.name})")
    for warning in saved.warnings:
        warn(warning)


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
        saved = saving.save_new(
            app,
            connection_id,
            name,
            transformation_from(app, mapping, suggested_mapping, javascript, python),
            description=description or "",
            filter=json_file(filter_file, "--filter") if filter_file else None,
            schedule=schedule,
            incremental=incremental,
            enabled=not disabled,
        )
        doc = pipeline_document(app, saved.pipeline) | {"save_warnings": saved.warnings}
    if as_json:
        print_json(doc)
    else:
        _print_saved("Added", saved)


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
    given = (name, description, mapping, javascript, python, filter_file, schedule, incremental)
    if all(v is None for v in given) and not (suggested_mapping or clear_filter):
        raise click.UsageError("give what to change (the options of --help)")
    with opened_app() as app:
        changes = manage.PipelineChanges(
            name=name,
            description=description,
            schedule=schedule,
            incremental=incremental,
            filter=json_file(filter_file, "--filter") if filter_file else None,
            clear_filter=clear_filter,
            transformation=transformation_from(app, mapping, suggested_mapping, javascript, python),
        )
        saved = saving.save_changes(app, pipeline_id, changes)
        doc = pipeline_document(app, saved.pipeline) | {"save_warnings": saved.warnings}
    if as_json:
        print_json(doc)
    else:
        _print_saved("Updated", saved)


@pipelines.command("list")
@click.option("--connection", "connection_id")
@json_option
@handle_errors
def list_(connection_id: str | None, as_json: bool) -> None:
    """List pipelines."""
    with opened_app() as app:
        docs = pipeline_documents(app, manage.list_pipelines(app, connection_id))
    if as_json:
        print_json(docs)
        return
    table(
        ["id", "name", "connection", "schedule", "next run at", "transformation", "last run"],
        [
            [
                d["id"],
                d["name"],
                d["connection_id"],
                _schedule_text(d),
                _next_run_at_text(d),
                d["transformation"]["kind"],
                _last_run_text(d["last_run"]),
            ]
            for d in docs
        ],
        ids=("id", "connection"),
    )


def _schedule_text(doc: dict[str, Any]) -> str:
    mode = "incremental" if doc["incremental"] else "full"
    return f"{doc['schedule']}, {mode}" + ("" if doc["enabled"] else ", disabled")


def _next_run_at_text(doc: dict[str, Any]) -> str:
    when = doc["next_run_at"]
    if when is not None:
        return f"{when:%Y-%m-%d %H:%M:%S} UTC"
    return "never (disabled)" if not doc["enabled"] else "when asked (no schedule)"


def _last_run_text(last: dict[str, Any] | None) -> str:
    return f"{last['status']} ({last['kind']}) {last['id']}" if last else "never run"


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
    rows: list[tuple[str, Any]] = [
        ("id", doc["id"]),
        ("name", doc["name"]),
        ("description", doc["description"]),
        ("connection", doc["connection_id"]),
        ("enabled", "yes" if doc["enabled"] else "no"),
        ("schedule", doc["schedule"]),
        ("next run at", _next_run_at_text(doc)),
        ("incremental", "yes" if doc["incremental"] else "no"),
        ("filter", doc["filter_text"] or "everyone"),
        ("next run", doc["next_run_kind"]),
        ("last run", _last_run_text(doc["last_run"])),
        ("state", json.dumps(doc["state"], default=str, ensure_ascii=False)),
        ("transformation", json.dumps(doc["transformation"], indent=2, ensure_ascii=False)),
    ]
    for key, value in rows:
        say(f"{key:>14}: ", value)
    for warning in doc["warnings"]:
        warn(warning)


def _toggle(pipeline_id: str, enabled: bool, as_json: bool) -> None:
    with opened_app() as app:
        pipeline = manage.update(app, pipeline_id, manage.PipelineChanges(enabled=enabled))
        doc = pipeline_document(app, pipeline)
    if as_json:  # the API's answer to POST /pipelines/{id}/enable|disable
        print_json(doc)
    else:
        say(f"Pipeline {pipeline_id} {'enabled' if enabled else 'disabled'}")


@pipelines.command("enable")
@click.argument("pipeline_id")
@json_option
@handle_errors
def enable(pipeline_id: str, as_json: bool) -> None:
    """Enable a pipeline."""
    _toggle(pipeline_id, True, as_json)


@pipelines.command("disable")
@click.argument("pipeline_id")
@json_option
@handle_errors
def disable(pipeline_id: str, as_json: bool) -> None:
    """Disable a pipeline: it never runs, scheduled or not."""
    _toggle(pipeline_id, False, as_json)


@pipelines.command("delete")
@click.argument("pipeline_id")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@json_option
@handle_errors
def delete(pipeline_id: str, yes: bool, as_json: bool) -> None:
    """Delete a pipeline, its runs and the customers it imported.

    A queued run of it is cancelled first; while one is running it is refused."""
    confirm(f"Delete {pipeline_id} and the customers it imported?", yes)
    with opened_app() as app:
        removed = manage.delete(app, pipeline_id)
    if as_json:  # the API's answer to DELETE /pipelines/{id}
        print_json({"id": pipeline_id, "deleted": True, "identities_removed": removed})
    else:
        say(f"Deleted pipeline {pipeline_id} and {removed:,} imported customers")
