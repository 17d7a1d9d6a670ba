"""`headwater connections ...`"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from headwater.entrypoints.cli.files import text_file
from headwater.entrypoints.cli.output import (
    ask_hidden,
    handle_errors,
    json_option,
    opened_app,
    print_json,
    say,
    show_document,
    table,
    warn,
)
from headwater.kernel.errors import InvalidInput
from headwater.services import connections as connection_service
from headwater.services.webhooks import endpoints as webhook_service


@click.group("connections")
def connections() -> None:
    """Manage source connections (Stripe accounts)."""


#: Far more than any Stripe key (about 110 characters).
MAX_KEY_CHARS = 4096


def read_key(api_key_env: str | None, api_key_file: Path | None) -> str:
    """The key comes from an env var, a file, a prompt, or stdin — never an argument."""
    if api_key_env:
        key = os.environ.get(api_key_env)
        if not key:
            raise InvalidInput(f"environment variable {api_key_env} is not set", "--api-key-env")
        return key
    if api_key_file:
        return text_file(api_key_file, "--api-key-file").strip()
    if sys.stdin.isatty():
        return ask_hidden("Stripe API key", "api_key", "API key")
    line = sys.stdin.readline(MAX_KEY_CHARS + 1)  # an endless stream is not read whole
    if len(line.rstrip("\r\n")) > MAX_KEY_CHARS:
        raise InvalidInput(
            f"the key read from stdin is longer than {MAX_KEY_CHARS} characters", "api_key"
        )
    return line.strip()


_KEY_ENV = click.option(
    "--api-key-env", metavar="VAR", help="Read the key from this environment variable."
)
_KEY_FILE = click.option(
    "--api-key-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Read the key from this file.",
)


@connections.group("add")
def add() -> None:
    """Add a connection."""


@add.command("stripe")
@click.option("--name", required=True, help="A name for this connection.")
@_KEY_ENV
@_KEY_FILE
@click.option("--base-url", default=connection_service.STRIPE_API, show_default=True)
@click.option("--requests-per-second", type=float, default=20.0, show_default=True)
@json_option
@handle_errors
def add_stripe(
    name: str,
    api_key_env: str | None,
    api_key_file: Path | None,
    base_url: str,
    requests_per_second: float,
    as_json: bool,
) -> None:
    """Add a Stripe connection; the key is verified with Stripe before it is saved."""
    key = read_key(api_key_env, api_key_file)
    with opened_app() as app:
        conn = connection_service.add_stripe(app, name, key, base_url, requests_per_second)
    if as_json:
        print_json(conn.public())
        return
    say("Added connection ", (conn.id, "bold"), f" ({conn.name}, key {conn.api_key_masked})")
    if not conn.events_read:
        warn(
            "the key lacks Events: Read; incremental runs will not see updates or deletions "
            "until you add it."
        )


@connections.command("list")
@json_option
@handle_errors
def list_(as_json: bool) -> None:
    """List connections."""
    with opened_app() as app:
        items = [c.public() for c in connection_service.list_connections(app)]
    if as_json:
        print_json(items)
        return
    table(
        ["id", "name", "base url", "key", "req/s", "events read"],
        [
            [
                c["id"],
                c["name"],
                c["base_url"],
                c["api_key"],
                c["requests_per_second"],
                c["permissions"]["events_read"],
            ]
            for c in items
        ],
        ids=("id", "key"),
    )


@connections.command("show")
@click.argument("connection_id")
@json_option
@handle_errors
def show(connection_id: str, as_json: bool) -> None:
    """Show one connection (the key only masked)."""
    with opened_app() as app:
        doc = connection_service.get_connection(app, connection_id).public()
    show_document(doc, as_json)


@connections.command("rotate-key")
@click.argument("connection_id")
@_KEY_ENV
@_KEY_FILE
@json_option
@handle_errors
def rotate_key(
    connection_id: str, api_key_env: str | None, api_key_file: Path | None, as_json: bool
) -> None:
    """Replace a connection's key. The new key (from --api-key-env, --api-key-file, a
    prompt or stdin; never an argument) is verified with Stripe first: on any error the
    old key stays."""
    key = read_key(api_key_env, api_key_file)
    with opened_app() as app:
        conn = connection_service.rotate_key(app, connection_id, key)
    if as_json:
        print_json(conn.public())
        return
    say("Rotated the key of ", (conn.id, "bold"), f": now {conn.api_key_masked}")
    if not conn.events_read:
        warn("the new key lacks Events: Read; incremental runs will not see updates or deletions.")


@connections.command("update")
@click.argument("connection_id")
@click.option("--name", help="A new name.")
@click.option(
    "--base-url",
    help="A new Stripe API URL, with the API key (--api-key-env, --api-key-file, a prompt "
    "or stdin), verified there: the saved key is never sent to a new URL.",
)
@click.option("--requests-per-second", type=float, help="A new request budget.")
@_KEY_ENV
@_KEY_FILE
@json_option
@handle_errors
def update(
    connection_id: str,
    name: str | None,
    base_url: str | None,
    requests_per_second: float | None,
    api_key_env: str | None,
    api_key_file: Path | None,
    as_json: bool,
) -> None:
    """Rename a connection, or change its Stripe API URL (with its key) or request budget
    (the options not given are kept; a new budget applies from a run's next request)."""
    if name is None and base_url is None and requests_per_second is None:
        raise click.UsageError("give --name, --base-url or --requests-per-second")
    with opened_app() as app:
        moves = base_url is not None and connection_service.moves_base_url(
            app, connection_id, base_url
        )
        # A key given without a new URL goes to the service too, which refuses it (it
        # changes nothing there: rotate-key replaces a key) rather than it being dropped.
        given = api_key_env is not None or api_key_file is not None
        api_key = read_key(api_key_env, api_key_file) if moves or given else None
        conn = connection_service.update_connection(
            app,
            connection_id,
            name=name,
            base_url=base_url,
            requests_per_second=requests_per_second,
            api_key=api_key,
        )
    show_document(conn.public(), as_json)


@connections.command("delete")
@click.argument("connection_id")
@json_option
@handle_errors
def delete(connection_id: str, as_json: bool) -> None:
    """Delete a connection that no pipeline uses, and its webhook endpoint at Stripe."""
    with opened_app() as app:
        left = connection_service.delete_connection(app, connection_id)
    if as_json:  # the API's answer to DELETE /connections/{id}
        print_json({"id": connection_id, "deleted": True, "warning": left})
        return
    say(f"Deleted connection {connection_id}")
    if left is not None:
        warn(left)


@connections.command("webhook")
@click.argument("connection_id")
@click.option(
    "--url",
    metavar="PUBLIC_BASE_URL",
    help="Register an endpoint with Stripe pointing at this public address of Headwater "
    "(with --secret-env: only recorded, to show it).",
)
@click.option(
    "--secret-env",
    metavar="VAR",
    help="Store the signing secret (whsec_…) of an endpoint made by hand, read from VAR.",
)
@click.option("--remove", is_flag=True, help="Delete the endpoint at Stripe and forget it.")
@json_option
@handle_errors
def webhook(
    connection_id: str, url: str | None, secret_env: str | None, remove: bool, as_json: bool
) -> None:
    """Show, register or remove a connection's Stripe webhook (near-real-time imports)."""
    if remove and (url or secret_env):
        raise InvalidInput("--remove takes no --url or --secret-env", "--remove")
    with opened_app() as app:
        if remove:
            doc = webhook_service.remove(app, connection_id).public()
        elif secret_env:
            secret = os.environ.get(secret_env)
            if not secret:
                raise InvalidInput(f"environment variable {secret_env} is not set", "--secret-env")
            doc = webhook_service.set_secret(app, connection_id, secret, url).public()
        elif url:
            doc = webhook_service.register(app, connection_id, url).public()
        else:
            doc = webhook_service.show(app, connection_id, at_stripe=True).public()
    if as_json:
        print_json(doc)
    elif remove:
        say(f"Removed the webhook of {connection_id}; deliveries are refused from now on")
    else:
        show_document(doc, False)
