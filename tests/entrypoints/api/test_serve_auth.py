"""Authentication through a real `headwater serve` process: the 401 sweep over the
API's OpenAPI document, the open health check, and the sign-in flow."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from tests.entrypoints.api.conftest import PASSWORD
from tests.entrypoints.api.test_authentication import EXEMPT, _operations, _refused
from tests.serving import service_env, start_serve

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


def _headwater(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "headwater", *args],
        env=service_env(home),
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


@pytest.mark.slow
def test_a_revoked_token_is_refused_promptly_though_serve_trusted_it(home: Path) -> None:
    """serve trusts a token it checked lately (`tokens.TRUSTED_FOR`) without asking the
    store: revoked over the API it is refused by the very next request; revoked by the
    CLI (another process) within that time."""
    app = App.open(settings_from_env())
    try:
        admin, _ = tokens.create_token(app, "admin")
        by_api, by_api_token = tokens.create_token(app, "revoked over the API")
        by_cli, by_cli_token = tokens.create_token(app, "revoked by the CLI")
    finally:
        app.close()
    with start_serve(home, workers=0) as served, httpx.Client(base_url=served.url) as client:

        def status(raw: str) -> int:
            headers = {"Authorization": f"Bearer {raw}"}
            return client.get("/api/v1/pipelines", headers=headers).status_code

        assert [status(by_api), status(by_api), status(by_cli), status(by_cli)] == [200] * 4
        revoked = client.post(
            f"/api/v1/tokens/{by_api_token.id}/revoke",
            headers={"Authorization": f"Bearer {admin}"},
        )
        assert revoked.status_code == 200, revoked.text
        assert status(by_api) == 401
        done = _headwater(home, "tokens", "revoke", by_cli_token.id)
        assert done.returncode == 0, done.stderr
        revoked_at = time.monotonic()
        while status(by_cli) == 200:
            assert time.monotonic() - revoked_at < tokens.TRUSTED_FOR + 3.0
            time.sleep(0.05)
        assert status(by_cli) == 401
        assert status(admin) == 200
