"""A real `headwater serve` whose PostgreSQL metadata store goes away, then comes back.

The store is a database of its own, made unreachable by ending its sessions and
refusing new ones (``ALLOW_CONNECTIONS false``). Its URL carries a password (the
server trusts the loopback, so it is never asked for): it must show nowhere. What
must hold: an authenticated API request answers 503 ``unavailable`` naming the
metadata store (not 500 ``internal``), a console page is a 503 page saying the store
failed and to retry (not a bare 500), each with ``Retry-After`` saying in how many
seconds (as a 429 does), and once the store is back the same requests succeed, without
restarting `serve`.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
import pytest
from tests.conftest import PG_URL
from tests.entrypoints.api.conftest import PASSWORD
from tests.serving import Service, start_serve

from headwater.entrypoints.environment import settings_from_env
from headwater.services.app import App
from headwater.services.auth import tokens, users

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

STORE_PASSWORD = "s3cret-store-pw"
EMAIL = "ada@example.com"


@contextmanager
def store_database() -> Iterator[str]:
    """A fresh PostgreSQL database for the store, dropped afterwards; its name."""
    name = f"hw_down_{secrets.token_hex(4)}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def unreachable(database: str) -> Iterator[None]:
    """No session of `database` lives and none can start until the block ends."""
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false')
        # Waiting for each session to end (up to 5 s): a pooled one still alive could
        # answer the next request.
        conn.execute(
            "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE datname = %s",
            (database,),
        )
    try:
        yield
    finally:
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true')


@dataclass
class Served:
    service: Service
    database: str
    token: str

    @property
    def api(self) -> str:
        return f"{self.service.url}/api/v1"

    @contextmanager
    def signed_in(self) -> Iterator[httpx.Client]:
        """A browser-like client holding a session cookie (for the API and the console)."""
        with httpx.Client(base_url=self.service.url, headers={"Origin": self.service.url}) as c:
            answer = c.post("/api/v1/auth/login", json={"email": EMAIL, "password": PASSWORD})
            assert answer.status_code == 200, answer.text
            yield c


@pytest.fixture
def served(home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Served]:
    with store_database() as database:
        url = f"postgresql://root:{STORE_PASSWORD}@127.0.0.1:5432/{database}"
        monkeypatch.setenv("HEADWATER_DATABASE_URL", url)
        app = App.open(settings_from_env())
        try:
            users.add_user(app, EMAIL, PASSWORD)
            raw, _ = tokens.create_token(app, "outage")
        finally:
            app.close()
        with start_serve(home, database_url=url, workers=1) as service:
            yield Served(service, database, raw)
        assert STORE_PASSWORD not in service.text()


def _assert_retry_later(answer: httpx.Response) -> None:
    """A 503 says when to retry: ``Retry-After``, a few whole seconds."""
    after = answer.headers.get("retry-after", "")
    assert after.isdigit(), dict(answer.headers)
    assert 1 <= int(after) <= 30, after


def _assert_unavailable(answer: httpx.Response) -> None:
    assert answer.status_code == 503, answer.text
    _assert_retry_later(answer)
    error = answer.json()["error"]
    assert error["type"] == "unavailable", error
    assert error["message"].startswith("the metadata store failed"), error
    assert error["field"] is None
    assert STORE_PASSWORD not in answer.text


def test_the_api_answers_503_while_the_store_is_away_and_200_once_it_is_back(
    served: Served,
) -> None:
    bearer = {"Authorization": f"Bearer {served.token}"}
    with httpx.Client(base_url=served.api, headers=bearer) as client, served.signed_in() as browser:
        assert client.get("/pipelines").status_code == 200
        assert browser.get("/api/v1/pipelines").status_code == 200
        with unreachable(served.database):
            # The token was checked a moment ago (known without the store), so the
            # route's own read fails; a token never seen must be checked in the store.
            _assert_unavailable(client.get("/pipelines"))
            _assert_unavailable(client.get("/runs"))
            unseen = "hw_" + "A" * (len(served.token) - 3)
            _assert_unavailable(
                client.get("/pipelines", headers={"Authorization": f"Bearer {unseen}"})
            )
            _assert_unavailable(browser.get("/api/v1/pipelines"))
            _assert_unavailable(browser.post("/api/v1/tokens", json={"name": "during"}))
        assert client.get("/pipelines").status_code == 200
        assert client.get("/runs").status_code == 200
        assert browser.get("/api/v1/pipelines").status_code == 200
        assert browser.post("/api/v1/tokens", json={"name": "after"}).status_code == 201


def _assert_store_page(answer: httpx.Response) -> None:
    assert answer.status_code == 503, answer.text[-2000:]
    assert answer.headers["content-type"].startswith("text/html")
    _assert_retry_later(answer)
    assert "the metadata store failed" in answer.text
    assert "retry in a moment" in answer.text
    assert STORE_PASSWORD not in answer.text


def test_console_pages_say_the_store_failed_with_503_and_work_once_it_is_back(
    served: Served,
) -> None:
    with served.signed_in() as browser:
        assert browser.get("/sources").status_code == 200
        assert browser.get("/runs").status_code == 200
        with unreachable(served.database):
            page = browser.get("/sources")
            _assert_store_page(page)
            assert 'href="/sources">Try again</a>' in page.text
            # htmx shows the page's heading and alert in the status line.
            _assert_store_page(browser.get("/runs", headers={"HX-Request": "true"}))
            # A change: the same page, nothing done.
            _assert_store_page(browser.post("/model", data={"path": "plan", "type": "string"}))
            # The editor's own requests get the API's error document.
            fetched = browser.post(
                "/editor/preview",
                json={"connection_id": "conn_x", "limit": 1},
                headers={"X-Requested-With": "fetch"},
            )
            assert fetched.status_code == 503, fetched.text
            _assert_retry_later(fetched)
            assert fetched.json()["error"]["type"] == "unavailable"
            assert fetched.json()["error"]["message"].startswith("the metadata store failed")
            # Signing in needs the store too.
            with httpx.Client(base_url=served.service.url) as stranger:
                _assert_store_page(
                    stranger.post(
                        "/sign-in",
                        data={"email": EMAIL, "password": PASSWORD},
                        headers={"Origin": served.service.url},
                    )
                )
        assert browser.get("/sources").status_code == 200
        assert browser.get("/runs", headers={"HX-Request": "true"}).status_code == 200


def test_readyz_and_metrics_answer_503_while_the_store_is_away(served: Served) -> None:
    bearer = {"Authorization": f"Bearer {served.token}"}
    with httpx.Client(base_url=served.service.url, headers=bearer) as client:
        assert client.get("/readyz").status_code == 200
        assert client.get("/metrics").status_code == 200
        with unreachable(served.database):
            # The caller cannot be checked (the tokens live in the store): 503 with the
            # API's error document, naming no host.
            _assert_unavailable(client.get("/readyz"))
            _assert_unavailable(client.get("/metrics"))
            assert "127.0.0.1" not in client.get("/readyz").text
        ready = client.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"]["store"] == "ok"
        assert client.get("/metrics").status_code == 200
