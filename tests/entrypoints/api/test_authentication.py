"""Every route of the API needs credentials: a sweep over its own OpenAPI document,
so that a route added later cannot be forgotten (DESIGN.md §8)."""

from __future__ import annotations

import re
from typing import Any

import httpx
from tests.entrypoints.api.conftest import Api

from headwater.services.auth import tokens

#: The only routes that answer without credentials (sign-in, and the Stripe webhook,
#: which checks Stripe's signature instead); /healthz and /readyz are not in the API.
EXEMPT = {("post", "/auth/login"), ("post", "/webhooks/stripe/{connection_id}")}
METHODS = ("get", "post", "put", "patch", "delete")


def _operations(document: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (method, path)
        for path, item in document["paths"].items()
        for method in METHODS
        if method in item
    ]


def _refused(client: httpx.Client, method: str, path: str, **kw: Any) -> list[str]:
    """Why each request to every route is wrong (empty when each answers 401)."""
    wrong = []
    concrete = re.sub(r"\{[^}]+\}", "x_1", path)
    for body in ({"json": {}}, {"content": b"{not json"}, {}):
        response = client.request(method.upper(), concrete, **body, **kw)
        error = response.json().get("error", {}) if response.content else {}
        if response.status_code != 401 or error.get("type") != "unauthenticated":
            wrong.append(f"{method.upper()} {path} {body}: {response.status_code} {response.text}")
    return wrong


def test_every_route_refuses_missing_forged_and_revoked_credentials(api: Api) -> None:
    with api.client(api.token) as client:
        document = client.get("/openapi.json").json()
    operations = _operations(document)
    assert ("get", "/tokens") in operations  # the sweep sees the routes
    raw, token = tokens.create_token(api.app, "to be revoked")
    tokens.revoke_token(api.app, token.id)
    forged = api.token[:-4] + ("AAAA" if not api.token.endswith("AAAA") else "BBBB")
    credentials: dict[str, dict[str, Any]] = {
        "none": {},
        "forged token": {"headers": {"Authorization": f"Bearer {forged}"}},
        "revoked token": {"headers": {"Authorization": f"Bearer {raw}"}},
        "not a token": {"headers": {"Authorization": "Bearer sk_test_123"}},
        "basic auth": {"headers": {"Authorization": "Basic YWRhOnB3"}},
        "forged session": {"headers": {"Cookie": "headwater_session=" + "x" * 43}},
    }
    wrong = []
    with api.client() as client:
        for method, path in operations:
            if (method, path) in EXEMPT:
                continue
            for name, kw in credentials.items():
                wrong += [f"[{name}] {w}" for w in _refused(client, method, path, **kw)]
        for name, kw in credentials.items():
            wrong += [f"[{name}] {w}" for w in _refused(client, "get", "/openapi.json", **kw)]
    assert wrong == []


def test_an_unknown_path_says_not_found_without_credentials(api: Api) -> None:
    with api.client() as client:
        response = client.get("/no/such/thing")
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "not_found"


def test_a_revoked_token_is_refused_from_its_next_request(api: Api) -> None:
    with api.client(api.token) as client:
        created = client.post("/tokens", json={"name": "short-lived"}).json()
        with api.client(created["token"]) as other:
            assert other.get("/auth/me").json()["authenticated_by"] == "token"
            assert client.post(f"/tokens/{created['id']}/revoke").status_code == 200
            refused = other.get("/auth/me")
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"] == "Bearer"
    assert created["token"] not in refused.text
