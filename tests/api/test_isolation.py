"""One workspace never sees or changes another's objects: every route that names an
object answers 404 to the other workspace's token (never 403, never the object), the
object is unchanged afterwards, and lists show only the caller's own.

The table below is checked against the OpenAPI document, so a new route that names
an object cannot be forgotten here.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import psycopg
import pytest
from tests.api.conftest import Tenant
from tests.conftest import PG_URL

from headwater.sandbox.testing import RunningSandbox
from headwater.services.auth import tokens
from headwater.services.pipelines import runner

MAPPING = {"kind": "mapping", "mapping": {"email": "lower(email)", "phone": "phone"}}

#: (method, path template, body) for every route naming an object; `{…}` filled below.
ROUTES: list[tuple[str, str, dict[str, Any] | None]] = [
    ("GET", "/connections/{connection_id}", None),
    ("PATCH", "/connections/{connection_id}", {"name": "stolen", "requests_per_second": 1}),
    ("POST", "/connections/{connection_id}/rotate-key", {"api_key": "sk_test_sandbox"}),
    ("GET", "/connections/{connection_id}/webhook", None),
    ("POST", "/connections/{connection_id}/webhook", {"url": "https://evil.example.com"}),
    (
        "PUT",
        "/connections/{connection_id}/webhook/secret",
        {"secret": "whsec_stolen", "url": "https://evil.example.com"},
    ),
    ("DELETE", "/connections/{connection_id}/webhook", None),
    ("DELETE", "/connections/{connection_id}", None),
    ("GET", "/pipelines/{pipeline_id}", None),
    ("PATCH", "/pipelines/{pipeline_id}", {"name": "stolen", "filter": None}),
    ("POST", "/pipelines/{pipeline_id}/enable", None),
    ("POST", "/pipelines/{pipeline_id}/disable", None),
    ("PUT", "/pipelines/{pipeline_id}/schedule", {"schedule": "5m"}),
    ("POST", "/pipelines/{pipeline_id}/runs", {"full": True}),
    ("GET", "/pipelines/{pipeline_id}/runs", None),
    ("DELETE", "/pipelines/{pipeline_id}", None),
    ("GET", "/runs/{run_id}", None),
    ("GET", "/runs/{run_id}/errors", None),
    ("POST", "/runs/{run_id}/cancel", None),
    ("GET", "/profiles/{profile_id}", None),
    ("GET", "/tokens/{token_id}", None),
    ("POST", "/tokens/{token_id}/revoke", None),
    ("GET", "/workspaces/{workspace_id}", None),
    ("POST", "/users/invitations/{invitation_id}/revoke", None),
]
#: Routes with a body or query that names an object.
REFERENCES: list[tuple[str, str, dict[str, Any] | None]] = [
    ("POST", "/pipelines", {"connection_id": "{connection_id}", "name": "x"}),
    ("POST", "/pipelines/preview", {"pipeline_id": "{pipeline_id}"}),
    ("POST", "/pipelines/preview", {"connection_id": "{connection_id}"}),
    ("GET", "/pipelines?connection_id={connection_id}", None),
    ("GET", "/runs?pipeline_id={pipeline_id}", None),
]
#: Routes naming a part of the caller's own settings (every workspace has a Customer
#: Model): they act on the caller's copy, never on another workspace's.
OWN: list[tuple[str, str, dict[str, Any] | None]] = [
    ("POST", "/model/properties/{path}/rename", {"name": "stolen"}),
    ("DELETE", "/model/properties/{path}", None),
]
#: Routes of the invited person's own answer: a token (of any workspace) has no person
#: behind it, so it is refused (403) before any invitation is looked up.
PERSONAL: list[tuple[str, str, dict[str, Any] | None]] = [
    ("POST", "/invitations/{invitation_id}/accept", None),
    ("POST", "/invitations/{invitation_id}/decline", None),
]
#: Paths with a parameter that do not name an object of a workspace.
EXEMPT = {"/webhooks/stripe/{connection_id}"}


@pytest.fixture
def owned(tenant: Tenant, sandbox: RunningSandbox) -> dict[str, str]:
    """One of each object in the first workspace (a finished run, so profiles exist)."""
    http = tenant.http
    conn = http.post(
        "/connections",
        json={
            "kind": "stripe",
            "name": "a",
            "api_key": sandbox.secret_key,
            "base_url": sandbox.url,
        },
    ).json()
    pipeline = http.post(
        "/pipelines", json={"connection_id": conn["id"], "name": "a", "transformation": MAPPING}
    ).json()
    run = runner.run_pipeline(tenant.app, pipeline["id"])
    assert run.status == "succeeded", run.message
    profile = http.get("/profiles", params={"limit": 1}).json()["data"][0]
    token = tokens.list_tokens(tenant.app)[0][0]
    return {
        "connection_id": conn["id"],
        "pipeline_id": pipeline["id"],
        "run_id": run.id,
        "profile_id": profile["id"],
        "path": "phone",
        "token_id": token.id,
        "workspace_id": tenant.app.workspace_id,
        "invitation_id": http.post("/users", json={"email": "ada@example.com"}).json()["id"],
    }


def _fill(template: str, ids: dict[str, str]) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: ids[m.group(1)], template)


def _filled(body: dict[str, Any] | None, ids: dict[str, str]) -> dict[str, Any] | None:
    if body is None:
        return None
    return {k: _fill(v, ids) if isinstance(v, str) else v for k, v in body.items()}


def _snapshot(tenant: Tenant, ids: dict[str, str]) -> list[Any]:
    http = tenant.http
    return [
        http.get(f"/connections/{ids['connection_id']}").json(),
        http.get(f"/pipelines/{ids['pipeline_id']}").json(),
        http.get(f"/runs/{ids['run_id']}").json(),
        http.get(f"/profiles/{ids['profile_id']}").json(),
        http.get("/model").json(),
        http.get(f"/tokens/{ids['token_id']}").json(),
        http.get("/runs").json()["data"],
        http.get("/users/invitations").json()["data"],
    ]


def test_another_workspace_gets_404_for_every_object_and_changes_nothing(
    tenant: Tenant, other_tenant: Tenant, owned: dict[str, str]
) -> None:
    before = _snapshot(tenant, owned)
    for method, path, body in ROUTES + REFERENCES:
        response = other_tenant.http.request(method, _fill(path, owned), json=_filled(body, owned))
        assert response.status_code == 404, (method, path, response.text)
        error = response.json()["error"]
        assert error["type"] == "not_found", (method, path)
        assert owned["connection_id"] not in str(response.json().get("data", ""))
    # A cursor naming another workspace's run is treated as one that does not exist.
    for cursor in (owned["run_id"], "run_000000000000"):
        page = other_tenant.http.get("/runs", params={"starting_after": cursor})
        assert page.status_code == 422
        assert page.json()["error"]["field"] == "starting_after"
    for method, path, body in PERSONAL:
        response = other_tenant.http.request(method, _fill(path, owned), json=body)
        assert response.status_code == 403, (method, path, response.text)
    for method, path, body in OWN:
        # Rename the caller's own `phone`, then drop what it became.
        target = owned | {"path": "stolen" if method == "DELETE" else "phone"}
        response = other_tenant.http.request(method, _fill(path, target), json=body)
        assert response.status_code == 200, (method, path, response.text)
    assert _snapshot(tenant, owned) == before
    assert before[1]["name"] == "a"
    assert before[1]["enabled"] is True
    assert [i["status"] for i in before[7]] == ["pending"]
    assert "phone" in [p["name"] for p in before[4]["properties"]]
    theirs = [p["name"] for p in other_tenant.http.get("/model").json()["properties"]]
    assert "phone" not in theirs
    assert "stolen" not in theirs


def test_lists_and_settings_are_per_workspace(
    tenant: Tenant, other_tenant: Tenant, owned: dict[str, str]
) -> None:
    for path in ("/connections", "/pipelines", "/runs", "/profiles"):
        assert tenant.http.get(path).json()["data"], path
        assert other_tenant.http.get(path).json() == {"data": [], "has_more": False}, path
    mine = [t["id"] for t in tenant.http.get("/tokens").json()["data"]]
    theirs = [t["id"] for t in other_tenant.http.get("/tokens").json()["data"]]
    assert owned["token_id"] in mine
    assert not set(mine) & set(theirs)
    added = other_tenant.http.post("/model/properties", json={"path": "plan", "type": "string"})
    assert added.status_code == 201, added.text
    identity = other_tenant.http.put("/identity-resolution", json={"identifiers": ["phone"]})
    assert identity.status_code == 200, identity.text
    assert "plan" not in [p["name"] for p in tenant.http.get("/model").json()["properties"]]
    assert tenant.http.get("/identity-resolution").json()["identifiers"] == ["email"]
    mine_wh, theirs_wh = (t.http.get("/warehouse").json() for t in (tenant, other_tenant))
    assert mine_wh["url"] != theirs_wh["url"]
    assert mine_wh["identities"] > 0
    assert theirs_wh["identities"] == 0


def test_a_duckdb_warehouse_set_over_the_api_stays_in_the_workspaces_folder(
    tenant: Tenant, other_tenant: Tenant, owned: dict[str, str]
) -> None:
    mine = tenant.http.get("/warehouse").json()["url"]
    stolen = other_tenant.http.put("/warehouse", json={"url": mine})
    assert stolen.status_code == 422
    assert stolen.json()["error"]["field"] == "url"
    escape = other_tenant.http.put("/warehouse", json={"url": "duckdb:////tmp/../etc/x.duckdb"})
    assert escape.status_code == 422
    folder = other_tenant.app.settings.home / "warehouses" / other_tenant.app.workspace_id
    own = other_tenant.http.put("/warehouse", json={"url": f"duckdb:///{folder}/mine.duckdb"})
    assert own.status_code == 200, own.text
    assert own.json()["url"].endswith("/mine.duckdb")
    assert tenant.http.get("/warehouse").json()["url"] == mine


def test_a_warehouse_holding_another_workspaces_customers_is_refused_by_any_url(
    tenant: Tenant, other_tenant: Tenant
) -> None:
    """A PostgreSQL URL is not confined to a folder: the warehouse itself records whose
    customers it holds, so another workspace cannot point at it by the same URL or by
    another name of the same server (it then listed, and could drop columns of, the
    first workspace's tables)."""
    schema = f"iso_{uuid.uuid4().hex[:10]}"
    url = f"{PG_URL}?schema={schema}"
    try:
        mine = tenant.http.put("/warehouse", json={"url": url})
        assert mine.status_code == 200, mine.text
        for attempt in (url, url.replace("127.0.0.1", "localhost")):
            refused = other_tenant.http.put("/warehouse", json={"url": attempt})
            assert refused.status_code == 422, refused.text
            assert refused.json()["error"]["field"] == "url"
            assert "another workspace" in refused.json()["error"]["message"]
        own = other_tenant.http.put("/warehouse", json={"url": f"{url}_b"})
        assert own.status_code == 200, own.text
        assert tenant.http.put("/warehouse", json={"url": url}).status_code == 200  # its own
    finally:
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            for name in (schema, f"{schema}_b"):
                conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


def test_every_route_naming_an_object_is_in_the_table(tenant: Tenant) -> None:
    document = tenant.http.get("/openapi.json").json()
    named = {
        (method.upper(), path)
        for path, operations in document["paths"].items()
        if "{" in path and path not in EXEMPT
        for method in operations
    }
    assert named == {(m, p) for m, p, _ in ROUTES + OWN + PERSONAL}
