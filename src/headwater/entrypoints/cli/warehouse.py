"""`headwater warehouse ...`"""

from __future__ import annotations

import click

from headwater.entrypoints.cli.output import (
    handle_errors,
    json_option,
    opened_app,
    print_json,
    say,
    show_document,
)
from headwater.services.warehouse import describe, set_url


@click.group("warehouse")
def warehouse() -> None:
    """Show or change where customers land."""


@warehouse.command("show")
@json_option
@handle_errors
def show(as_json: bool) -> None:
    """Show the warehouse URL and what it holds."""
    with opened_app() as app:
        doc = describe(app)
    show_document(doc, as_json)


@warehouse.command("set")
@click.argument("url")
@json_option
@handle_errors
def set_(url: str, as_json: bool) -> None:
    """Use URL (duckdb:///path.duckdb or postgresql://...); tested before it is saved."""
    with opened_app() as app:
        set_url(app, url)
        doc = describe(app)
    if as_json:
        print_json(doc)
    else:
        say(f"Warehouse set to {doc['url']}")
