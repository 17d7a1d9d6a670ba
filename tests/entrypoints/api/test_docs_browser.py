"""``/api/docs`` in Chromium through a real ``headwater serve``: a visitor without a
session is sent to sign in and back, then Swagger UI (served by this server, nothing
from another origin) renders every operation of the OpenAPI document."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, expect, sync_playwright
from tests.serving import start_serve

from headwater.entrypoints.environment import settings_from_env
from headwater.services.app import App
from headwater.services.auth import users

pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium"
EMAIL = "ada@example.com"
PASSWORD = "correct horse battery"


@pytest.fixture
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()


def test_the_docs_render_in_a_browser_after_sign_in(home: Path, browser: Browser) -> None:
    app = App.open(settings_from_env())
    try:
        users.add_user(app, EMAIL, PASSWORD)
    finally:
        app.close()
    with start_serve(home, workers=0) as served:
        page = browser.new_page()
        page.set_default_timeout(20_000)
        errors: list[str] = []
        origins: set[str] = set()
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on("request", lambda req: origins.add(urlsplit(req.url).netloc))
        page.goto(f"{served.url}/api/docs/")
        expect(page.get_by_role("button", name="Sign in")).to_be_visible()
        page.get_by_label("Email").fill(EMAIL)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"{served.url}/api/docs/")
        expect(page.get_by_role("heading", name="Headwater API")).to_be_visible()
        expect(page.get_by_text("List pipelines", exact=True)).to_be_visible()
        expect(page.get_by_text("Run a pipeline now", exact=True)).to_be_visible()
        page.close()
    assert errors == []
    assert origins <= {urlsplit(served.url).netloc, ""}, origins
