"""One workspace never sees another's tokens or workspaces: they are 404s."""

from __future__ import annotations

from tests.entrypoints.api.conftest import PASSWORD, Api

from headwater.services.auth import users, workspaces


def test_a_user_creates_and_chooses_workspaces_and_tokens_stay_in_theirs(api: Api) -> None:
    with api.signed_in() as ada:
        created = ada.post("/workspaces", json={"name": "Acme"})
        assert created.status_code == 201, created.text
        acme = created.json()
        assert [w["name"] for w in ada.get("/workspaces").json()["data"]] == ["Acme", "default"]
        assert ada.get(f"/workspaces/{acme['id']}").json() == acme
        chosen = ada.post("/auth/workspace", json={"workspace_id": acme["id"]})
        assert chosen.status_code == 200, chosen.text
        assert chosen.json()["workspace"]["id"] == acme["id"]
        theirs = ada.post("/tokens", json={"name": "acme"}).json()
        assert theirs["workspace_id"] == acme["id"]
        assert [t["id"] for t in ada.get("/tokens").json()["data"]] == [theirs["id"]]
    with api.client(api.token) as default:
        for path in (f"/tokens/{theirs['id']}", f"/workspaces/{acme['id']}"):
            missing = default.get(path)
            assert missing.status_code == 404, path
            assert missing.json()["error"]["type"] == "not_found"
        assert default.post(f"/tokens/{theirs['id']}/revoke").status_code == 404
        assert theirs["id"] not in default.get("/tokens").text
        assert [w["id"] for w in default.get("/workspaces").json()["data"]] == ["ws_default"]
    with api.client(theirs["token"]) as scoped:
        assert scoped.get("/auth/me").json()["workspace"]["id"] == acme["id"]
        assert scoped.post(f"/tokens/{theirs['id']}/revoke").json()["revoked_at"] is not None


def test_tokens_cannot_create_or_choose_workspaces(api: Api) -> None:
    with api.client(api.token) as client:
        created = client.post("/workspaces", json={"name": "Orphan"})
        chosen = client.post("/auth/workspace", json={"workspace_id": "ws_default"})
    assert created.status_code == 403
    assert chosen.status_code == 403
    assert [w.name for w in workspaces.list_workspaces(api.app)] == ["default"]


def test_another_users_workspace_is_not_found(api: Api) -> None:
    bob_space = workspaces.add_workspace(api.app, "Bob's")
    users.add_user(api.app.in_workspace(bob_space.id), "bob@example.com", PASSWORD)
    with api.signed_in() as ada:
        assert ada.get(f"/workspaces/{bob_space.id}").status_code == 404
        refused = ada.post("/auth/workspace", json={"workspace_id": bob_space.id})
        assert refused.status_code == 404
        assert ada.get("/auth/me").json()["workspace"]["id"] == "ws_default"
    with api.signed_in("bob@example.com") as bob:
        assert bob.get("/auth/me").json()["workspace"]["id"] == bob_space.id
        assert bob.get("/workspaces/ws_default").status_code == 404
        assert bob.get("/tokens").json()["data"] == []


def test_bad_input_names_its_field(api: Api) -> None:
    with api.client(api.token) as client:
        cases = [
            (client.post("/tokens", json={"name": ""}), "name"),
            (client.post("/tokens", json={"name": "x", "extra": 1}), "extra"),
            (client.get("/tokens", params={"limit": 0}), "limit"),
            (client.get("/tokens", params={"limit": "many"}), "limit"),
            (client.post("/workspaces", json={"name": "a\nb"}), "name"),
        ]
        for response, field in cases:
            assert response.status_code == 422, response.text
            assert response.json()["error"]["field"] == field
        assert client.get("/tokens", params={"starting_after": "tok_nope"}).status_code == 422
        assert client.get("/workspaces", params={"starting_after": "ws_nope"}).status_code == 422
        garbage = client.post(
            "/tokens", content=b"{not json", headers={"Content-Type": "application/json"}
        )
        assert garbage.status_code == 422
        assert garbage.json()["error"]["type"] == "invalid_input"
        assert [t["name"] for t in client.get("/tokens").json()["data"]] == ["tests"]
