"""Users: argon2 hashes only, emails unique whatever their case, clear input errors."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from headwater.adapters.store.auth_tables import memberships, users
from headwater.kernel.errors import Conflict, InvalidInput
from headwater.services.app import App
from headwater.services.auth import invitations, workspaces
from headwater.services.auth import users as accounts


def _rows(app: App, table: sa.Table) -> list[dict[str, object]]:
    with app.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.select(table))]


def test_a_user_is_stored_with_an_argon2_hash_and_never_the_password(app: App) -> None:
    user = accounts.add_user(app, "  Ada@Example.com ", "correct horse battery")
    assert user.email == "Ada@Example.com"
    [row] = _rows(app, users)
    assert row["email_key"] == "ada@example.com"
    assert str(row["password_hash"]).startswith("$argon2id$")
    assert "correct horse battery" not in repr(row)
    assert _rows(app, memberships)[0]["workspace_id"] == app.workspace_id
    assert accounts.authenticate(app, "ADA@example.com", "correct horse battery") == user
    assert accounts.authenticate(app, "ada@example.com", "wrong horse battery") is None
    assert accounts.authenticate(app, "bob@example.com", "correct horse battery") is None


def test_an_email_has_one_account_whatever_its_case(app: App) -> None:
    accounts.add_user(app, "ada@example.com", "correct horse battery")
    with pytest.raises(Conflict, match="already exists"):
        accounts.add_user(app, "ADA@EXAMPLE.COM", "another password")
    assert len(_rows(app, users)) == 1


@pytest.mark.parametrize(
    ("email", "password", "field"),
    [
        ("not an email", "correct horse", "email"),
        ("ada@", "correct horse", "email"),
        ("ada@example.com", "short", "password"),
        ("ada@example.com", "x" * 1025, "password"),
    ],
)
def test_bad_input_names_its_field_and_stores_nothing(
    app: App, email: str, password: str, field: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        accounts.add_user(app, email, password)
    assert caught.value.location == field
    assert _rows(app, users) == []
    assert _rows(app, memberships) == []


def test_an_invited_user_joins_another_workspace_only_by_accepting(app: App) -> None:
    user = accounts.add_user(app, "ada@example.com", "correct horse battery")
    other = workspaces.add_workspace(app, "Acme")
    acme = app.in_workspace(other.id)
    invited = invitations.invite(acme, " ADA@example.com ")
    assert invited.email == "ADA@example.com"  # as typed, never the account's spelling
    assert invitations.invite(acme, "ada@example.com").id == invited.id  # renewed
    assert [w.id for w in workspaces.workspaces_of(app, user.id)] == [app.workspace_id]
    assert [i.id for i in invitations.pending(app, user.id)] == [invited.id]
    assert invitations.accept(app, user.id, invited.id).status == "accepted"
    mine = [w.id for w in workspaces.workspaces_of(app, user.id)]
    assert mine == [app.workspace_id, other.id]
    # An email without an account is invited alike; a malformed one is refused.
    assert invitations.invite(acme, "bob@example.com").status == "pending"
    with pytest.raises(InvalidInput) as caught:
        invitations.invite(acme, "not an email")
    assert caught.value.location == "email"
