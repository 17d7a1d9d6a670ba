"""The console's guards, over real HTTP and in Chromium: every page needs a session; a
change posted from another origin is refused even when the browser sends the cookie;
user text is shown as text, never run as markup; another workspace's objects are 404."""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Page, expect
from tests.entrypoints.console.conftest import EMAIL, PASSWORD, Site, sign_in

from headwater.adapters.store import accounts
from headwater.services import connections
from headwater.services.app import App
from headwater.services.auth import invitations, tokens, users, workspaces
from headwater.services.pipelines import runner

pytestmark = pytest.mark.slow


def _member(workspace: App, email: str) -> None:
    """Make the user `email` a member of `workspace`, as they would: invited, accepted."""
    user = accounts.user_by_email(workspace.engine, users.email_key(email))
    assert user is not None
    invitations.accept(workspace, user.id, invitations.invite(workspace, email).id)


@contextlib.contextmanager
def _signed_in(site: Site) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=site.url, timeout=30) as client:
        answer = client.post(
            "/sign-in",
            data={"email": EMAIL, "password": PASSWORD},
            headers={"Origin": site.url},
        )
        assert answer.status_code == 303
        assert client.cookies.get("headwater_session")
        yield client


def test_pages_need_a_session(site: Site) -> None:
    with httpx.Client(base_url=site.url) as anonymous:
        for path in (
            "/sources",
            "/runs",
            "/model",
            "/warehouse",
            "/profiles",
            "/identity",
            "/tokens",
        ):
            answer = anonymous.get(path)
            assert answer.status_code == 303
            assert answer.headers["location"] == f"/sign-in?next={path}"
    with httpx.Client(base_url=site.url, cookies={"headwater_session": "forged"}) as forger:
        assert forger.get("/sources").status_code == 303
    with httpx.Client(base_url=site.url) as anonymous:
        refused = anonymous.post(
            "/sign-in",
            data={"email": EMAIL, "password": "wrong password"},
            headers={"Origin": site.url},
        )
        assert refused.status_code == 400
        assert "wrong email or password" in refused.text


def test_a_cross_origin_post_with_the_cookie_is_refused(site: Site) -> None:
    with _signed_in(site) as client:
        for headers in (
            {"Origin": "http://evil.example"},
            {"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"},
            {},  # no browser headers: not proven same-origin either
        ):
            answer = client.post("/tokens", data={"name": "evil"}, headers=headers)
            assert answer.status_code == 403, headers
        ok = client.post("/tokens", data={"name": "mine"}, headers={"Origin": site.url})
        assert ok.status_code == 303  # Post/Redirect/Get: the token is on the page it names
        assert ok.headers["location"] == "/tokens"
        assert re.search(r"hw_\w+", client.get("/tokens").text)
    assert site.token_names().count("evil") == 0
    assert "mine" in site.token_names()


def test_a_form_on_another_site_cannot_use_the_session(page: Page, site: Site) -> None:
    """A page on another origin (same host, another port: the browser sends the
    SameSite=Lax cookie along) auto-submits a form to the console: refused."""
    sign_in(page, site.url)
    evil = "http://127.0.0.1:9/evil.html"
    form = (
        f'<form id="f" method="post" action="{site.url}/tokens">'
        '<input name="name" value="planted"></form><script>f.submit()</script>'
    )
    page.route(evil, lambda route: route.fulfill(content_type="text/html", body=form))
    with page.expect_response(f"{site.url}/tokens") as answer:
        page.goto(evil)
    assert answer.value.status == 403
    expect(page.get_by_role("alert")).to_have_text("A change must come from this site's own pages.")
    assert "planted" not in site.token_names()


def test_user_text_is_never_markup(page: Page, site: Site) -> None:
    sign_in(page, site.url)
    page.goto(site.url + "/tokens")
    name = '<img src=x onerror="window.pwned=1">'
    page.get_by_label("Token name").fill(name)
    page.get_by_role("button", name="Create token").click()
    expect(page.get_by_role("row", name=name)).to_be_visible()
    assert page.evaluate("window.pwned") is None
    assert page.locator("img[src=x]").count() == 0


def test_another_workspaces_objects_are_not_found(site: Site) -> None:
    app = site.app()
    try:
        other = workspaces.add_workspace(app, "Other company")
        theirs = app.in_workspace(other.id)
        users.add_user(theirs, "eve@example.com", "another password")
        conn = connections.add_stripe(
            theirs, "Their Stripe", site.sandbox.secret_key, site.sandbox.url, 20.0
        )
    finally:
        app.close()
    with _signed_in(site) as client:
        for path in (f"/connections/{conn.id}/pipelines", f"/connections/{conn.id}/settings"):
            answer = client.get(path)
            assert answer.status_code == 404
            assert "Their Stripe" not in answer.text
        sources = client.get("/sources")
        assert "Their Stripe" not in sources.text


def test_the_workspace_switcher_changes_what_pages_show(page: Page, site: Site) -> None:
    app = site.app()
    try:
        third = workspaces.add_workspace(app, "Third company")
        theirs = app.in_workspace(third.id)
        _member(theirs, EMAIL)
        connections.add_stripe(theirs, "Third's Stripe", site.sandbox.secret_key, site.sandbox.url)
    finally:
        app.close()
    sign_in(page, site.url)
    expect(page.get_by_text("Third's Stripe")).to_have_count(0)
    page.get_by_label("Workspace").select_option(label="Third company")
    page.get_by_role("button", name="Switch").click()
    expect(page.get_by_role("link", name="Third's Stripe")).to_be_visible()
    page.get_by_label("Workspace").select_option(label="default")
    page.get_by_role("button", name="Switch").click()
    expect(page.get_by_text("Third's Stripe")).to_have_count(0)


def test_a_live_progress_stream_ends_when_its_session_does(site: Site) -> None:
    """The session was checked once, when the stream opened: a run's live progress
    (customer ids in its errors too) kept flowing for hours to a cookie signed out
    or ended by a new password."""
    conn = site.add_source("Streamed")
    pipeline = site.add_pipeline(conn.id, "streamed")
    app = site.app()
    site.sandbox.control(latency_ms=15_000)  # a run that stays live while we look
    try:
        run = runner.enqueue(app, pipeline.id)
        with _signed_in(site) as client:
            cookie = client.cookies.get("headwater_session")
            with httpx.Client(base_url=site.url, timeout=30) as watcher:
                watcher.cookies.set("headwater_session", str(cookie))
                with watcher.stream("GET", f"/runs/{run.id}/events") as stream:
                    lines = stream.iter_lines()
                    assert next(line for line in lines if line.startswith("event:"))
                    signed_out = client.post("/sign-out", headers={"Origin": site.url})
                    assert signed_out.status_code == 303
                    started = time.monotonic()
                    list(lines)  # the stream must end by itself, the run still live
                    assert time.monotonic() - started < 5
                    assert runner.get_run(app, run.id).live
    finally:
        site.sandbox.control(latency_ms=0)
        with contextlib.suppress(Exception):
            runner.cancel_run(app, run.id)
        app.close()


def test_a_page_left_open_in_another_workspace_changes_nothing(page: Page, site: Site) -> None:
    """Every post acted on the session's current workspace: a page of one workspace,
    left open while another tab switched to a second, created (or deleted, or reset
    the identity settings) in the second."""
    app = site.app()
    try:
        second = workspaces.add_workspace(app, "Second company")
        _member(app.in_workspace(second.id), EMAIL)
    finally:
        app.close()
    sign_in(page, site.url)
    page.goto(site.url + "/tokens")
    other = page.context.new_page()  # the same session, in another tab
    other.goto(site.url + "/sources")
    other.get_by_label("Workspace").select_option(label="Second company")
    other.get_by_role("button", name="Switch").click()
    expect(other.get_by_label("Workspace")).to_have_value(second.id)
    page.get_by_label("Token name").fill("From the stale tab")
    page.get_by_role("button", name="Create token").click()
    expect(page.get_by_role("alert")).to_contain_text("another workspace")
    app = site.app()
    try:
        made = [
            t.name for ws in (app, app.in_workspace(second.id)) for t in tokens.list_tokens(ws)[0]
        ]
    finally:
        app.close()
    assert "From the stale tab" not in made
    # The page of the workspace switched to makes it there.
    other.goto(site.url + "/tokens")
    other.get_by_label("Token name").fill("From the current tab")
    other.get_by_role("button", name="Create token").click()
    expect(other.get_by_label("New token")).to_have_value(re.compile(r"^hw_"))
    other.get_by_label("Workspace").select_option(label="default")
    other.get_by_role("button", name="Switch").click()


def test_a_sign_in_the_service_refuses_shows_the_form_with_why(site: Site) -> None:
    """An email holding the NUL character is invalid input: the sign-in form again,
    with the reason and the address kept, not the console's page for errors."""
    with httpx.Client(base_url=site.url) as anonymous:
        refused = anonymous.post(
            "/sign-in",
            data={"email": "ann\x00@example.com", "password": PASSWORD},
            headers={"Origin": site.url},
        )
    assert refused.status_code == 400
    assert 'name="password"' in refused.text  # the form, to try again
    assert "NUL character" in refused.text
    assert not refused.cookies.get("headwater_session")
