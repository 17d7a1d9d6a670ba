"""Bad input, resource by resource: the right status, one error document naming the
field at fault, and nothing changed."""

from __future__ import annotations

from typing import Any

import pytest
from tests.api.conftest import Tenant

from headwater.sandbox.testing import RunningSandbox, start_sandbox

MAPPING = {"kind": "mapping", "mapping": {"email": "lower(email)"}}


def _error(response: Any, status: int, field: str | None = None) -> str:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"type", "message", "field"}
    if field is not None:
        assert error["field"] == field, error
    return str(error["message"])


@pytest.fixture
def conn(tenant: Tenant, sandbox: RunningSandbox) -> dict[str, Any]:
    body = {"kind": "stripe", "name": "sb", "api_key": sandbox.secret_key, "base_url": sandbox.url}
    response = tenant.http.post("/connections", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


@pytest.fixture
def pipeline(tenant: Tenant, conn: dict[str, Any]) -> dict[str, Any]:
    body = {"connection_id": conn["id"], "name": "p", "transformation": MAPPING}
    response = tenant.http.post("/pipelines", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


def test_connections_refuse_bad_keys_urls_and_budgets(
    tenant: Tenant, sandbox: RunningSandbox
) -> None:
    http = tenant.http
    good = {"kind": "stripe", "name": "sb", "api_key": sandbox.secret_key, "base_url": sandbox.url}
    message = _error(http.post("/connections", json=good | {"api_key": "pk_test_abcdefgh"}), 422)
    assert "publishable" in message
    rejected = http.post("/connections", json=good | {"api_key": "sk_test_wrongkey1"})
    message = _error(rejected, 422, "api_key")
    assert "rejected" in message
    assert "wrongkey1" not in rejected.text
    for rate in (0, 5e-324, 0.05):  # a tiny budget spaced requests by infinite time (500)
        _error(
            http.post("/connections", json=good | {"requests_per_second": rate}),
            422,
            "requests_per_second",
        )
    _error(http.post("/connections", json=good | {"name": "   "}), 422, "name")
    _error(http.post("/connections", json=good | {"base_url": "ftp://x"}), 422, "base_url")
    _error(http.post("/connections", json=good | {"kind": "shopify"}), 422, "kind")
    _error(http.post("/connections", json=good | {"colour": "red"}), 422, "colour")
    _error(
        http.post(
            "/connections", content=b"{not json", headers={"content-type": "application/json"}
        ),
        422,
    )
    assert http.get("/connections").json() == {"data": [], "has_more": False}


def test_a_connection_keeps_its_key_and_url_when_a_change_is_refused(
    tenant: Tenant, conn: dict[str, Any], sandbox: RunningSandbox
) -> None:
    http, path = tenant.http, f"/connections/{conn['id']}"
    _error(http.post(f"{path}/rotate-key", json={"api_key": "sk_test_wrongkey1"}), 422, "api_key")
    _error(http.patch(path, json={"base_url": "nope"}), 422, "base_url")
    _error(http.patch(path, json={"requests_per_second": -1}), 422, "requests_per_second")
    assert http.get(path).json() == conn
    rotated = http.post(f"{path}/rotate-key", json={"api_key": "rk_test_customers_only"})
    assert rotated.status_code == 200, rotated.text
    assert rotated.json()["api_key"] == "rk_test_…only"
    assert rotated.json()["permissions"] == {"customers_read": True, "events_read": False}
    changed = http.patch(path, json={"requests_per_second": 7.5, "base_url": sandbox.url + "/"})
    assert changed.json()["requests_per_second"] == 7.5
    assert changed.json()["base_url"] == sandbox.url


def test_the_saved_key_is_never_sent_to_a_new_base_url(
    tenant: Tenant, conn: dict[str, Any]
) -> None:
    """A new base URL was verified with the saved key, sent to whatever answered there:
    any token holder could read the workspace's Stripe secret key off the wire."""
    http, path = tenant.http, f"/connections/{conn['id']}"
    with start_sandbox(customers=0) as listener:
        listener.reset_stats()
        _error(http.patch(path, json={"base_url": listener.url}), 422, "api_key")
        assert listener.stats()["requests"] == 0
        assert http.get(path).json() == conn
        moved = http.patch(path, json={"base_url": listener.url, "api_key": "sk_test_sandbox"})
        assert moved.status_code == 200, moved.text
        assert moved.json()["base_url"] == listener.url
        assert listener.stats()["requests"] > 0  # the key given, verified there
    # A key alone was accepted (200) and silently ignored: the old key stayed.
    again = http.get(path).json()
    message = _error(http.patch(path, json={"api_key": "sk_test_other"}), 422, "api_key")
    assert "rotate-key" in message
    assert http.get(path).json() == again


def test_pipelines_refuse_bad_definitions_with_every_problem_located(
    tenant: Tenant, conn: dict[str, Any], pipeline: dict[str, Any]
) -> None:
    http = tenant.http
    base = {"connection_id": conn["id"], "name": "q", "transformation": MAPPING}
    bad_filter = {"conditions": [{"property": "emial", "operator": "is", "values": ["x"]}]}
    message = _error(
        http.post("/pipelines", json=base | {"filter": bad_filter}), 422, "conditions[0]"
    )
    assert "did you mean 'email'" in message
    bad_mapping = {"kind": "mapping", "mapping": {"email": "lower(emial)"}}
    _error(http.post("/pipelines", json=base | {"transformation": bad_mapping}), 422, "email")
    bad_code = {"kind": "python", "source": "def transform(:"}
    _error(http.post("/pipelines", json=base | {"transformation": bad_code}), 422)
    _error(http.post("/pipelines", json=base | {"schedule": "7m"}), 422, "schedule")
    _error(http.post("/pipelines", json=base | {"connection_id": "conn_nope"}), 404)
    _error(http.post("/pipelines", json=base | {"name": ""}), 422, "name")
    # 2**70 was saved, then every list of the workspace's pipelines answered 500.
    huge = {"conditions": [{"property": "balance", "operator": "is", "values": [2**70]}]}
    _error(http.post("/pipelines", json=base | {"filter": huge}), 422, "conditions[0]")
    _error(http.patch(f"/pipelines/{pipeline['id']}", json={"filter": huge}), 422)
    assert [p["id"] for p in http.get("/pipelines").json()["data"]] == [pipeline["id"]]
    path = f"/pipelines/{pipeline['id']}"
    _error(http.patch(path, json={"filter": bad_filter, "name": "renamed"}), 422)
    _error(http.put(f"{path}/schedule", json={"schedule": "1d"}), 422, "schedule")
    after = http.get(path).json()
    assert after["name"] == "p"
    assert after["filter"] is None
    assert after["schedule"] == "off"


def test_definitions_nested_too_deep_are_refused_located_and_bodies_too(
    tenant: Tenant, conn: dict[str, Any], pipeline: dict[str, Any]
) -> None:
    """127 nested filter groups were saved, then every list of the workspace's pipelines
    answered 500 (its JSON encoder stops at 255 levels); 600 nested ``not`` made
    ``/validate`` (always 200) and saving a mapping answer 500."""
    http = tenant.http
    base = {"connection_id": conn["id"], "name": "q", "transformation": MAPPING}
    deep: dict[str, Any] = {
        "conditions": [{"property": "balance", "operator": "is less than", "values": [0]}]
    }
    for _ in range(127):
        deep = {"logical": "and", "conditions": [deep]}
    field = ".".join(["conditions[0]"] * 16)
    assert "16 levels" in _error(http.post("/pipelines", json=base | {"filter": deep}), 422, field)
    assert [p["id"] for p in http.get("/pipelines").json()["data"]] == [pipeline["id"]]
    deep_code = {"kind": "mapping", "mapping": {"email": "not " * 600 + "true"}}
    _error(http.post("/pipelines", json=base | {"transformation": deep_code}), 422, "email")
    checked = http.post("/validate", json={"mapping": deep_code["mapping"]})
    assert checked.status_code == 200, checked.text
    [problem] = checked.json()["errors"]
    assert (problem["field"], problem["line"], problem["column"]) == ("mapping.email", 1, 257)
    # A body nested deeper than any parser's stack: refused, not a 500.
    nested = '{"name": ' + "[" * 100_000 + "]" * 100_000 + "}"
    answer = http.post("/pipelines", content=nested, headers={"content-type": "application/json"})
    assert 400 <= answer.status_code < 500, answer.text


def test_runs_refuse_what_the_state_forbids(tenant: Tenant, pipeline: dict[str, Any]) -> None:
    http, path = tenant.http, f"/pipelines/{pipeline['id']}"
    http.post(f"{path}/disable")
    _error(http.post(f"{path}/runs"), 409)
    http.post(f"{path}/enable")
    queued = http.post(f"{path}/runs", json={"full": True})
    assert queued.status_code == 202
    assert queued.json()["status"] == "queued"
    assert queued.json()["kind"] == "full"
    _error(http.post(f"{path}/runs"), 409)
    _error(http.delete(f"/connections/{pipeline['connection_id']}"), 409)
    cancelled = http.post(f"/runs/{queued.json()['id']}/cancel")
    assert cancelled.json()["status"] == "cancelled"
    _error(http.post(f"/runs/{queued.json()['id']}/cancel"), 409)
    _error(http.get("/runs", params={"status": "done"}), 422, "status")
    _error(http.get("/runs", params={"limit": 0}), 422, "limit")
    _error(http.get("/runs", params={"pipeline_id": "pl_nope"}), 404)
    _error(http.get(f"/runs/{queued.json()['id']}/errors", params={"starting_after": "x"}), 422)
    assert len(http.get("/runs").json()["data"]) == 1
    # A queued run does not hold the pipeline: deleting it cancels the run, then both go.
    again = http.post(f"{path}/runs")
    assert again.status_code == 202
    assert http.delete(path).status_code == 200
    _error(http.get(f"/runs/{again.json()['id']}"), 404)


def test_settings_refuse_bad_input_and_keep_what_they_had(tenant: Tenant) -> None:
    http = tenant.http
    model = http.get("/model").json()
    _error(http.post("/model/properties", json={"path": "Plan", "type": "string"}), 422)
    _error(http.post("/model/properties", json={"path": "plan", "type": "money"}), 422, "type")
    _error(http.post("/model/properties", json={"path": "email", "type": "string"}), 422)
    _error(http.post("/model/properties/nope/rename", json={"name": "x"}), 404)
    _error(http.delete("/model/properties/nope"), 404)
    assert http.get("/model").json() == model
    warehouse = http.get("/warehouse").json()
    _error(http.put("/warehouse", json={"url": "duckdb:///:memory:"}), 422, "url")
    _error(http.put("/warehouse", json={"url": "mysql://x"}), 422, "url")
    unreachable = http.put("/warehouse", json={"url": "postgresql://nobody:secretpw@127.0.0.1:1/x"})
    assert unreachable.status_code in (400, 503)
    assert "secretpw" not in unreachable.text
    assert http.get("/warehouse").json() == warehouse
    identity = http.get("/identity-resolution").json()
    _error(http.put("/identity-resolution", json={"identifiers": ["nope"]}), 422)
    _error(http.put("/identity-resolution", json={"identifiers": []}), 422, "identifiers")
    assert http.get("/identity-resolution").json() == identity
    _error(http.get("/profiles/nope"), 404)


def test_preview_and_validate(tenant: Tenant, conn: dict[str, Any]) -> None:
    http = tenant.http
    _error(http.post("/pipelines/preview", json={}), 422)
    _error(http.post("/pipelines/preview", json={"connection_id": conn["id"], "limit": 0}), 422)
    bad = {"connection_id": conn["id"], "filter": {"conditions": [{"property": "x"}]}}
    _error(http.post("/pipelines/preview", json=bad), 422)
    code = {
        "kind": "javascript",
        "source": "function transform(c) { if (c.email && c.email < 'm') throw new Error('no'); "
        "console.log('seen ' + c.id); return {email: c.email}; }",
    }
    shown = http.post(
        "/pipelines/preview",
        json={"connection_id": conn["id"], "transformation": code, "limit": 10},
    )
    assert shown.status_code == 200, shown.text
    samples = shown.json()["samples"]
    assert len(samples) == 10
    assert {s["status"] for s in samples} <= {"ok", "error"}
    for s in samples:
        assert s["input"]["id"] == s["source_id"]
        assert (s["returned"] == {"email": s["input"]["email"]}) == (s["status"] == "ok")
        assert (s["output"] is not None) == (s["status"] == "ok")
        assert s["output"] is None or s["output"]["email"] == s["input"]["email"]
    assert any(line.startswith("seen cus_") for line in shown.json()["logs"])
    checked = http.post(
        "/validate",
        json={
            "filter": {"conditions": [{"property": "emial", "operator": "is", "values": ["x"]}]},
            "mapping": {"email": "lower(emial)", "phone": "phone"},
            "transformation": {"kind": "python", "source": "x = 1\ndef transform(c:\n"},
        },
    )
    assert checked.status_code == 200
    errors = checked.json()["errors"]
    assert checked.json()["valid"] is False
    assert [e["field"] for e in errors] == [
        "filter.conditions[0]",
        "mapping.email",
        "transformation",
    ]
    assert errors[1]["line"] == 1
    assert errors[1]["column"] == 7
    assert errors[2]["line"] == 2
    good = http.post("/validate", json={"mapping": {"email": "email"}, "filter": None})
    assert good.json() == {"valid": True, "errors": []}


def test_a_null_in_a_patch_is_refused_where_null_means_nothing(
    tenant: Tenant, conn: dict[str, Any], pipeline: dict[str, Any]
) -> None:
    """``{"name": null}`` was answered 200 and changed nothing (only the filter's null
    means something: no filter)."""
    http = tenant.http
    path = f"/pipelines/{pipeline['id']}"
    before = http.get(path).json()
    for field in ("name", "description", "schedule", "enabled", "incremental", "transformation"):
        message = _error(http.patch(path, json={field: None}), 422, field)
        assert "cannot be null" in message
    assert http.get(path).json() == before
    assert http.patch(path, json={"filter": None}).status_code == 200
    for field in ("name", "base_url", "requests_per_second"):
        _error(http.patch(f"/connections/{conn['id']}", json={field: None}), 422, field)


def test_customer_model_errors_name_the_request_field(tenant: Tenant) -> None:
    """A refused property change named the property (`Plan`, `email`) as the field at
    fault, not the body's field (`path`, `name`) or the path's, so a client could not
    tell which of its fields to show the error on."""
    http = tenant.http
    model = http.get("/model").json()
    add = "/model/properties"
    cases = [
        (http.post(add, json={"path": "Plan", "type": "string"}), "path", "Plan"),
        (http.post(add, json={"path": "email", "type": "string"}), "path", "email"),
        (http.post(add, json={"path": "email.x", "type": "string"}), "path", "email"),
        (http.post("/model/properties/email/rename", json={"name": "Bad"}), "name", "Bad"),
        (http.post("/model/properties/email/rename", json={"name": "phone"}), "name", "phone"),
        (http.delete("/model/properties/email"), "path", "email"),
    ]  # fmt: skip
    for response, field, named in cases:
        assert named in _error(response, 422, field)
    assert http.get("/model").json() == model
