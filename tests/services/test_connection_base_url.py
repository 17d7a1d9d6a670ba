"""A Stripe connection's base URL carries no login details: one given with a username or
password (``https://user:password@host``) is refused at ``base_url`` without echoing
them.  Kept, it was stored and shown in plain text (the API key beside it is encrypted
and masked), and a failed check repeated it ("Could not reach Stripe at https://…")."""

from __future__ import annotations

from typing import Any

import pytest
from tests.services.conftest import connect

from headwater.kernel.errors import InvalidInput
from headwater.sandbox.testing import RunningSandbox, start_sandbox
from headwater.services import connections
from headwater.services.app import App

SECRET = "hunter2secret"


@pytest.fixture
def sandbox() -> Any:
    with start_sandbox(customers=5, seed=5) as running:
        yield running


def _with_login(url: str, login: str) -> str:
    scheme, rest = url.split("://", 1)
    return f"{scheme}://{login}@{rest}"


def _refused_quietly(call: Any) -> None:
    with pytest.raises(InvalidInput) as raised:
        call()
    error = raised.value
    assert error.location == "base_url", error
    assert "username or password" in error.message
    assert SECRET not in error.message, error.message
    assert "sk_test_" not in error.message, error.message
    assert "alice" not in error.message, error.message


def test_a_base_url_with_login_details_is_refused_without_echoing_them(
    app: App, sandbox: RunningSandbox
) -> None:
    key = sandbox.secret_key
    logins = [f"alice:{SECRET}", f"{key}:", "alice", f":{SECRET}", f"alice:{SECRET}@x"]
    for login in logins:
        url = _with_login(sandbox.url, login)
        _refused_quietly(lambda url=url: connections.add_stripe(app, "a", key, url))
    # Not a URL at all, but holding login details: not echoed either.
    _refused_quietly(lambda: connections.add_stripe(app, "a", key, f"alice:{SECRET}@example.com"))
    assert connections.list_connections(app) == []

    conn = connect(app, sandbox)
    moved = _with_login(sandbox.url, f"alice:{SECRET}")
    _refused_quietly(
        lambda: connections.update_connection(app, conn.id, base_url=moved, api_key=key)
    )
    _refused_quietly(lambda: connections.moves_base_url(app, conn.id, moved))
    assert connections.get_connection(app, conn.id) == conn
    assert conn.base_url == sandbox.url  # a URL without them is kept as it was


def test_a_base_url_with_an_at_sign_only_in_its_path_is_not_login_details() -> None:
    assert connections._check_base_url("https://example.com/v1@x/") == "https://example.com/v1@x"
