"""`headwater users ...`, `headwater tokens ...`, `headwater workspaces ...`

Every command acts on the default workspace unless `--workspace ID` names another.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click

from headwater.entrypoints.cli.output import (
    ask_hidden,
    handle_errors,
    json_option,
    opened_app,
    print_json,
    say,
    show_document,
    table,
)
from headwater.kernel.accounts import ApiToken
from headwater.kernel.errors import InvalidInput
from headwater.services.app import App
from headwater.services.auth import invitations as invitation_service
from headwater.services.auth import tokens as token_service
from headwater.services.auth import users as user_service
from headwater.services.auth import workspaces as workspace_service

workspace_option = click.option(
    "--workspace",
    "workspace_id",
    metavar="ID",
    default=None,
    help="The workspace to act on (default: `headwater --workspace`, else the default one).",
)


@contextmanager
def workspace_app(workspace_id: str | None) -> Iterator[App]:
    """The app of workspace `workspace_id`, else of ``headwater --workspace ID``, else
    of the default workspace."""
    with opened_app() as app:
        yield app if workspace_id is None else app.in_workspace(workspace_id)


def _read_password(from_stdin: bool) -> str:
    """The password, asked at the terminal (twice), or the first line of stdin."""
    if not from_stdin:
        if not sys.stdin.isatty():  # Python would read it with a warning that it echoes
            raise InvalidInput(
                "no terminal to ask for the password: give it on stdin with --password-stdin",
                "--password-stdin",
            )
        return ask_hidden("Password", "password", "password", twice=True)
    text = sys.stdin.readline()
    if not text:
        raise InvalidInput("no password on standard input", "password")
    return text.removesuffix("\n").removesuffix("\r")


@click.group("users")
def users() -> None:
    """Add users who sign in to the console and the API; invite them to workspaces."""


@users.command("add")
@click.argument("email")
@click.option(
    "--password-stdin", is_flag=True, help="Read the password from the first line of stdin."
)
@workspace_option
@json_option
@handle_errors
def add_user(email: str, password_stdin: bool, workspace_id: str | None, as_json: bool) -> None:
    """Add a user with EMAIL, a member of the workspace. The password (at least 8
    characters) is asked for at the terminal, or read from stdin with --password-stdin."""
    password = _read_password(password_stdin)
    with workspace_app(workspace_id) as app:
        user = user_service.add_user(app, email, password)
        doc = {**user.public(), "workspace_id": app.workspace_id}
    if as_json:
        print_json(doc)
    else:
        say("Added user ", (user.email, "bold"), f" ({user.id}) to workspace {doc['workspace_id']}")


@users.command("list")
@workspace_option
@json_option
@handle_errors
def list_members(workspace_id: str | None, as_json: bool) -> None:
    """List the workspace's members, oldest membership first."""
    with workspace_app(workspace_id) as app:
        docs = workspace_service.members(app)
    if as_json:
        print_json(docs)
        return
    table(["id", "email", "member since"], [[d["id"], d["email"], d["member_since"]] for d in docs])


def _invite(email: str, workspace_id: str | None, as_json: bool) -> None:
    with workspace_app(workspace_id) as app:
        doc = invitation_service.documents(app, [invitation_service.invite(app, email)])[0]
    if as_json:
        print_json(doc)
    else:
        say(
            f"Invited {doc['email']} to workspace {doc['workspace_id']} ({doc['id']}, "
            f"until {doc['expires_at']}): a member once they accept, signed in"
        )


@users.command("invite")
@click.argument("email")
@workspace_option
@json_option
@handle_errors
def invite(email: str, workspace_id: str | None, as_json: bool) -> None:
    """Invite EMAIL to the workspace. Whoever has that email becomes a member only when
    they accept, signed in (console or API), within 7 days."""
    _invite(email, workspace_id, as_json)


@users.command("join")
@click.argument("email")
@workspace_option
@json_option
@handle_errors
def join(email: str, workspace_id: str | None, as_json: bool) -> None:
    """`users invite` under its former name: an invitation, not a membership."""
    _invite(email, workspace_id, as_json)


@users.command("invitations")
@workspace_option
@json_option
@handle_errors
def list_invitations(workspace_id: str | None, as_json: bool) -> None:
    """List the workspace's invitations, newest first, with their state."""
    with workspace_app(workspace_id) as app:
        found, more = invitation_service.list_invitations(app)
        while more:
            page, more = invitation_service.list_invitations(app, starting_after=found[-1].id)
            found.extend(page)
        docs = invitation_service.documents(app, found)
    if as_json:
        print_json(docs)
        return
    table(
        ["id", "email", "status", "invited by", "expires"],
        [
            [d["id"], d["email"], d["status"], d["invited_by"] or "—", d["expires_at"][:16]]
            for d in docs
        ],
    )


@users.command("revoke-invitation")
@click.argument("invitation_id")
@workspace_option
@json_option
@handle_errors
def revoke_invitation(invitation_id: str, workspace_id: str | None, as_json: bool) -> None:
    """Withdraw the pending invitation INVITATION_ID: it can no longer be accepted."""
    with workspace_app(workspace_id) as app:
        invitation = invitation_service.revoke(app, invitation_id)
        doc = invitation_service.documents(app, [invitation])[0]
    if as_json:
        print_json(doc)
    else:
        say(f"Revoked the invitation {doc['id']} of {doc['email']}")


@click.group("tokens")
def tokens() -> None:
    """API tokens (`Authorization: Bearer hw_…`): create, list, show, revoke."""


@tokens.command("create")
@click.option("--name", required=True, help="What the token is for, shown in lists.")
@workspace_option
@json_option
@handle_errors
def create_token(name: str, workspace_id: str | None, as_json: bool) -> None:
    """Create a token of the workspace. It is printed this once; only a digest is kept."""
    with workspace_app(workspace_id) as app:
        raw, token = token_service.create_token(app, name)
    if as_json:
        print_json({"id": token.id, "token": raw})
        return
    say("Created token ", (token.id, "bold"), f" ({token.name}) of workspace {token.workspace_id}.")
    say("Copy it now, it is not shown again:")
    click.echo(raw)


def _all_tokens(app: App) -> list[ApiToken]:
    found, more = token_service.list_tokens(app)
    while more:
        page, more = token_service.list_tokens(app, starting_after=found[-1].id)
        found.extend(page)
    return found


def _token_row(doc: dict[str, Any]) -> list[str]:
    used, revoked = doc["last_used_at"] or "never", doc["revoked_at"] or "no"
    return [doc["id"], doc["name"], f"{doc['prefix']}…", doc["created_at"], used, revoked]


@tokens.command("list")
@workspace_option
@json_option
@handle_errors
def list_tokens(workspace_id: str | None, as_json: bool) -> None:
    """List the workspace's tokens, newest first (names and prefixes, never the tokens)."""
    with workspace_app(workspace_id) as app:
        docs = [t.public() for t in _all_tokens(app)]
    if as_json:
        print_json(docs)
        return
    table(
        ["id", "name", "prefix", "created", "last used", "revoked"],
        [_token_row(d) for d in docs],
    )


@tokens.command("show")
@click.argument("token_id")
@workspace_option
@json_option
@handle_errors
def show_token(token_id: str, workspace_id: str | None, as_json: bool) -> None:
    """Show the token TOKEN_ID (its name and prefix, never the token)."""
    with workspace_app(workspace_id) as app:
        doc = token_service.get_token(app, token_id).public()
    show_document(doc, as_json)


@tokens.command("revoke")
@click.argument("token_id")
@workspace_option
@json_option
@handle_errors
def revoke_token(token_id: str, workspace_id: str | None, as_json: bool) -> None:
    """Revoke the token TOKEN_ID: a running `headwater serve` refuses it within
    seconds (it trusts a token it checked for 2 s)."""
    with workspace_app(workspace_id) as app:
        token = token_service.revoke_token(app, token_id)
    if as_json:
        print_json(token.public())
    else:
        say(f"Revoked token {token.id} ({token.name})")


@click.group("workspaces")
def workspaces() -> None:
    """Workspaces: each with its own Customer Model, warehouse, connections and pipelines."""


@workspaces.command("add")
@click.argument("name")
@json_option
@handle_errors
def add_workspace(name: str, as_json: bool) -> None:
    """Add a workspace called NAME (its warehouse: a DuckDB file of its own until set)."""
    with opened_app() as app:
        workspace = workspace_service.add_workspace(app, name)
    doc = workspace_service.document(workspace)
    if as_json:
        print_json(doc)
    else:
        say("Added workspace ", (workspace.id, "bold"), f" ({workspace.name})")


@workspaces.command("show")
@click.argument("workspace_id")
@json_option
@handle_errors
def show_workspace(workspace_id: str, as_json: bool) -> None:
    """Show the workspace WORKSPACE_ID."""
    with opened_app() as app:
        doc = workspace_service.document(workspace_service.get_workspace(app, workspace_id))
    show_document(doc, as_json)


@workspaces.command("list")
@json_option
@handle_errors
def list_workspaces(as_json: bool) -> None:
    """List every workspace, oldest first."""
    with opened_app() as app:
        docs = [workspace_service.document(w) for w in workspace_service.list_workspaces(app)]
    if as_json:
        print_json(docs)
        return
    table(["id", "name", "created"], [[d["id"], d["name"], d["created_at"]] for d in docs])
