"""Every route of `headwater serve` needs credentials (DESIGN.md §8): a sweep over the
routes of its root application (the API, its documentation, the console's pages and
the service's own `/readyz`, `/metrics`), found by walking the application itself, so
that a route added anywhere later cannot be forgotten; asked over HTTP of a real
`headwater serve` without a session, with a forged one and with a revoked token."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute, Mount, Route
from tests.serving import start_serve

from headwater.entrypoints.environment import settings_from_env
from headwater.entrypoints.serve.http import create_http_app
from headwater.services.app import App
from headwater.services.auth import sessions, tokens

pytestmark = pytest.mark.slow

#: What answers without credentials: the process check, sign-in (the API's and the
#: console's), the Stripe webhook receiver (it checks Stripe's signature instead).
OPEN = {
    ("GET", "/healthz"),
    ("POST", "/api/v1/auth/login"),
    ("POST", "/api/v1/webhooks/stripe/{connection_id}"),
    ("GET", "/sign-in"),
    ("POST", "/sign-in"),
}
#: Mounted files anyone may load: the console's own scripts and styles (the sign-in
#: page needs them), built from the repository, holding nothing of any workspace.
OPEN_MOUNTS = {"/static"}


def _routes(routes: Sequence[BaseRoute], prefix: str = "") -> Iterator[tuple[str, str]]:
    """(method, path) of every route below `routes`, into mounted applications and
    included routers."""
    for route in routes:
        if isinstance(route, Mount):
            if prefix + route.path in OPEN_MOUNTS:
                continue
            inner = getattr(route.app, "router", route.app)
            found = getattr(inner, "routes", None)
            assert found is not None, f"{prefix + route.path}: a mount this sweep cannot read"
            yield from _routes(found, prefix + route.path)
        elif isinstance(route, APIRoute | Route):
            for method in sorted(route.methods or ()):
                if method != "HEAD":
                    yield method, prefix + route.path
        elif hasattr(route, "original_router"):  # an included router, kept lazily
            yield from _routes(route.original_router.routes, prefix + route.include_context.prefix)
        else:
            raise AssertionError(f"{prefix}: a route this sweep cannot read: {route!r}")


def _refused(answer: httpx.Response, path: str) -> bool:
    """Whether the answer refuses: the API's 401, or the console's way to sign in."""
    if answer.status_code == 401:
        return True
    location = answer.headers.get("location", "") or answer.headers.get("hx-redirect", "")
    return answer.status_code in (200, 303) and location.startswith("/sign-in?next=")


def test_every_route_of_serve_refuses_a_caller_without_credentials(home: Path) -> None:
    app = App.open(settings_from_env())
    try:
        operations = sorted(set(_routes(create_http_app(app).router.routes)))
        revoked, token = tokens.create_token(app, "revoked")
        tokens.revoke_token(app, token.id)
    finally:
        app.close()
    # The sweep sees the API, the docs, the console and the service's own routes.
    for seen in ("/api/v1/tokens", "/api/docs/", "/sources", "/metrics", "/readyz"):
        assert ("GET", seen) in operations
    assert {o for o in OPEN if o in operations} == OPEN
    credentials: dict[str, dict[str, str]] = {
        "none": {},
        "forged session": {"Cookie": f"{sessions.COOKIE}={'x' * 43}"},
        "revoked token": {"Authorization": f"Bearer {revoked}"},
    }
    wrong: list[str] = []
    with start_serve(home, workers=0) as served, httpx.Client(base_url=served.url) as client:
        for method, path in operations:
            if (method, path) in OPEN:
                continue
            concrete = re.sub(r"\{[^}]+\}", "x_1", path)
            for name, headers in credentials.items():
                # Same-origin, as from the console's own pages: only credentials count.
                sent: dict[str, Any] = {"headers": {**headers, "Origin": served.url}}
                if method != "GET":
                    sent["json"] = {}
                answer = client.request(method, concrete, **sent)
                if answer.status_code in (307, 308):  # to where the refusal must come
                    moved = answer.headers["location"].removeprefix(served.url)
                    assert moved.startswith("/"), moved
                    assert moved != concrete, moved
                    answer = client.request(method, moved, **sent)
                if not _refused(answer, path):
                    wrong.append(f"[{name}] {method} {path}: {answer.status_code} {answer.text}")
    assert wrong == []
    assert revoked not in served.text()
