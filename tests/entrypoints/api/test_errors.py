"""Every answer of the API is its own error document, at any path under /api/v1."""

from __future__ import annotations

import httpx
import pytest
from tests.entrypoints.api.conftest import Api, serving

from headwater.entrypoints.serve.http import create_http_app
from headwater.services.auth import tokens


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


def test_the_docs_page_and_its_scripts_need_a_signed_in_user(api: Api) -> None:
    docs = f"{api.url}/api/docs"
    refused = [httpx.get(f"{docs}{path}") for path in ("/", "/assets/swagger-ui-bundle.js")]
    for answer in refused:
        assert answer.status_code == 401
        assert answer.json()["error"]["type"] == "unauthenticated"
    forged = httpx.get(f"{docs}/", headers={"Authorization": "Bearer hw_" + "x" * 43})
    assert forged.status_code == 401
    # A browser is sent to sign in, then back to the docs.
    browser = httpx.get(f"{docs}/", headers={"Accept": "text/html,application/xhtml+xml"})
    assert browser.status_code == 303
    assert browser.headers["location"] == "/sign-in?next=/api/docs/"


def test_the_docs_page_loads_swagger_ui_from_this_server(api: Api) -> None:
    docs = f"{api.url}/api/docs"
    with api.signed_in() as client:
        page = client.get(f"{docs}/")
        script = client.get(f"{docs}/assets/swagger-ui-bundle.js")
        style = client.get(f"{docs}/assets/swagger-ui.css")
        outside = client.get(f"{docs}/assets/..%2Fdocs.py")
        unknown = client.get(f"{docs}/assets/index.html")
        document = client.get("/openapi.json")
    assert page.status_code == 200, page.text
    assert "/api/docs/assets/swagger-ui-bundle.js" in page.text
    assert "/api/v1/openapi.json" in page.text
    assert "cdn" not in page.text.lower()
    assert "http://" not in page.text
    assert "https://" not in page.text
    assert script.status_code == 200
    assert script.headers["content-type"].startswith("text/javascript")
    assert "SwaggerUIBundle" in script.text
    assert style.status_code == 200
    assert style.headers["content-type"].startswith("text/css")
    assert outside.status_code in (404, 422)
    assert unknown.status_code == 422  # only the page's own files are served
    assert document.status_code == 200
    # A token works as well as a session (for tools that fetch the docs).
    token = httpx.get(f"{docs}/", headers={"Authorization": f"Bearer {api.token}"})
    assert token.status_code == 200


def test_a_body_holding_half_a_character_or_nan_is_refused_and_nothing_is_stored(
    api: Api,
) -> None:
    """JSON's ``"\\ud800"`` (a lone surrogate, half of a character) was read into the
    identity settings with a 500, stored all the same, and from then on every answer
    holding them (the model, the warehouse, the settings) was a 500 too."""
    bodies = [
        ("PUT", "/identity-resolution", b'{"identifiers":["email"],"blocked":{"email":["\\ud800"]}}'),  # noqa: E501
        ("PUT", "/identity-resolution", b'{"identifiers":["email"],"blocked":{"email":[NaN]}}'),
        ("POST", "/validate", b'{"mapping":{"\\udc00":"email"}}'),
    ]  # fmt: skip
    with api.client(api.token) as client:
        before = client.get("/identity-resolution").json()
        for method, path, body in bodies:
            headers = {"Content-Type": "application/json"}
            answer = client.request(method, path, content=body, headers=headers)
            assert answer.status_code == 422, (path, body, answer.text)
            error = answer.json()["error"]
            assert error["type"] == "invalid_input"
            assert (
                "surrogate" in error["message"] or "NaN is not a JSON number" in error["message"]
            ), error
        for path in ("/identity-resolution", "/model", "/warehouse"):
            assert client.get(path).status_code == 200, path
        assert client.get("/identity-resolution").json() == before
        pair = '{"identifiers":["email"],"blocked":{"email":["\\ud83d\\ude00@x.io"]}}'
        answer = client.put("/identity-resolution", content=pair, headers=headers)
        assert answer.status_code == 200, answer.text
        assert answer.json()["blocked"]["email"] == ["😀@x.io"]


def test_an_unexpected_error_is_one_masked_500_and_the_connection_stays_open(
    api: Api,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An unexpected exception was answered 500 and then raised again to the server,
    which printed its traceback with the exception's own words (a key, a URL's
    password) and closed the connection: the client's next request on it failed."""
    secret = "sk_live_" + "Q" * 24 + "9f2c"

    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError(f"the store said no to postgresql://u:hunter22@db/x with {secret}")

    monkeypatch.setattr(tokens, "list_tokens", broken)
    with api.client(api.token) as client:
        failed = client.get("/tokens")
        assert failed.status_code == 500
        assert failed.json()["error"] == {
            "type": "internal",
            "message": "an unexpected error happened; it was logged",
            "field": None,
        }
        again = client.get("/auth/me")  # on the same connection
        assert again.status_code == 200, again.text
    printed = capfd.readouterr()
    assert secret not in printed.out + printed.err
    assert "hunter22" not in printed.out + printed.err
    assert "Traceback" not in printed.err
    logged = [r.getMessage() for r in caplog.records if "unexpected error" in r.getMessage()]
    assert len(logged) == 1
    assert "RuntimeError: the store said no to postgresql://u:***@db/x" in logged[0]
    assert "sk_live_…9f2c" in logged[0]
    assert secret not in logged[0]
    assert "in broken" in logged[0]  # where it happened


def test_a_body_nested_too_deeply_is_invalid_json_saying_where(api: Api) -> None:
    """Objects or arrays nested thousands deep were a 400 saying only "There was an
    error parsing the body" (reading them overflowed the interpreter's stack)."""
    depth = 5000
    body = '{"filter": ' + "[" * depth + "]" * depth + "}"
    with api.client(api.token) as client:
        for method, path in (("POST", "/validate"), ("PUT", "/identity-resolution")):
            answer = client.request(
                method, path, content=body, headers={"Content-Type": "application/json"}
            )
            assert answer.status_code == 422, answer.text
            error = answer.json()["error"]
            assert error["type"] == "invalid_input"
            assert error["message"] == (
                f"the body is not JSON at character {10 + depth}: objects and arrays "
                f"nested {depth + 1} levels deep, too deep to read"
            )
        assert client.get("/identity-resolution").status_code == 200


def test_the_docs_page_cannot_be_framed_or_cached(api: Api) -> None:
    """The docs page acts with the visitor's session (Try it out: any route, a change
    too, same-origin): another site could frame it and steer clicks into it, and it was
    kept in the browser's cache; it now says what the console's pages say."""
    with api.signed_in() as client:
        page = client.get(f"{api.url}/api/docs/")
    assert page.status_code == 200
    assert page.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["x-content-type-options"] == "nosniff"


def test_the_docs_address_without_its_slash_leads_to_the_page(api: Api) -> None:
    """/api/docs (as the README and DESIGN name it) answered the console's 404 in
    `headwater serve` (the console, mounted at /, took the path before any redirect to
    /api/docs/): it now leads there, where signing in comes first."""
    with serving(create_http_app(api.app)) as url:
        moved = httpx.get(f"{url}/api/docs", headers={"Accept": "text/html"})
        page = httpx.get(f"{url}/api/docs", headers={"Accept": "text/html"}, follow_redirects=True)
    assert moved.status_code in (307, 308), moved.text
    assert moved.headers["location"].endswith("/api/docs/")
    assert page.url.path == "/sign-in"  # no session: the page sends the browser to sign in


def test_a_transient_error_says_when_to_retry(api: Api) -> None:
    """A 503 (something the request needs cannot be reached now: here the warehouse,
    refusing connections; Stripe or the metadata store alike) carried no
    ``Retry-After``, though a 429 does: a client could only guess when to retry."""
    warehouse = {"url": "postgresql://nobody@127.0.0.1:1/none"}
    with api.client(api.token) as client:
        answer = client.put("/warehouse", json=warehouse)
    assert answer.status_code == 503, answer.text
    assert answer.json()["error"]["type"] == "unavailable"
    after = answer.headers.get("retry-after", "")
    assert after.isdigit(), dict(answer.headers)
    assert 1 <= int(after) <= 30, after
