"""`headwater pipelines validate`: what ``POST /validate`` answers, from files.

Every problem of each part given is listed with where it is (``filter.conditions[1]``,
``mapping.email`` with the line and column in its expression, ``transformation`` with
the line of a code error), by the service the API and the console's editor call.
Nothing is saved; the exit code is 0 when all is well, 1 when something is wrong.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from headwater.entrypoints.cli.files import FILE, json_file, text_file
from headwater.entrypoints.cli.output import handle_errors, json_option, opened_app, print_json, say
from headwater.kernel.errors import Problem
from headwater.services.pipelines.definition import validate_definition


def _given(
    filter_file: Path | None, mapping: Path | None, javascript: Path | None, python: Path | None
) -> dict[str, Any]:
    given: dict[str, Any] = {}
    if filter_file is not None:
        given["filter"] = json_file(filter_file, "--filter")
    if mapping is not None:
        given["mapping"] = json_file(mapping, "--mapping")
    if javascript is not None and python is not None:
        raise click.UsageError("give --javascript or --python, not both")
    for kind, path in (("javascript", javascript), ("python", python)):
        if path is not None:
            given["transformation"] = {"kind": kind, "source": text_file(path, f"--{kind}")}
    if not given:
        raise click.UsageError("give --filter, --mapping, --javascript or --python")
    return given


def _document(problems: list[Problem]) -> dict[str, Any]:
    """The answer of ``POST /validate``."""
    errors = [
        {"field": p.location, "message": p.message, "line": p.line, "column": p.column}
        for p in problems
    ]
    return {"valid": not errors, "errors": errors}


@click.command("validate")
@click.option("--filter", "filter_file", type=FILE, help="Filter JSON to check.")
@click.option("--mapping", type=FILE, help="Mapping JSON {property: expression} to check.")
@click.option("--javascript", type=FILE, help="A .js file defining transform() to check.")
@click.option("--python", type=FILE, help="A .py file defining transform() to check.")
@json_option
@handle_errors
def validate(
    filter_file: Path | None,
    mapping: Path | None,
    javascript: Path | None,
    python: Path | None,
    as_json: bool,
) -> None:
    """Check a filter, a mapping or transformation code against the Customer Model,
    without saving anything: every problem, each located. Exit code 1 when any."""
    given = _given(filter_file, mapping, javascript, python)
    with opened_app() as app:
        doc = _document(validate_definition(app.model(), **given))
    if as_json:
        print_json(doc)
    elif doc["valid"]:
        say("No problem found in ", ", ".join(sorted(given)))
    else:
        for error in doc["errors"]:
            where = error["field"] or "definition"
            if error["line"] is not None:  # a code error has a line, no column
                column = f", column {error['column']}" if error["column"] is not None else ""
                where += f" (line {error['line']}{column})"
            say((where, "bold"), f": {error['message']}")
    if not doc["valid"]:
        raise SystemExit(1)
