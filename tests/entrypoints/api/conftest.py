"""A real HTTP server over the API (uvicorn in a thread, on a free port) and the
credentials to call it: a user, a session, API tokens."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from headwater.entrypoints.api import mount
from headwater.kernel.settings import Settings
from headwater.services.app import App
from headwater.services.auth import sessions, tokens, users

PASSWORD = "correct horse battery"


@contextmanager
def serving(asgi: FastAPI, *, behind_proxy: bool = False) -> Iterator[str]:
    """Serve `asgi` over HTTP on 127.0.0.1 until the block ends; yields its base URL.
    Proxy headers (``X-Forwarded-Proto``, ``-For``) count only `behind_proxy`."""
    config = uvicorn.Config(
        asgi,
        host="127.0.0.1",
        port=0,
        log_level="warning",
        lifespan="off",
        proxy_headers=behind_proxy,
        forwarded_allow_ips="127.0.0.1" if behind_proxy else None,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="api-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the API server did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)


def assert_host_only_session(set_cookie: str) -> None:
    """`set_cookie` gives the session as a browser keeps it over https: by the
    ``__Host-`` name, Secure, HttpOnly, SameSite=Lax, for every path, host-only."""
    assert set_cookie.startswith(f"{sessions.SECURE_COOKIE}=")
    for attribute in ("Secure", "HttpOnly", "Path=/", "SameSite=lax"):
        assert attribute in set_cookie
    assert "domain" not in set_cookie.lower()


def root_app(app: App) -> FastAPI:
    """The service's root application as far as the API is concerned."""
    root = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    mount(root, app)
    return root


@pytest.fixture
def app(settings: Settings) -> Iterator[App]:
    application = App.open(settings)
    yield application
    application.close()


@dataclass
class Api:
    """A running API and a user (`email`, `PASSWORD`) with a token of the default workspace."""

    url: str
    app: App
    email: str
    user_id: str
    token: str

    def client(
        self, token: str | None = None, headers: dict[str, str] | None = None
    ) -> httpx.Client:
        """A client of the API (``/api/v1``), with `token` as its bearer token if given."""
        headers = dict(headers or {})
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return httpx.Client(base_url=f"{self.url}/api/v1", headers=headers, timeout=30)

    @contextmanager
    def signed_in(self, email: str | None = None) -> Iterator[httpx.Client]:
        """A client holding a session cookie, sending the same-origin `Origin` header."""
        with self.client(headers={"Origin": self.url}) as client:
            response = client.post(
                "/auth/login", json={"email": email or self.email, "password": PASSWORD}
            )
            assert response.status_code == 200, response.text
            yield client


@pytest.fixture
def api(app: App) -> Iterator[Api]:
    user = users.add_user(app, "ada@example.com", PASSWORD)
    raw, _ = tokens.create_token(app, "tests")
    with serving(root_app(app)) as url:
        yield Api(url, app, user.email, user.id, raw)
