"""`headwater users`, `tokens`, `workspaces`: one-time tokens, stdin passwords, scoping."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from click.testing import CliRunner, Result

from headwater.adapters.store.auth_tables import api_tokens, users
from headwater.entrypoints.cli.commands import cli
from headwater.entrypoints.environment import settings_from_env
from headwater.services.app import App
from headwater.services.auth import sessions, tokens


def invoke(*args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), input=stdin, catch_exceptions=False)


def doc(*args: str, stdin: str | None = None) -> Any:
    result = invoke(*args, "--json", stdin=stdin)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _rows(table: sa.Table) -> list[dict[str, Any]]:
    app = App.open(settings_from_env())
    try:
        with app.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(sa.select(table))]
    finally:
        app.close()


def test_a_user_added_with_a_password_on_stdin_can_sign_in(home: Path) -> None:
    user = doc("users", "add", "Ada@Example.com", "--password-stdin", stdin="correct horse\n")
    assert user["email"] == "Ada@Example.com"
    assert user["workspace_id"] == "ws_default"
    [row] = _rows(users)
    assert "correct horse" not in repr(row)
    app = App.open(settings_from_env())
    try:
        _, session = sessions.sign_in(app, "ada@example.com", "correct horse", address="cli")
    finally:
        app.close()
    assert session.user_id == user["id"]
    again = invoke("users", "add", "ada@example.com", "--password-stdin", stdin="another one\n")
    assert again.exit_code == 1
    assert "already exists" in again.stderr
    short = invoke("users", "add", "bob@example.com", "--password-stdin", stdin="short\n")
    assert short.exit_code == 1
    assert "--password-stdin: must be at least 8 characters" in short.stderr
    assert len(_rows(users)) == 1


def test_a_token_is_printed_once_and_only_its_prefix_is_listed(home: Path) -> None:
    created = doc("tokens", "create", "--name", "ci")
    assert set(created) == {"id", "token"}
    raw = created["token"]
    listed = doc("tokens", "list")
    assert [t["id"] for t in listed] == [created["id"]]
    assert raw.startswith(listed[0]["prefix"])
    text = invoke("tokens", "list").stdout
    assert listed[0]["prefix"] in text
    assert raw not in text
    assert raw not in json.dumps(listed)
    assert raw not in repr(_rows(api_tokens))
    app = App.open(settings_from_env())
    try:
        assert tokens.principal_for_token(app, raw) is not None
        revoked = doc("tokens", "revoke", created["id"])
        assert revoked["revoked_at"] is not None
        assert tokens.principal_for_token(app, raw) is None
    finally:
        app.close()
    plain = invoke("tokens", "create", "--name", "shown")
    assert plain.exit_code == 0
    assert plain.stdout.strip().splitlines()[-1].startswith("hw_")


def test_workspaces_scope_users_and_tokens(home: Path) -> None:
    acme = doc("workspaces", "add", "Acme")
    assert acme["id"].startswith("ws_")
    assert [w["name"] for w in doc("workspaces", "list")] == ["default", "Acme"]
    duplicate = invoke("workspaces", "add", "Acme")
    assert duplicate.exit_code == 1
    assert "already exists" in duplicate.stderr
    theirs = doc("tokens", "create", "--name", "acme ci", "--workspace", acme["id"])
    assert doc("tokens", "list") == []
    assert [t["id"] for t in doc("tokens", "list", "--workspace", acme["id"])] == [theirs["id"]]
    missing = invoke("tokens", "revoke", theirs["id"])
    assert missing.exit_code == 1
    assert "no token" in missing.stderr
    nowhere = invoke("tokens", "create", "--name", "x", "--workspace", "ws_nope")
    assert nowhere.exit_code == 1
    assert "no workspace" in nowhere.stderr
    bob = doc("users", "add", "bob@example.com", "--password-stdin", "--workspace", acme["id"],
              stdin="correct horse\n")  # fmt: skip
    assert bob["workspace_id"] == acme["id"]
    joined = invoke("users", "join", "bob@example.com")
    assert joined.exit_code == 0, joined.output
    assert "Invited bob@example.com to workspace ws_default" in joined.stdout
    # An invitation, not a membership: Bob is a member of Acme alone until he accepts.
    [invitation] = doc("users", "invitations")
    assert (invitation["email"], invitation["status"]) == ("bob@example.com", "pending")
    assert doc("users", "invitations", "--workspace", acme["id"]) == []
    listed = invoke("users", "invitations")
    assert "bob@example.com" in listed.stdout
    assert "pending" in listed.stdout
    assert [m["email"] for m in doc("users", "list", "--workspace", acme["id"])] == [
        "bob@example.com"
    ]
    assert "bob@example.com" not in invoke("users", "list").stdout
    gone = doc("users", "revoke-invitation", invitation["id"])
    assert gone["status"] == "revoked"
    elsewhere = invoke("users", "revoke-invitation", invitation["id"], "--workspace", acme["id"])
    assert elsewhere.exit_code == 1
    assert "no invitation" in elsewhere.stderr


def test_every_command_can_act_on_another_workspace(home: Path) -> None:
    acme = doc("workspaces", "add", "Acme")["id"]
    added = doc("--workspace", acme, "model", "add-property", "plan", "string")
    assert "plan" in json.dumps(added)
    assert "plan" in json.dumps(doc("--workspace", acme, "model", "show"))
    assert "plan" not in json.dumps(doc("model", "show"))
    warehouse = doc("--workspace", acme, "warehouse", "show")
    assert warehouse["url"].endswith(f"/warehouses/{acme}.duckdb")
    assert doc("warehouse", "show")["url"].endswith("/warehouse.duckdb")
    theirs = doc("--workspace", acme, "tokens", "create", "--name", "acme")
    assert [t["id"] for t in doc("--workspace", acme, "tokens", "list")] == [theirs["id"]]
    nowhere = invoke("--workspace", "ws_nope", "connections", "list")
    assert nowhere.exit_code == 1
    assert "no workspace with id 'ws_nope'" in nowhere.stderr
