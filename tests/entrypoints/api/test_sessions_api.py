"""Sign-in, the session cookie, sign-out, the same-origin rule and rate-limited
sign-in, through a real server with httpx."""

from __future__ import annotations

import logging

import httpx
import pytest
import sqlalchemy as sa
from tests.entrypoints.api.conftest import (
    PASSWORD,
    Api,
    assert_host_only_session,
    root_app,
    serving,
)

from headwater.adapters.store.auth_tables import sessions as session_table
from headwater.services.auth import sessions


def test_sign_in_sets_a_safe_cookie_and_sign_out_revokes_the_session(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with api.client(headers={"Origin": api.url}) as client:
        response = client.post(
            "/auth/login", json={"email": "ADA@example.com", "password": PASSWORD}
        )
        assert response.status_code == 200, response.text
        assert response.json()["user"]["email"] == api.email
        assert response.json()["workspace"]["id"] == "ws_default"
        cookie = response.headers["set-cookie"]
        raw = client.cookies[sessions.COOKIE]
        for attribute in ("HttpOnly", "SameSite=lax", "Path=/", "Max-Age=604800"):
            assert attribute in cookie
        assert "Secure" not in cookie  # plain http here; see the https test below
        assert PASSWORD not in response.text
        assert raw not in response.text
        me = client.get("/auth/me").json()
        assert me["authenticated_by"] == "session"
        assert me["user"]["id"] == api.user_id
        out = client.post("/auth/logout")
        assert out.status_code == 204
        assert sessions.COOKIE not in client.cookies  # told to forget it
    with api.client(headers={"Cookie": f"{sessions.COOKIE}={raw}"}) as replay:
        assert replay.get("/auth/me").status_code == 401  # the old cookie is dead
    with api.app.engine.connect() as conn:
        [row] = conn.execute(sa.select(session_table)).all()
    assert row.revoked_at is not None
    assert raw not in repr(row)
    # What the server logged (the client's own httpx/httpcore traces show its cookie jar).
    server = [r for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]
    assert any(r.name.startswith("uvicorn") for r in server) or not server
    logged = "\n".join(r.getMessage() for r in server)
    assert PASSWORD not in logged
    assert raw not in logged


def test_a_wrong_password_is_401_with_an_error_document(api: Api) -> None:
    with api.client() as client:
        response = client.post("/auth/login", json={"email": api.email, "password": "wrong one"})
        assert response.status_code == 401
        assert response.json() == {
            "error": {
                "type": "unauthenticated",
                "message": "wrong email or password",
                "field": None,
            }
        }
        assert sessions.COOKIE not in client.cookies
        invalid = client.post("/auth/login", json={"email": api.email})
    assert invalid.status_code == 422
    assert invalid.json()["error"]["field"] == "password"


def test_sign_in_is_rate_limited_with_retry_after(api: Api) -> None:
    with api.client() as client:
        for _ in range(sessions.ACCOUNT_LIMIT):
            wrong = client.post("/auth/login", json={"email": api.email, "password": "nope nope"})
            assert wrong.status_code == 401
        limited = client.post("/auth/login", json={"email": api.email, "password": PASSWORD})
    assert limited.status_code == 429
    assert limited.json()["error"]["type"] == "rate_limited"
    assert 0 < int(limited.headers["retry-after"]) <= 901
    assert sessions.COOKIE not in limited.headers.get("set-cookie", "")


def test_cookie_writes_must_be_same_origin(api: Api) -> None:
    with api.signed_in() as client:
        raw = client.cookies[sessions.COOKIE]
    cookie = {"Cookie": f"{sessions.COOKIE}={raw}"}
    refused = [
        {},  # no browser header at all
        {"Origin": "https://evil.example"},
        {"Origin": api.url.replace("127.0.0.1", "localhost")},
        {"Origin": api.url.replace("http:", "https:")},
        {"Origin": "null"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
        {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"},
    ]
    allowed = [{"Origin": api.url}, {"Sec-Fetch-Site": "same-origin"}]
    with api.client() as bare:
        for headers in refused:
            response = bare.post("/tokens", json={"name": "csrf"}, headers={**cookie, **headers})
            assert response.status_code == 403, headers
            assert response.json()["error"]["type"] == "forbidden"
        # Reading is not changing: a cross-site GET is answered.
        assert bare.get("/tokens", headers={**cookie, "Origin": "https://evil.example"}).is_success
        for headers in allowed:
            response = bare.post("/tokens", json={"name": "ok"}, headers={**cookie, **headers})
            assert response.status_code == 201, headers
        names = [t["name"] for t in bare.get("/tokens", headers=cookie).json()["data"]]
        # A token request is not a browser's: no Origin needed.
        with api.client(api.token) as scripted:
            assert scripted.post("/tokens", json={"name": "script"}).status_code == 201
    assert names.count("csrf") == 0
    assert names.count("ok") == 2


def test_sign_in_from_another_site_is_refused(api: Api) -> None:
    with api.client(headers={"Origin": "https://evil.example"}) as client:
        response = client.post("/auth/login", json={"email": api.email, "password": PASSWORD})
    assert response.status_code == 403
    assert sessions.COOKIE not in response.headers.get("set-cookie", "")


def test_over_https_the_cookie_is_a_secure_host_only_cookie(api: Api) -> None:
    """Behind a proxy that terminates TLS (``X-Forwarded-Proto: https``) the session is
    ``__Host-headwater_session``: the browser keeps it only as Secure, from this very
    host, for every path, so no other host of the domain can set or shadow it; and a
    cookie by the plain name, which such a host could have set, is not a session there.
    (The client talks plain http to the server, so it is handed each cookie itself: a
    cookie jar sends a Secure cookie over https only.)"""
    https = {"X-Forwarded-Proto": "https"}
    with serving(root_app(api.app), behind_proxy=True) as url:
        origin = {**https, "Origin": url.replace("http:", "https:")}
        with httpx.Client(base_url=f"{url}/api/v1", headers=origin) as client:
            response = client.post("/auth/login", json={"email": api.email, "password": PASSWORD})
            assert response.status_code == 200, response.text
            assert_host_only_session(response.headers["set-cookie"])
            raw = client.cookies[sessions.SECURE_COOKIE]
            hosted = {"Cookie": f"{sessions.SECURE_COOKIE}={raw}"}
            assert client.get("/auth/me", headers=hosted).json()["authenticated_by"] == "session"
            out = client.post("/auth/logout", headers=hosted)
            assert out.status_code == 204
            forgotten = out.headers["set-cookie"]
            assert forgotten.startswith(f"{sessions.SECURE_COOKIE}=")
            assert "Secure" in forgotten  # a browser ignores a __Host- cookie without it
            assert client.get("/auth/me", headers=hosted).status_code == 401  # signed out
        with api.signed_in() as other:  # a session signed in over plain http
            session = other.cookies[sessions.COOKIE]
        with httpx.Client(base_url=f"{url}/api/v1", headers=https) as fresh:
            plain = fresh.get("/auth/me", headers={"Cookie": f"{sessions.COOKIE}={session}"})
            assert plain.status_code == 401  # the plain name is no session over https
            same = fresh.get("/auth/me", headers={"Cookie": f"{sessions.SECURE_COOKIE}={session}"})
            assert same.status_code == 200
