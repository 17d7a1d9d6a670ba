"""Fixtures for the console's browser tests: a real ``headwater serve`` (API, console and
a run worker) over HTTP, the Stripe sandbox, a user to sign in with, and Debian's
Chromium driven by Playwright (never a downloaded browser).

Screenshots go to ``$HEADWATER_SCREENSHOTS`` when it is set (``docs/screenshots`` to
refresh the README's pictures), else to the test's temporary folder.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright
from tests.serving import start_serve

from headwater.entrypoints.environment import settings_from_env
from headwater.kernel.entities import Connection, Pipeline
from headwater.sandbox.testing import RunningSandbox, start_sandbox
from headwater.services import connections
from headwater.services.app import App
from headwater.services.auth import tokens, users
from headwater.services.pipelines import saving

CHROMIUM = "/usr/bin/chromium"
EMAIL = "ada@example.com"
PASSWORD = "correct horse battery"


@dataclass
class Site:
    """A running server: its base URL, data directory and the sandbox it reads."""

    url: str
    home: Path
    sandbox: RunningSandbox

    def app(self) -> App:
        """The store as the server sees it (default workspace), for checks."""
        return App.open(settings_from_env({"HEADWATER_HOME": str(self.home)}))

    def add_source(self, name: str, key: str | None = None) -> Connection:
        """A Stripe source of the default workspace reading the sandbox (its full key
        unless `key` says otherwise), made as the CLI would."""
        app = self.app()
        try:
            return connections.add_stripe(
                app, name, key or self.sandbox.secret_key, self.sandbox.url, 50.0
            )
        finally:
            app.close()

    def add_pipeline(self, connection_id: str, name: str) -> Pipeline:
        """An enabled pipeline importing every customer with the suggested mapping."""
        app = self.app()
        try:
            return saving.save_new(app, connection_id, name).pipeline
        finally:
            app.close()

    def token_names(self) -> list[str]:
        """The default workspace's API tokens, by name."""
        app = self.app()
        try:
            return [t.name for t in tokens.list_tokens(app)[0]]
        finally:
            app.close()


def home_with_user(home: Path) -> Path:
    """A data directory `home` whose store has the user `EMAIL` (password `PASSWORD`)."""
    app = App.open(settings_from_env({"HEADWATER_HOME": str(home)}))
    try:
        users.add_user(app, EMAIL, PASSWORD)
    finally:
        app.close()
    return home


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    home = home_with_user(tmp_path_factory.mktemp("console-home"))
    with (
        start_sandbox(customers=600, seed=11) as sandbox,
        # A short lease: a cancel is seen within a beat (a tenth of it), see test_editor.
        start_serve(home, env={"HEADWATER_RUN_LEASE_SECONDS": "5"}, workers=1) as served,
    ):
        yield Site(served.url, home, sandbox)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.set_default_timeout(20_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    context.close()
    assert not errors, f"script errors in the page: {errors}"


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    chosen = os.environ.get("HEADWATER_SCREENSHOTS")
    folder = Path(chosen) if chosen else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def sign_in(page: Page, url: str) -> None:
    page.goto(url + "/sources")
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/sources")
