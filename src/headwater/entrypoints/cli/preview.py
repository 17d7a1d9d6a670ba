"""`headwater pipelines preview`: a pipeline's definition, or an unsaved one, run on
live sample customers, input and output side by side (registered on the `pipelines`
group by `commands`, as `run` and `validate` are)."""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import click

from headwater.entrypoints.cli.files import FILE, json_file
from headwater.entrypoints.cli.output import (
    handle_errors,
    json_option,
    opened_app,
    print_json,
    say,
    shown,
    table,
)
from headwater.entrypoints.cli.pipelines import transformation_from
from headwater.services.pipelines import preview as preview_service


def _lines(value: Any, prefix: str = "", width: int = 48) -> list[str]:
    """Flatten nested values into `path: value` lines for side-by-side display, each
    value as its JSON document spells it (a datetime in ISO 8601, a decimal as text)."""
    if isinstance(value, dict) and value:
        return [line for k, v in value.items() for line in _lines(v, f"{prefix}{k}.", width)]
    if isinstance(value, datetime | date | Decimal):
        value = shown(value)  # a JSON string, as in the --json document
    text = json.dumps(value, ensure_ascii=False, default=str)
    text = text if len(text) <= width else text[: width - 1] + "…"
    return [f"{prefix.rstrip('.')}: {text}"]


PREVIEW_INPUT = ("id", "email", "name", "phone", "address", "created", "metadata")


@click.command("preview")
@click.argument("pipeline_id", required=False)
@click.option("--connection", "connection_id", help="Preview an unsaved definition on it.")
@click.option("--mapping", type=FILE)
@click.option("--suggested-mapping", is_flag=True)
@click.option("--javascript", type=FILE)
@click.option("--python", type=FILE)
@click.option("--filter", "filter_file", type=FILE)
@click.option(
    "--limit",
    default=20,
    show_default=True,
    type=click.IntRange(1, preview_service.MOST_SAMPLES),
    help="How many sample customers to show.",
)
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
        raise click.UsageError("give a PIPELINE_ID, or --connection with a definition")
    with opened_app() as app:
        result = preview_service.preview(
            app,
            pipeline_id=pipeline_id,
            connection_id=connection_id,
            transformation=transformation_from(app, mapping, suggested_mapping, javascript, python),
            filter=json_file(filter_file, "--filter") if filter_file else None,
            limit=limit,
        )
    if as_json:
        print_json(result.as_dict())
        return
    rows = []
    for s in result.samples:
        shown_in = {k: s.input.get(k) for k in PREVIEW_INPUT if s.input.get(k) is not None}
        # The row a run would write; its null columns are left out, as the input's are.
        row = {k: v for k, v in (s.output or {}).items() if v is not None}
        shown_out = _lines(row) if row else ["(every column null)"] if s.output else []
        if s.status != "ok":
            shown_out.insert(0, f"{s.status.upper()} ({s.step or '-'}): {s.error or ''}")
        rows.append([s.source_id, "\n".join(_lines(shown_in)), "\n".join(shown_out)])
    table(["customer", "Stripe (input)", "Warehouse row (output)"], rows, ids=("customer",))
    say(
        f"{len(result.samples)} shown · scanned {result.scanned} · filtered out "
        f"{result.filtered_out}"
    )
    for line in result.logs:
        say(("log:", "dim"), " ", line)
