"""Text that no database keeps: the NUL character (``\\u0000`` in JSON, ``%00`` in a
URL).  PostgreSQL refuses it in text, so on a PostgreSQL metadata store a name,
an id, a cursor or an email holding one was a 500 after the request was carried half
way.  Every route now refuses it with a 422 naming the field, after authentication, and
the webhook receiver answers it as any unknown connection (400)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute
from tests.api.conftest import Tenant, client, serve_api
from tests.conftest import pg_schema_url

from headwater.entrypoints.api import create_api
from headwater.entrypoints.api.deps import checked_input, refuse_nul
from headwater.entrypoints.environment import settings_from_env
from headwater.sandbox.testing import RunningSandbox
from headwater.services.app import App
from headwater.services.auth import tokens


@pytest.fixture
def pg_tenant(home: Any, pg_schema: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Tenant]:
    """The default workspace of an API over a PostgreSQL metadata store, with a token."""
    monkeypatch.setenv("HEADWATER_DATABASE_URL", pg_schema_url(pg_schema))
    app = App.open(settings_from_env())
    served = serve_api(app)
    raw, _ = tokens.create_token(app, "tests")
    try:
        with client(served.url, raw) as http:
            yield Tenant(app, raw, http)
    finally:
        served.stop()
        app.close()


def _refused(response: httpx.Response, field: str) -> None:
    assert response.status_code == 422, (response.request.url, response.text)
    error = response.json()["error"]
    assert error["type"] == "invalid_input"
    assert error["field"] == field, error
    assert "NUL" in error["message"]


@pytest.mark.postgres
def test_text_holding_a_nul_character_is_refused_naming_where(
    pg_tenant: Tenant, sandbox: RunningSandbox
) -> None:
    http = pg_tenant.http
    good = {"kind": "stripe", "name": "a", "api_key": sandbox.secret_key, "base_url": sandbox.url}
    conn = http.post("/connections", json=good).json()
    pipeline = http.post("/pipelines", json={"connection_id": conn["id"], "name": "p"}).json()
    before = (http.get(f"/connections/{conn['id']}").json(), http.get("/pipelines").json())
    condition = {"property": "email", "operator": "is", "values": ["a\x00"]}
    cases = [
        (http.post("/connections", json=good | {"name": "a\x00b"}), "name"),
        (http.patch(f"/connections/{conn['id']}", json={"name": "a\x00"}), "name"),
        (http.patch(f"/pipelines/{pipeline['id']}", json={"description": "d\x00"}), "description"),
        (
            http.patch(
                f"/pipelines/{pipeline['id']}",
                json={"filter": {"logical": "and", "conditions": [condition]}},
            ),
            "filter.conditions[0].values[0]",
        ),
        (http.post("/pipelines/preview", json={"pipeline_id": "pl_\x00"}), "pipeline_id"),
        (http.post(f"/connections/{conn['id']}/webhook", json={"url": "https://x\x00"}), "url"),
        (http.post("/users", json={"email": "a\x00@x.io"}), "email"),
        (http.post("/users/join", json={"email": "a\x00@x.io"}), "email"),
        (http.post("/auth/login", json={"email": "a\x00@x.io", "password": "whatever"}), "email"),
        (http.get("/runs", params={"starting_after": "run_\x00"}), "starting_after"),
        (http.get("/pipelines", params={"connection_id": "conn_\x00"}), "connection_id"),
        (http.get("/profiles", params={"search": "a\x00"}), "search"),
    ]
    for response, field in cases:
        _refused(response, field)
    for path, field in (
        ("/runs/run_%00", "run_id"),
        ("/pipelines/pl_%00", "pipeline_id"),
        ("/connections/conn_%00", "connection_id"),
        ("/tokens/tok_%00", "token_id"),
    ):
        _refused(http.get(path), field)
    # Authentication comes first.
    anonymous = httpx.get(f"{http.base_url}runs/run_%00")
    assert anonymous.status_code == 401
    # The receiver: the same answer as for any connection it does not know.
    delivery = httpx.post(
        f"{http.base_url}webhooks/stripe/conn_%00",
        content=b"{}",
        headers={"Stripe-Signature": "t=1,v1=00"},
    )
    assert delivery.status_code == 400, delivery.text
    assert delivery.json()["error"]["type"] == "invalid_signature"
    after = (http.get(f"/connections/{conn['id']}").json(), http.get("/pipelines").json())
    assert after == before


def test_every_route_refuses_nul(api_app: App) -> None:
    """A route added later cannot forget the check: every route of the API has it
    (after authentication, but for sign-in and the webhook receiver, which have no
    caller yet; the receiver checks its one parameter itself)."""
    missing = []
    for route in create_api(api_app).routes:
        if not isinstance(route, APIRoute) or route.path == "/webhooks/stripe/{connection_id}":
            continue
        calls = {d.call for d in route.dependant.dependencies}
        wanted = refuse_nul if route.path == "/auth/login" else checked_input
        if wanted not in calls and route.path != "/openapi.json":
            missing.append(route.path)
    assert missing == []
