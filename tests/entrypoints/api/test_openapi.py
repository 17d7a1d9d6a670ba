"""The OpenAPI document is complete: every operation, parameter and field described,
every error response the one error document, both credentials declared."""

from __future__ import annotations

from typing import Any

from headwater.entrypoints.api import create_api, openapi_document
from headwater.services.app import App

METHODS = ("get", "post", "put", "patch", "delete")
UNAUTHENTICATED = {("post", "/auth/login"), ("post", "/webhooks/stripe/{connection_id}")}


def _undescribed(document: dict[str, Any]) -> list[str]:
    missing = []
    for path, item in document["paths"].items():
        for method in METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            where = f"{method.upper()} {path}"
            missing += [f"{where} {k}" for k in ("summary", "description") if not operation.get(k)]
            missing += [
                f"{where} parameter {p['name']}"
                for p in operation.get("parameters", [])
                if not p.get("description")
            ]
            for status, response in operation["responses"].items():
                if not response.get("description"):
                    missing.append(f"{where} response {status}")
    for name, schema in document["components"]["schemas"].items():
        missing += [
            f"schema {name}.{prop}"
            for prop, spec in schema.get("properties", {}).items()
            if not spec.get("description")
        ]
    return missing


def test_every_operation_parameter_and_field_is_described(app: App) -> None:
    document = openapi_document(app)
    assert document["info"]["title"] == "Headwater API"
    assert document["info"]["version"]
    assert document["info"]["description"]
    assert _undescribed(document) == []


def test_errors_are_one_document_and_both_credentials_are_declared(app: App) -> None:
    document = openapi_document(app)
    schemas = document["components"]["schemas"]
    assert "HTTPValidationError" not in schemas  # FastAPI's own 422 shape is never sent
    assert set(schemas["ErrorDocument"]["properties"]) == {"error"}
    assert set(schemas["ErrorDetail"]["properties"]) == {"type", "message", "field"}
    schemes = document["components"]["securitySchemes"]
    assert schemes["token"] == {
        "type": "http",
        "scheme": "bearer",
        "description": schemes["token"]["description"],
    }
    assert schemes["session"]["in"] == "cookie"
    assert schemes["session"]["name"] == "headwater_session"
    for path, item in document["paths"].items():
        for method in METHODS:
            if method not in item:
                continue
            responses = item[method]["responses"]
            for status in ("401", "404", "422"):
                ref = responses[status]["content"]["application/json"]["schema"]["$ref"]
                assert ref.endswith("/ErrorDocument"), (method, path, status)
            retry = responses["503"]["headers"]["Retry-After"]
            assert retry["schema"] == {"type": "integer"}, (method, path)
            assert retry["description"], (method, path)
            # Sign-in has no credentials yet; Stripe's deliveries carry a signature instead.
            if (method, path) not in UNAUTHENTICATED:
                assert item[method]["security"], (method, path)


def test_the_api_says_where_its_document_is(app: App) -> None:
    assert create_api(app).openapi_url == "/openapi.json"
