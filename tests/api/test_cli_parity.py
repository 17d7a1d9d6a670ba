"""What the CLI and the API can each do, the other can too, with the same documents:
invitations (``users invite``/``join``/``invitations``/``revoke-invitation`` ⇄ ``POST
/users``, ``/users/join``, ``GET /users/invitations``, ``POST
/users/invitations/{id}/revoke``), checking a
definition (``pipelines validate`` ⇄ ``POST /validate``), showing a token or a
workspace (``tokens show``/``workspaces show`` ⇄ ``GET /tokens/{id}``,
``/workspaces/{id}``).  The CLI runs in-process on the same store the API serves."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from tests.api.conftest import Tenant

from headwater.entrypoints.cli.commands import cli
from headwater.sandbox.testing import RunningSandbox
from headwater.services.auth import sessions, tokens, users, workspaces

PASSWORD = "correct horse battery"


def invoke(*args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), input=stdin, catch_exceptions=False)


def cli_doc(*args: str, stdin: str | None = None, exit_code: int = 0) -> Any:
    result = invoke(*args, "--json", stdin=stdin)
    assert result.exit_code == exit_code, result.output
    return json.loads(result.stdout)


def test_users_are_invited_over_the_api_as_with_the_cli(
    tenant: Tenant, other_tenant: Tenant
) -> None:
    by_cli = cli_doc("users", "add", "bob@example.com", "--password-stdin", stdin=PASSWORD)
    assert set(by_cli) == {"id", "email", "created_at", "workspace_id"}
    invited = other_tenant.http.post("/users", json={"email": "Bob@Example.com"})
    assert invited.status_code == 202, invited.text
    doc = invited.json()
    assert doc["workspace_id"] == other_tenant.app.workspace_id
    assert doc["status"] == "pending"
    # Not a member until Bob accepts, signed in.
    mine = [w.id for w in workspaces.workspaces_of(tenant.app, by_cli["id"])]
    assert mine == [tenant.app.workspace_id]
    by_cli_invite = cli_doc("users", "invite", "bob@example.com", "--workspace", "ws_default")
    assert set(by_cli_invite) == set(doc)
    assert by_cli_invite["workspace_id"] == "ws_default"
    assert (
        other_tenant.http.post("/users/join", json={"email": "bob@example.com"}).json()["id"]
        == (doc["id"])
    )  # a pending invitation is renewed, not repeated
    listed = other_tenant.http.get("/users/invitations").json()["data"]
    by_cli_list = cli_doc("users", "invitations", "--workspace", other_tenant.app.workspace_id)
    assert listed == by_cli_list
    revoked = cli_doc("users", "revoke-invitation", doc["id"], "--workspace", doc["workspace_id"])
    assert revoked["status"] == "revoked"
    assert other_tenant.http.get("/users/invitations").json()["data"][0]["status"] == "revoked"
    _, session = sessions.sign_in(tenant.app, "bob@example.com", PASSWORD, address="test")
    assert session.workspace_id == tenant.app.workspace_id


def test_bad_users_are_refused_naming_the_field_and_change_nothing(tenant: Tenant) -> None:
    cases = [
        ("/users", {"email": "not an email"}, 422, "email"),
        ("/users", {}, 422, "email"),
        ("/users", {"email": "bob@example.com", "password": PASSWORD}, 422, "password"),
        ("/users/join", {"email": "nobody"}, 422, "email"),
        ("/users/join", {"email": "bob@example.com", "admin": True}, 422, "admin"),
    ]
    for path, body, status, field in cases:
        answer = tenant.http.post(path, json=body)
        assert answer.status_code == status, (body, answer.text)
        assert answer.json()["error"]["field"] == field, (body, answer.text)
        assert PASSWORD not in answer.text
    told = tenant.http.post("/users", json={"email": "bob@example.com", "password": PASSWORD})
    assert "headwater users add" in told.json()["error"]["message"]  # why, not "extra input"
    assert tenant.http.get("/users/invitations").json()["data"] == []
    assert users.authenticate(tenant.app, "bob@example.com", PASSWORD) is None


def test_pipelines_validate_answers_what_post_validate_answers(
    tenant: Tenant, tmp_path: Path
) -> None:
    parts: dict[str, Any] = {
        "mapping": {"email": "lower(emial)", "nope": "email"},
        "filter": {
            "conditions": [
                {"property": "address.country", "operator": "is greater than", "values": ["IT"]}
            ]
        },
    }
    files = {}
    for name, value in parts.items():
        files[name] = tmp_path / f"{name}.json"
        files[name].write_text(json.dumps(value))
    code = tmp_path / "transform.js"
    code.write_text("function transform(c) {\n  return {email: c.email\n}\n")
    checks = [
        (["--mapping", str(files["mapping"]), "--filter", str(files["filter"])], parts),
        (
            ["--javascript", str(code)],
            {"transformation": {"kind": "javascript", "source": code.read_text()}},
        ),
    ]
    for args, body in checks:
        by_api = tenant.http.post("/validate", json=body)
        assert by_api.status_code == 200, by_api.text
        assert by_api.json()["valid"] is False
        assert cli_doc("pipelines", "validate", *args, exit_code=1) == by_api.json()
    fields = [e["field"] for e in tenant.http.post("/validate", json=parts).json()["errors"]]
    assert fields == ["filter.conditions[0]", "mapping.email", "mapping.nope"]
    good = tmp_path / "good.json"
    good.write_text('{"email": "lower(email)"}')
    assert cli_doc("pipelines", "validate", "--mapping", str(good)) == {"valid": True, "errors": []}
    text = invoke("pipelines", "validate", "--mapping", str(files["mapping"]))
    assert text.exit_code == 1
    assert "mapping.email (line 1, column 7): unknown Stripe customer field 'emial'" in text.stdout
    nothing = invoke("pipelines", "validate")
    assert nothing.exit_code == 2
    broken = tmp_path / "broken.json"
    broken.write_text("{nope")
    bad_file = invoke("pipelines", "validate", "--filter", str(broken))
    assert bad_file.exit_code == 1
    assert "--filter" in bad_file.stderr


def test_tokens_and_workspaces_show_the_documents_the_api_shows(tenant: Tenant) -> None:
    _, token = tokens.create_token(tenant.app, "shown")
    by_api = tenant.http.get(f"/tokens/{token.id}")
    assert cli_doc("tokens", "show", token.id) == by_api.json()
    workspace = tenant.app.workspace_id
    assert (
        cli_doc("workspaces", "show", workspace)
        == tenant.http.get(f"/workspaces/{workspace}").json()
    )
    assert invoke("tokens", "show", "tok_nope").exit_code == 1
    assert invoke("workspaces", "show", "ws_nope").exit_code == 1
    text = invoke("tokens", "show", token.id)
    assert "shown" in text.stdout
    assert token.prefix in text.stdout


#: Decimal properties and what a transformation returns for them; every document spells
#: a decimal as its plain text: no exponent, no zeros of the column's scale.
DECIMALS = {
    "zero": ("0.0", "0"),
    "half": ("12.50", "12.5"),
    "tiny": ("0.000000001", "0.000000001"),
    "owed": ("-7.250", "-7.25"),
    "large": ("100000000000000000000", "100000000000000000000"),
}


def test_a_preview_spells_decimals_as_the_api_does(
    tenant: Tenant, sandbox: RunningSandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Decimals (DECIMAL(38, 9)) were spelled by the API and the CLI as Python writes
    the value at scale 9: ``0E-9``, ``12.500000000``, ``1E-9``; both spell them as plain
    decimal text, the same in both documents."""
    body = {"kind": "stripe", "name": "sb", "api_key": sandbox.secret_key, "base_url": sandbox.url}
    conn = tenant.http.post("/connections", json=body).json()["id"]
    for name in DECIMALS:
        added = tenant.http.post("/model/properties", json={"path": name, "type": "decimal"})
        assert added.status_code == 201, added.text
    returned = {name: given for name, (given, _) in DECIMALS.items()}
    code = tmp_path / "transform.py"
    code.write_text(f"def transform(c):\n    return {returned!r}\n")
    by_api = tenant.http.post(
        "/pipelines/preview",
        json={
            "connection_id": conn,
            "transformation": {"kind": "python", "source": code.read_text()},
            "limit": 1,
        },
    )
    assert by_api.status_code == 200, by_api.text
    [sample] = by_api.json()["samples"]
    assert {name: sample["output"][name] for name in DECIMALS} == {
        name: spelled for name, (_, spelled) in DECIMALS.items()
    }
    args = ["pipelines", "preview", "--connection", conn, "--python", str(code), "--limit", "1"]
    assert cli_doc(*args) == by_api.json()
    monkeypatch.delenv("COLUMNS", raising=False)  # one line per cell line: searchable
    text = invoke(*args).stdout
    for name, (_, spelled) in DECIMALS.items():
        assert f'{name}: "{spelled}"' in text, text
