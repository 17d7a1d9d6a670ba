"""API tokens: shown once, stored as a digest, scoped to one workspace, revocable."""

from __future__ import annotations

import hashlib
from types import SimpleNamespace

import pytest
import sqlalchemy as sa

from headwater.adapters.store.auth_tables import api_tokens
from headwater.kernel.errors import InvalidInput, NotFound
from headwater.services.app import App
from headwater.services.auth import Principal, tokens, workspaces


def _stored(app: App) -> list[dict[str, object]]:
    with app.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.select(api_tokens))]


def test_a_token_is_stored_only_as_its_digest_and_authenticates_its_workspace(app: App) -> None:
    raw, token = tokens.create_token(app, " ci ")
    assert raw.startswith("hw_")
    assert len(raw) == 46
    assert token.name == "ci"
    assert raw.startswith(token.prefix)
    assert len(token.prefix) == 9
    [row] = _stored(app)
    assert row["secret_hash"] == hashlib.sha256(raw.encode()).hexdigest()
    assert raw not in repr(row)
    assert raw[3:] not in repr(row)
    found = tokens.principal_for_token(app, raw)
    assert found == Principal(workspace_id=app.workspace_id, token_id=token.id)
    assert tokens.get_token(app, token.id).last_used_at is not None


def test_forged_malformed_and_revoked_tokens_authenticate_nobody(app: App) -> None:
    raw, token = tokens.create_token(app, "ci")
    forged = raw[:-1] + ("A" if raw[-1] != "A" else "B")
    for bad in (forged, "", "hw_", raw + "x", "Bearer " + raw, raw.upper()):
        assert tokens.principal_for_token(app, bad) is None, bad
    revoked = tokens.revoke_token(app, token.id)
    assert revoked.revoked_at is not None
    assert tokens.revoke_token(app, token.id).revoked_at == revoked.revoked_at
    assert tokens.principal_for_token(app, raw) is None


def test_another_workspaces_token_is_not_found(app: App) -> None:
    other = app.in_workspace(workspaces.add_workspace(app, "Acme").id)
    raw, theirs = tokens.create_token(other, "theirs")
    with pytest.raises(NotFound):
        tokens.get_token(app, theirs.id)
    with pytest.raises(NotFound):
        tokens.revoke_token(app, theirs.id)
    assert tokens.list_tokens(app) == ([], False)
    assert tokens.principal_for_token(app, raw) == Principal(other.workspace_id, token_id=theirs.id)


def test_tokens_list_newest_first_in_pages(app: App) -> None:
    made = [tokens.create_token(app, f"t{i}")[1] for i in range(5)]
    first, more = tokens.list_tokens(app, limit=2)
    assert [t.name for t in first] == ["t4", "t3"]
    assert more
    second, more = tokens.list_tokens(app, limit=2, starting_after=first[-1].id)
    third, more_after = tokens.list_tokens(app, limit=2, starting_after=second[-1].id)
    assert [t.name for t in second + third] == ["t2", "t1", "t0"]
    assert more
    assert not more_after
    assert {t.id for t in first + second + third} == {t.id for t in made}
    with pytest.raises(InvalidInput):
        tokens.list_tokens(app, limit=0)
    with pytest.raises(InvalidInput) as caught:
        tokens.list_tokens(app, starting_after="tok_nope")
    assert caught.value.location == "starting_after"


@pytest.mark.parametrize("name", ["", "   ", "x" * 201, "\x1e", "line\nbreak"])
def test_a_token_needs_a_name(app: App, name: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        tokens.create_token(app, name)
    assert caught.value.location == "name"
    assert _stored(app) == []


def test_a_token_revoked_here_is_refused_at_once_though_it_was_trusted(app: App) -> None:
    raw, token = tokens.create_token(app, "ci")
    assert tokens.principal_for_token(app, raw) is not None
    assert tokens.trusted_principal(app, raw) is not None  # checked lately: no store read
    tokens.revoke_token(app, token.id)
    assert tokens.trusted_principal(app, raw) is None
    assert tokens.principal_for_token(app, raw) is None


def test_a_token_revoked_by_another_process_is_refused_once_its_trust_lapses(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [1000.0]  # the module's clock, moved by hand (a real sleep raced the load)
    monkeypatch.setattr(tokens, "time", SimpleNamespace(monotonic=lambda: now[0]))
    raw, token = tokens.create_token(app, "ci")
    assert tokens.principal_for_token(app, raw) is not None
    elsewhere = App.open(app.settings)  # another engine: what another process holds
    try:
        tokens.revoke_token(elsewhere, token.id)
    finally:
        elsewhere.close()
    # Still trusted here for at most TRUSTED_FOR: the store is not read again before.
    now[0] += tokens.TRUSTED_FOR - 0.01
    assert tokens.trusted_principal(app, raw) is not None
    now[0] += 0.02
    assert tokens.trusted_principal(app, raw) is None
    assert tokens.principal_for_token(app, raw) is None


def test_only_valid_tokens_are_trusted(app: App) -> None:
    raw, _ = tokens.create_token(app, "ci")
    forged = raw[:-1] + ("A" if raw[-1] != "A" else "B")
    assert tokens.principal_for_token(app, forged) is None
    assert tokens.trusted_principal(app, forged) is None
    assert tokens.trusted_principal(app, raw) is None  # never checked yet


def test_a_token_revoked_while_a_request_checks_it_is_not_trusted_afterwards(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A request's thread reads the token (still live) while another request revokes it:
    # what the first one found must not be trusted after the revocation.
    raw, token = tokens.create_token(app, "ci")
    read = tokens.accounts.token_by_hash

    def read_then_revoked(engine: sa.Engine, hashed: str) -> object:
        found = read(engine, hashed)
        tokens.revoke_token(app, token.id)  # the other request, between read and trust
        return found

    monkeypatch.setattr(tokens.accounts, "token_by_hash", read_then_revoked)
    tokens.principal_for_token(app, raw)  # the request in flight: it read a live token
    monkeypatch.setattr(tokens.accounts, "token_by_hash", read)
    assert tokens.trusted_principal(app, raw) is None
    assert tokens.principal_for_token(app, raw) is None
