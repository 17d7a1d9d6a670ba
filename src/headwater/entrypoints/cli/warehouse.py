"""`headwater warehouse ...`"""

from __future__ import annotations

import os

import click

from headwater.entrypoints.cli.output import (
    handle_errors,
    json_option,
    opened_app,
    print_json,
    say,
    show_document,
)
from headwater.kernel.errors import InvalidInput
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
@click.argument("url", required=False)
@click.option(
    "--url-env",
    metavar="VAR",
    help="Read the URL from this environment variable: a password in it stays out of "
    "the process list and the shell's history.",
)
@json_option
@handle_errors
def set_(url: str | None, url_env: str | None, as_json: bool) -> None:
    """Use URL (duckdb:///path.duckdb or postgresql://...); tested before it is saved."""
    if (url is None) == (url_env is None):
        raise click.UsageError("give the URL or --url-env VAR (one of them)")
    if url_env is not None:
        url = os.environ.get(url_env) or ""
        if not url:
            raise InvalidInput(f"environment variable {url_env} is not set", "--url-env")
    assert url is not None
    with opened_app() as app:
        set_url(app, url)
        doc = describe(app)
    if as_json:
        print_json(doc)
    else:
        say(f"Warehouse set to {doc['url']}")
