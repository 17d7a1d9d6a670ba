"""Members invite an email; the invited person accepts or declines from their own
account (over real HTTP). An invitation tells the inviter nothing about whether the
email has an account, grants nothing until accepted, and expires."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import update
from tests.entrypoints.api.conftest import PASSWORD, Api

from headwater.kernel.entities import utcnow
from headwater.services.auth import tokens, users, workspaces


def _acme(api: Api) -> str:
    """A second workspace, "Acme", whose one member is bob@example.com."""
    acme = workspaces.add_workspace(api.app, "Acme")
    users.add_user(api.app.in_workspace(acme.id), "bob@example.com", PASSWORD)
    return acme.id


def _shape(answer: httpx.Response) -> tuple[int, Any]:
    """The status and the document's keys and value types, which must not differ
    between an email that has an account and one that has none."""
    body = answer.json()
    inner = body.get("error", body)
    return answer.status_code, sorted((k, type(v).__name__) for k, v in inner.items())


def test_inviting_answers_alike_whether_or_not_the_email_has_an_account(api: Api) -> None:
    """A member could learn which emails have accounts: `POST /users` answered 409 for
    one and 201 for another, `POST /users/join` 200 or 422 ('no user with the email')."""
    _acme(api)
    bodies = [lambda e: {"email": e}, lambda e: {"email": e, "password": PASSWORD}]
    with api.client(api.token) as by_token, api.signed_in() as by_session:
        for client in (by_token, by_session):
            for path in ("/users", "/users/join"):
                for body in bodies:
                    known = client.post(path, json=body("BOB@example.com"))
                    unknown = client.post(path, json=body("nobody@example.com"))
                    assert _shape(known) == _shape(unknown), (path, body, known.text)
                    for answer, email in ((known, "BOB@example.com"), (unknown, "nobody")):
                        assert "already" not in answer.text
                        if answer.status_code == 202:
                            # the email as the inviter typed it, never the account's own
                            assert answer.json()["email"].startswith(email)
                            assert answer.json()["status"] == "pending"


def test_an_invited_user_is_a_member_only_once_they_accept(api: Api) -> None:
    acme = _acme(api)
    with api.signed_in("bob@example.com") as bob:
        invited = bob.post("/users", json={"email": "Ada@Example.com"})
        assert invited.status_code == 202, invited.text
        invitation = invited.json()
        assert invitation["workspace_id"] == acme
        assert invitation["status"] == "pending"
        listed = bob.get("/users/invitations").json()["data"]
        assert [i["id"] for i in listed] == [invitation["id"]]
        assert [m["email"] for m in bob.get("/users").json()["data"]] == ["bob@example.com"]
    with api.signed_in() as ada:
        # Not a member yet: the workspace is neither listed nor reachable.
        assert acme not in [w["id"] for w in ada.get("/workspaces").json()["data"]]
        assert ada.post("/auth/workspace", json={"workspace_id": acme}).status_code == 404
        assert ada.get(f"/workspaces/{acme}").status_code == 404
        pending = ada.get("/invitations").json()["data"]
        assert [(i["id"], i["workspace_name"]) for i in pending] == [(invitation["id"], "Acme")]
        assert pending[0]["invited_by"] == "bob@example.com"
        accepted = ada.post(f"/invitations/{invitation['id']}/accept")
        assert accepted.status_code == 200, accepted.text
        assert accepted.json()["status"] == "accepted"
        assert ada.get("/invitations").json()["data"] == []
        chosen = ada.post("/auth/workspace", json={"workspace_id": acme})
        assert chosen.status_code == 200, chosen.text
        assert ada.get("/auth/me").json()["workspace"]["id"] == acme
        members = [m["email"] for m in ada.get("/users").json()["data"]]
        assert members == ["bob@example.com", "ada@example.com"]
        # Accepting twice grants nothing more and says so.
        again = ada.post(f"/invitations/{invitation['id']}/accept")
        assert again.status_code == 409
    with api.signed_in("bob@example.com") as bob:
        assert bob.get("/users/invitations").json()["data"][0]["status"] == "accepted"


def test_a_declined_or_expired_invitation_grants_nothing(api: Api) -> None:
    acme = _acme(api)
    with api.signed_in("bob@example.com") as bob:
        first = bob.post("/users/join", json={"email": "ada@example.com"}).json()
    with api.signed_in() as ada:
        declined = ada.post(f"/invitations/{first['id']}/decline")
        assert declined.status_code == 200, declined.text
        assert declined.json()["status"] == "declined"
        refused = ada.post(f"/invitations/{first['id']}/accept")
        assert refused.status_code == 409
        assert "declined" in refused.json()["error"]["message"]
        assert ada.post("/auth/workspace", json={"workspace_id": acme}).status_code == 404
    with api.signed_in("bob@example.com") as bob:
        second = bob.post("/users", json={"email": "ada@example.com"}).json()
        assert second["id"] != first["id"]
    from headwater.adapters.store.auth_tables import invitations

    with api.app.engine.begin() as conn:
        conn.execute(
            update(invitations)
            .where(invitations.c.id == second["id"])
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    with api.signed_in() as ada:
        assert ada.get("/invitations").json()["data"] == []
        late = ada.post(f"/invitations/{second['id']}/accept")
        assert late.status_code == 409
        assert "expired" in late.json()["error"]["message"]
        assert acme not in [w["id"] for w in ada.get("/workspaces").json()["data"]]
    with api.signed_in("bob@example.com") as bob:
        states = {i["id"]: i["status"] for i in bob.get("/users/invitations").json()["data"]}
        assert states == {first["id"]: "declined", second["id"]: "expired"}


def test_only_the_invited_user_answers_and_workspaces_see_only_their_own(api: Api) -> None:
    acme = _acme(api)
    users.add_user(api.app, "carol@example.com", PASSWORD)  # a member of the default one
    with api.signed_in("bob@example.com") as bob:
        invitation = bob.post("/users", json={"email": "ada@example.com"}).json()
        revoked = bob.post("/users", json={"email": "dan@example.com"}).json()
        gone = bob.post(f"/users/invitations/{revoked['id']}/revoke")
        assert gone.status_code == 200, gone.text
        assert gone.json()["status"] == "revoked"
    with api.signed_in("carol@example.com") as carol:
        assert carol.get("/invitations").json()["data"] == []
        for verb in ("accept", "decline"):
            answer = carol.post(f"/invitations/{invitation['id']}/{verb}")
            assert answer.status_code == 404, answer.text
        # The default workspace sees none of Acme's invitations, nor can revoke them.
        assert carol.get("/users/invitations").json()["data"] == []
        assert carol.post(f"/users/invitations/{invitation['id']}/revoke").status_code == 404
    with api.client(api.token) as token:
        # A token has no person behind it: it invites for its workspace, answers none.
        assert token.get("/invitations").status_code == 403
        assert token.post(f"/invitations/{invitation['id']}/accept").status_code == 403
    acme_token, _ = tokens.create_token(api.app.in_workspace(acme), "acme")
    with api.client(acme_token) as theirs:
        assert [i["id"] for i in theirs.get("/users/invitations").json()["data"]] == [
            revoked["id"],
            invitation["id"],
        ]
    with api.signed_in() as ada:
        assert ada.get("/invitations").json()["data"][0]["workspace_id"] == acme
        assert ada.post(f"/invitations/{invitation['id']}/accept").status_code == 200
