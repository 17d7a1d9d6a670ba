"""A session that ends while a page is open (signed out elsewhere, expired): the next
action goes to the sign-in page, and back to the page after it. An htmx action used to
swap the sign-in page into the table's row (its XHR followed the 303 itself), and the
editor's fetch calls put it in the preview or failed on it."""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import Page, expect
from tests.entrypoints.console.conftest import EMAIL, PASSWORD, Site, sign_in

from headwater.services.auth import sessions

pytestmark = pytest.mark.slow


def _end_session(page: Page, site: Site) -> None:
    """Sign the page's session out through the service, as another tab would."""
    raw = next(c["value"] for c in page.context.cookies() if c["name"] == sessions.COOKIE)
    app = site.app()
    try:
        sessions.sign_out(app, raw)
    finally:
        app.close()


def _sign_in_again(page: Page) -> None:
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def test_an_htmx_action_goes_to_the_sign_in_page(page: Page, site: Site) -> None:
    conn = site.add_source("Signed out")
    site.add_pipeline(conn.id, "Orphaned")
    sign_in(page, site.url)
    tab = f"/connections/{conn.id}/pipelines"
    page.goto(site.url + tab)
    _end_session(page, site)
    page.get_by_role("switch", name="Enable Orphaned").click()
    expect(page).to_have_url(f"{site.url}/sign-in?next={tab}")
    heading = page.get_by_role("heading", name="Sign in to Headwater")
    expect(heading).to_have_count(1)
    expect(page.get_by_role("row").filter(has=heading)).to_have_count(0)
    _sign_in_again(page)
    expect(page).to_have_url(site.url + tab)  # back where the action was made


def test_the_editor_goes_to_the_sign_in_page(page: Page, site: Site) -> None:
    conn = site.add_source("Editing")
    editor = f"/connections/{conn.id}/pipelines/new"
    sign_in(page, site.url)
    page.goto(site.url + editor)
    _end_session(page, site)
    page.get_by_role("button", name="Reload").click()  # the preview
    expect(page).to_have_url(f"{site.url}/sign-in?next={editor}")
    _sign_in_again(page)
    expect(page).to_have_url(site.url + editor)
    page.get_by_label("Name", exact=True).fill("Never saved")
    _end_session(page, site)
    page.get_by_role("button", name="Add", exact=True).click()  # saving
    expect(page).to_have_url(f"{site.url}/sign-in?next={editor}")


def test_where_signing_in_leads_back_to(site: Site) -> None:
    """A change's page is HX-Current-URL (htmx) or the Referer, absolute URLs: kept when
    they are this site's, else the home page."""
    with httpx.Client(base_url=site.url, timeout=30) as client:
        tab = "/connections/conn_x/pipelines?page=2"
        htmx = client.post(
            "/pipelines/pip_x/enable",
            data={"enabled": "true"},
            headers={"HX-Request": "true", "HX-Current-URL": site.url + tab},
        )
        assert htmx.status_code == 200
        assert htmx.text == ""
        back = "/connections/conn_x/pipelines%3Fpage%3D2"
        assert htmx.headers["hx-redirect"] == f"/sign-in?next={back}"
        elsewhere = client.post(
            "/pipelines/pip_x/enable",
            data={"enabled": "true"},
            headers={"HX-Request": "true", "HX-Current-URL": "http://evil.example" + tab},
        )
        assert elsewhere.headers["hx-redirect"] == "/sign-in?next=/sources"
        script = client.post(
            "/editor/preview",
            json={},
            headers={"X-Requested-With": "fetch", "Referer": site.url + "/pipelines/pip_x/manage"},
        )
        assert script.status_code == 401
        assert script.json()["location"] == "/sign-in?next=/pipelines/pip_x/manage"
        form = client.post("/tokens", data={"name": "x"}, headers={"Referer": site.url + "/tokens"})
        assert form.status_code == 303
        assert form.headers["location"] == "/sign-in?next=/tokens"


def test_signing_in_leads_back_to_any_path(site: Site) -> None:
    """A `next` outside latin-1 (``/李``) made a 500 after the session was made: it went
    into the HX-Redirect header as it was. Headers now carry it percent-encoded (what is
    encoded already stays as it is)."""
    form = {"email": EMAIL, "password": PASSWORD}
    for next_, sent in (
        ("/李", "/%E6%9D%8E"),
        ("/runs?after=run_%C3%A9&q=a b", "/runs?after=run_%C3%A9&q=a%20b"),
        ("/x\r\nSet-Cookie: a=b", "/x%0D%0ASet-Cookie:%20a=b"),
    ):
        with httpx.Client(base_url=site.url, timeout=30) as client:
            answer = client.post(
                "/sign-in", data={**form, "next": next_}, headers={"Origin": site.url}
            )
            assert answer.status_code == 303, next_
            assert answer.headers["location"] == sent
            assert answer.headers["hx-redirect"] == sent
            assert "a=b" not in answer.headers.get("set-cookie", "")
            landed = client.get(sent)  # followed as a browser does, signed in
            assert landed.status_code in (200, 404), next_  # not sent to sign in again
    page = f"{site.url}/sign-in?next=/%E6%9D%8E"
    with httpx.Client(base_url=site.url, timeout=30) as client:
        assert 'value="/李"' in client.get(page).text
