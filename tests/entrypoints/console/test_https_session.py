"""The console's session behind a proxy that terminates TLS (``headwater serve
--forwarded-allow-ips``, ``X-Forwarded-Proto: https``), through a real serve: the cookie
is ``__Host-headwater_session`` (Secure, host-only, every path) for the console's pages,
the API and serve's own ``/readyz`` alike, and the plain name is no session there."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from tests.entrypoints.api.conftest import assert_host_only_session
from tests.entrypoints.console.conftest import EMAIL, PASSWORD, home_with_user
from tests.serving import Service, start_serve

from headwater.services.auth import sessions


@pytest.fixture(scope="module")
def proxied(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    home = home_with_user(tmp_path_factory.mktemp("https-home"))
    with start_serve(home, workers=0, args=["--forwarded-allow-ips", "127.0.0.1"]) as served:
        yield served


def _https(served: Service) -> dict[str, str]:
    """What the proxy adds, and the page's own origin as the browser sends it."""
    return {"X-Forwarded-Proto": "https", "Origin": served.url.replace("http:", "https:")}


def test_signing_in_over_https_gives_a_host_only_secure_cookie(proxied: Service) -> None:
    # The client talks plain http to serve, so it is handed the cookie itself (a cookie
    # jar sends a Secure cookie over https only).
    with httpx.Client(base_url=proxied.url, headers=_https(proxied), timeout=30) as client:
        answer = client.post("/sign-in", data={"email": EMAIL, "password": PASSWORD})
        assert answer.status_code == 303, answer.text
        assert_host_only_session(answer.headers["set-cookie"])
        hosted = {"Cookie": f"{sessions.SECURE_COOKIE}={client.cookies[sessions.SECURE_COOKIE]}"}
        assert client.get("/sources", headers=hosted).status_code == 200
        me = client.get("/api/v1/auth/me", headers=hosted)
        assert me.json()["authenticated_by"] == "session"
        assert client.get("/readyz", headers=hosted).status_code in (200, 503)  # not 401
        out = client.post("/sign-out", headers=hosted)
        assert out.status_code == 303
        assert out.headers["set-cookie"].startswith(f"{sessions.SECURE_COOKIE}=")
        assert "Secure" in out.headers["set-cookie"]
        assert client.get("/sources", headers=hosted).status_code == 303  # signed out


def test_over_https_a_cookie_by_the_plain_name_is_no_session(proxied: Service) -> None:
    with httpx.Client(base_url=proxied.url, timeout=30) as plain:  # the same serve, http
        answer = plain.post(
            "/sign-in",
            data={"email": EMAIL, "password": PASSWORD},
            headers={"Origin": proxied.url},
        )
        assert answer.status_code == 303
        assert "Secure" not in answer.headers["set-cookie"]
        raw = plain.cookies[sessions.COOKIE]
        assert plain.get("/sources").status_code == 200
    # As another host of the domain could have set it:
    https = {"X-Forwarded-Proto": "https", "Cookie": f"{sessions.COOKIE}={raw}"}
    with httpx.Client(base_url=proxied.url, headers=https, timeout=30) as client:
        assert client.get("/sources").status_code == 303
        assert client.get("/api/v1/auth/me").status_code == 401
        assert client.get("/readyz").status_code == 401
