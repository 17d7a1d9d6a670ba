"""Authentication through a real `headwater serve` process: the 401 sweep over the
API's OpenAPI document, the open health check, and the sign-in flow."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from tests.entrypoints.api.conftest import PASSWORD
from tests.entrypoints.api.test_authentication import EXEMPT, _operations, _refused
from tests.serving import start_serve

from headwater.entrypoints.environment import settings_from_env
from headwater.services.app import App
from headwater.services.auth import sessions, tokens, users


@pytest.mark.slow
def test_serve_refuses_every_api_route_without_credentials_and_signs_in(home: Path) -> None:
    app = App.open(settings_from_env())
    try:
        users.add_user(app, "ada@example.com", PASSWORD)
        raw, _ = tokens.create_token(app, "serve")
        revoked, token = tokens.create_token(app, "revoked")
        tokens.revoke_token(app, token.id)
    finally:
        app.close()
    with start_serve(home, workers=0) as served:
        api = f"{served.url}/api/v1"
        assert httpx.get(f"{served.url}/healthz").status_code == 200
        document = httpx.get(f"{api}/openapi.json", headers={"Authorization": f"Bearer {raw}"})
        operations = [o for o in _operations(document.json()) if o not in EXEMPT]
        assert ("get", "/tokens") in operations
        wrong = []
        with httpx.Client(base_url=api) as client:
            for method, path in [*operations, ("get", "/openapi.json")]:
                wrong += _refused(client, method, path)
                wrong += _refused(
                    client, method, path, headers={"Authorization": f"Bearer {revoked}"}
                )
        assert wrong == []
        with httpx.Client(base_url=api, headers={"Origin": served.url}) as browser:
            signed_in = browser.post(
                "/auth/login", json={"email": "ada@example.com", "password": PASSWORD}
            )
            assert signed_in.status_code == 200, signed_in.text
            assert "HttpOnly" in signed_in.headers["set-cookie"]
            assert browser.get("/auth/me").json()["user"]["email"] == "ada@example.com"
            assert browser.post("/tokens", json={"name": "from the browser"}).status_code == 201
            assert browser.post("/auth/logout").status_code == 204
            assert browser.get("/auth/me").status_code == 401
            assert sessions.COOKIE not in browser.cookies
        # No proxy is trusted by default: X-Forwarded-For cannot dodge the per-address
        # limit by posing as a new address on every attempt.
        with httpx.Client(base_url=api) as client:
            answers = [
                client.post(
                    "/auth/login",
                    json={"email": f"nobody{n}@example.com", "password": "wrong"},
                    headers={"X-Forwarded-For": f"203.0.113.{n}"},
                ).status_code
                for n in range(sessions.ADDRESS_LIMIT + 1)
            ]
        assert answers[:-1] == [401] * sessions.ADDRESS_LIMIT
        assert answers[-1] == 429
    assert raw not in served.text()
    assert PASSWORD not in served.text()
