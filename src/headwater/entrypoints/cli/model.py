"""`headwater model ...`"""

from __future__ import annotations

from typing import Any

import click

from headwater.entrypoints.cli.output import (
    confirm,
    handle_errors,
    json_option,
    opened_app,
    print_json,
    say,
)
from headwater.kernel.model import CustomerModel, PropertyType
from headwater.services import model as model_service


def _rows(props: list[dict[str, Any]], prefix: str = "") -> list[list[str]]:
    rows = []
    for p in props:
        rows.append([prefix + p["name"], p["type"], p.get("description", "")])
        rows.extend(_rows(p.get("properties", []), prefix + p["name"] + "."))
    return rows


def _show(model: CustomerModel, as_json: bool) -> None:
    if as_json:
        print_json({"properties": model.as_list()})
        return
    for path, ptype, description in _rows(model.as_list()):
        say(f"{path:<28} {ptype:<9} {description}")


@click.group("model")
def model() -> None:
    """Show and edit the workspace's Customer Model."""


@model.command("show")
@json_option
@handle_errors
def show(as_json: bool) -> None:
    """Show the Customer Model."""
    with opened_app() as app:
        _show(app.model(), as_json)


@model.command("add-property")
@click.argument("path")
@click.argument("type", type=click.Choice([t.value for t in PropertyType]))
@click.option("--description", default="")
@json_option
@handle_errors
def add_property(path: str, type: str, description: str, as_json: bool) -> None:
    """Add PATH (e.g. `plan` or `address.region`) of TYPE; alters the warehouse too."""
    with opened_app() as app:
        _show(model_service.add(app, path, type, description), as_json)


@model.command("rename-property")
@click.argument("path")
@click.argument("new_name")
@json_option
@handle_errors
def rename_property(path: str, new_name: str, as_json: bool) -> None:
    """Rename the property at PATH to NEW_NAME (its columns are renamed, data kept)."""
    with opened_app() as app:
        _show(model_service.rename(app, path, new_name), as_json)


@model.command("drop-property")
@click.argument("path")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@json_option
@handle_errors
def drop_property(path: str, yes: bool, as_json: bool) -> None:
    """Drop the property at PATH and its warehouse columns."""
    confirm(f"Drop {path} and its data from the warehouse?", yes)
    with opened_app() as app:
        _show(model_service.drop(app, path), as_json)
