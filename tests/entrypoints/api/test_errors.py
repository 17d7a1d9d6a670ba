"""Every answer of the API is its own error document, at any path under /api/v1."""

from __future__ import annotations

from tests.entrypoints.api.conftest import Api


def test_a_path_holding_a_newline_is_still_answered_by_the_api(api: Api) -> None:
    with api.client(api.token) as client:
        for path in ("/tokens/a%0Ab", "/tokens/a%0Ab/revoke", "/no%0Awhere"):
            response = client.get(path)
            assert response.status_code in (404, 405), path
            assert set(response.json()["error"]) == {"type", "message", "field"}, path


def test_method_not_allowed_names_every_allowed_method(api: Api) -> None:
    with api.client(api.token) as client:
        for path, allowed in (("/tokens", "GET, HEAD, POST"), ("/workspaces", "GET, HEAD, POST")):
            response = client.request("OPTIONS", path)
            assert response.status_code == 405
            assert response.headers["allow"] == allowed
            assert response.json()["error"]["type"] == "method_not_allowed"
        assert client.delete("/auth/me").headers["allow"] == "GET, HEAD"


def test_the_docs_page_needs_a_signed_in_user(api: Api) -> None:
    import httpx

    docs = f"{api.url}/api/docs/"
    refused = httpx.get(docs)
    assert refused.status_code == 401
    assert refused.json()["error"]["type"] == "unauthenticated"
    with api.signed_in() as client:
        page = client.get(docs)
    assert page.status_code in (200, 503)  # 503 until scripts/install put Swagger UI in
    assert "cdn" not in page.text.lower()
